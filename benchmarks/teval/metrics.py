"""T-Eval's per-sample metrics and their aggregation, as open-compass/T-Eval's evaluators compute them.

Each function takes one model response and one ground truth from the official data format and returns
the evaluator's per-sample numbers (0-1); ``dimension_scores`` combines per-subset means the way
T-Eval's ``convert_results.py`` does. Quirks of the original that define the published numbers are
kept and named where they occur. The only departures: inputs on which the original raises (an empty
plan after dropping ``FinishAction``, an invalid regex from a string template) score 0 here.

Understand (the ``args`` of Reason/Retrieve/Understand) has two versions in T-Eval's history, both offered:
``exact`` (argument match; ``reason_retrieve_understand_evaluator.py`` since 56e2121, 2024-02-22, still at
HEAD 58f2240) and ``embedding`` (sentence-embedding similarity of the argument texts; every version before
e8bdd3a, 2024-02-18, and again at 35851bc, 2024-02-21).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping, Sequence
from string import Formatter
from typing import Any, Literal, TypedDict

import numpy as np

Embed = Callable[[list[str]], np.ndarray]  # texts -> one embedding row per text
Understand = Literal["exact", "embedding"]
UNDERSTAND_DEFAULT: Understand = "exact"  # T-Eval's evaluator since 2024-02-22

# PlanningEvaluator defaults in open-compass/T-Eval teval/evaluators/planning_evaluator.py (its docstring
# says 0.9/0.1; the code, which produced the published numbers, uses these).
NAME_WEIGHT, ARGS_WEIGHT, MATCH_THRESHOLD = 0.75, 0.25, 0.8
_A_DOT_B = re.compile(r"\w+\.\w+")


class ParseError(ValueError):
    pass


def format_load(raw: Any, start: str = "", end: str = "") -> Any:
    """Python literal or JSON from a response, after a ```json fence and outside [start, end]."""
    if not isinstance(raw, str):
        return raw
    if "```json" in raw:
        raw = raw[raw.find("```json") + len("```json") :].strip("`")
    if start:
        raw = raw[raw.find(start) :]
    if end:
        raw = raw[: raw.rfind(end) + len(end)]
    for parse in (ast.literal_eval, json.loads, lambda s: json.loads(s.replace("'", '"'))):
        try:
            return parse(raw)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    raise ParseError("cannot parse response")


def cosine(embed: Embed, pairs: Sequence[tuple[str, str]]) -> list[float]:
    """max(0, cos(a, b)) for each pair, as the evaluators clip it."""
    if not pairs:
        return []
    vecs = _unit(embed, [t for pair in pairs for t in pair])
    return [max(0.0, float(vecs[2 * i] @ vecs[2 * i + 1])) for i in range(len(pairs))]


def _unit(embed: Embed, texts: list[str]) -> np.ndarray:
    vecs = np.asarray(embed(texts), dtype=np.float64)
    return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)


# -- Instruct ---------------------------------------------------------------------------------------
def parse_string(template: str, text: str) -> dict[str, Any] | None:
    """T-Eval's template parser: every ``{field}`` becomes ``(.*)`` (the literal text is not escaped)."""
    keys = [f for _, f, _, _ in Formatter().parse(template) if f is not None]
    pattern = template
    for k in keys:
        pattern = pattern.replace("{" + k + "}", "(.*)")
    try:
        found = re.findall(pattern, text, re.DOTALL)
    except re.error:
        return None
    if not found:
        return None
    values = found[0] if isinstance(found[0], tuple) else (found[0],)
    return dict(zip(keys, values))


def _instruct_parse(response: str, template: Mapping[str, str], fmt: str) -> dict[str, Any] | None:
    if fmt == "json":
        try:
            data = format_load(response)
            args = data[template["args"]]
            return {
                "thought": data[template["thought"]],
                "action": data[template["action"]],
                "args": args if isinstance(args, dict) else {},
            }
        except (ParseError, KeyError, TypeError, IndexError):
            return None
    t = template
    res = parse_string(
        t["thought_start"]
        + "{thought}"
        + t["thought_end"]
        + t["action_start"]
        + "{action}"
        + t["action_end"]
        + t["args_start"]
        + "{args}"
        + t["args_end"],
        response,
    )
    if res is None:
        return None
    try:
        args = ast.literal_eval(res["args"].strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        args = {}  # the original falls back to empty args but still counts the format as followed
    return {
        "thought": res["thought"],
        "action": res["action"].strip(),
        "args": args if isinstance(args, dict) else {},
    }


def instruct_metrics(
    response: str, ground_truth: Mapping[str, Any], template: Any, fmt: str
) -> dict[str, float]:
    """format (parsed at all) and args_em: (name match + each gold argument matched) / (arguments + 1)."""
    pred = _instruct_parse(response, template, fmt)
    if pred is None:
        return {"format": 0.0, "args_em": 0.0}
    gold_args = ground_truth["args"]
    hits = float(ground_truth["action"] == pred["action"])
    hits += sum(pred["args"].get(k, "") == v for k, v in gold_args.items())
    return {"format": 1.0, "args_em": hits / (len(gold_args) + 1)}


# -- Plan -------------------------------------------------------------------------------------------
class PlanStep(TypedDict):
    """One step of a plan, as T-Eval's data writes it (``args`` kept as text)."""

    name: str
    id: int
    args: str


def load_plan(data: Any) -> list[PlanStep]:
    """A plan as [{name, id, args (str)}]; [] when it does not parse."""
    try:
        plan = format_load(data, "[", "]")
        if not isinstance(plan, list):
            return []
        return [PlanStep(name=str(s["name"]), id=int(s["id"]), args=str(s["args"])) for s in plan]
    except (ParseError, KeyError, TypeError, ValueError):
        return []


def plan_from_text(response: str, api_list: Sequence[str]) -> list[PlanStep]:
    """String-format plans: each line (or sentence) naming an API is a step; the earliest-named API wins."""
    steps: list[PlanStep] = []
    for line in response.replace(". ", "\n").split("\n"):
        hits = [(line.find(api), api) for api in api_list if line.find(api) != -1]
        if hits:
            name = min(hits, key=lambda h: h[0])[1]  # ties: the first API in the list, as the original
            steps.append(PlanStep(id=len(steps), name=name, args=line))
    return steps


def plan_metrics(
    pred: list[PlanStep],
    gold: list[PlanStep],
    embed: Embed,
    name_weight: float = NAME_WEIGHT,
    args_weight: float = ARGS_WEIGHT,
    threshold: float = MATCH_THRESHOLD,
) -> dict[str, float]:
    """Steps matched by embedding similarity (maximum-weight bipartite matching over pairs above the
    threshold), then the longest chain of matches in gold order counts as correct. As in the original,
    that count starts at 1, so a parsed plan with no match still scores 1 / len."""
    import networkx as nx

    parse_rate = float(bool(pred) and bool(gold))
    pred = sorted(pred, key=lambda s: s["id"])
    gold = sorted(gold, key=lambda s: s["id"])
    if pred and pred[-1]["name"] == "FinishAction":
        pred = pred[:-1]
    if gold and gold[-1]["name"] == "FinishAction":
        gold = gold[:-1]
    if not pred or not gold:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "parse_rate": parse_rate}
    names = _cos_matrix(embed, [s["name"] for s in pred], [s["name"] for s in gold])
    args = _cos_matrix(embed, [str(s["args"]) for s in pred], [str(s["args"]) for s in gold])
    sim = names * name_weight + args * args_weight
    graph = nx.Graph()
    for i, j in zip(*np.nonzero(sim > threshold)):
        graph.add_edge(int(i), str(j), weight=float(sim[i, j]))
    match: dict[int, int] = {}
    for u, v in nx.max_weight_matching(graph):
        i, j = (u, v) if isinstance(u, int) else (v, u)
        match[i] = int(j)
    to_gold = [match.get(i, -1) for i in range(len(pred))]
    chain = [1] * len(pred)
    for i in range(len(pred)):
        for j in range(i):
            if to_gold[i] != -1 and to_gold[j] != -1 and to_gold[i] > to_gold[j]:
                chain[i] = max(chain[i], chain[j] + 1)
    correct = max(chain)
    recall, precision = correct / len(gold), correct / len(pred)
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * recall * precision / (recall + precision),
        "parse_rate": parse_rate,
    }


def _cos_matrix(embed: Embed, rows: list[str], cols: list[str]) -> np.ndarray:
    vecs = _unit(embed, rows + cols)
    return np.maximum(vecs[: len(rows)] @ vecs[len(rows) :].T, 0.0)


# -- Reason / Retrieve / Understand -----------------------------------------------------------------
def load_rru(data: Any, args_as_dict: bool) -> dict[str, Any]:
    """{thought, name, args} from a response or ground truth; {} when it does not parse to a dict."""
    try:
        obj = format_load(data, "{", "}")
    except ParseError:
        return {}
    if not isinstance(obj, dict):
        return {}
    out: dict[str, Any] = {"thought": str(obj.get("thought", "")), "name": str(obj.get("name", ""))}
    args = obj.get("args")
    if args_as_dict:
        out["args"] = args if isinstance(args, dict) else {}
    else:
        out["args"] = str(args) if "args" in obj else ""
    return out


def name_matches_text(name: str, text: str) -> bool:
    """String-format Retrieve: the gold tool is named, and no other ``a.b`` tool or FinishAction is."""
    if name not in text:
        return False
    return all(found == name for found in [*_A_DOT_B.findall(text), *re.findall("FinishAction", text)])


def args_exact(pred: Any, gold: Any) -> float:
    """Understand as T-Eval scores it since 2024-02-22 (``reason_retrieve_understand_evaluator.py``
    @58f2240 l.224-236). Dict arguments (json format): the gold arguments the prediction repeats, compared
    as ``str``, over (their number + 1e-5); no gold arguments scores 1 only when none are predicted either.
    Text arguments (str format: the whole reply against ``str`` of the gold arguments): equality once
    quotes are stripped from the reply's ends, single quotes first."""
    if isinstance(gold, dict):
        if not gold:
            return float(not pred)
        hits = sum(k in pred and str(pred[k]) == str(v) for k, v in gold.items())
        return hits / (len(gold) + 1e-5)
    return float(gold == pred.strip("'").strip('"'))


def rru_metrics(
    response: str,
    ground_truth: Any,
    eval_type: str,
    fmt: str,
    embed: Embed,
    understand: Understand = UNDERSTAND_DEFAULT,
) -> dict[str, float]:
    """json (eval_type 'rru'): thought similarity, exact name, args; str: the one field the eval_type asks
    for, with the whole response as the prediction. ``understand`` picks how args are scored."""
    gold = load_rru(ground_truth, args_as_dict=fmt == "json")
    if fmt == "json":
        pred = load_rru(response, args_as_dict=True)
        if not pred or not gold:
            pred = {}
        keys: tuple[str, ...] = ("thought", "name", "args")
    else:
        field = {"reason": "thought", "retrieve": "name", "understand": "args"}[eval_type]
        pred, keys = {field: response}, (field,)
    out = {k: 0.0 for k in keys}
    out["parse_rate"] = float(bool(pred))
    if "thought" in pred and "thought" in gold:
        out["thought"] = cosine(embed, [(pred["thought"], gold["thought"])])[0]
    if "name" in pred and "name" in gold:
        same = (
            pred["name"] == gold["name"] if fmt == "json" else name_matches_text(gold["name"], pred["name"])
        )
        out["name"] = float(same)
    if "args" in pred and "args" in gold:
        out["args"] = (
            args_exact(pred["args"], gold["args"])
            if understand == "exact"
            else cosine(embed, [(str(pred["args"]), str(gold["args"]))])[0]
        )
    return out


# -- Review -----------------------------------------------------------------------------------------
def review_metrics(response: str, ground_truth: Mapping[str, Any], fmt: str) -> dict[str, float]:
    """str: the first character after the first ':' must be the gold letter (A-E); json: ``is_finished``."""
    pred: Any
    if fmt == "json":
        try:
            flag = format_load(response)["is_finished"]
            pred = {"review": flag} if flag in (True, False) else None
        except (ParseError, KeyError, TypeError, IndexError):
            pred = None
    else:
        text = response[response.find(":") + 1 :].strip()
        pred = text[0] if text and text[0] in "ABCDE" else None
    if pred is None:
        return {"review_quality": 0.0, "parse_rate": 0.0}
    return {"review_quality": float(pred == ground_truth["answer"]), "parse_rate": 1.0}


# -- Aggregation ------------------------------------------------------------------------------------
DIMENSIONS = ("Instruct", "Plan", "Reason", "Retrieve", "Understand", "Review")
# Subsets whose evaluator rounds its means to 4 decimals (np.round: halves to even) before
# convert_results.py combines them: InstructEvaluator and ReviewEvaluator ``_post_process`` @58f2240
# (instruct_evaluator.py l.152, review_evaluator.py l.126). Plan and RRU means are not rounded.
ROUNDED_SUBSETS = frozenset({"instruct_json", "instruct_string", "review_str"})


def subset_mean(subset: str, values: Sequence[float]) -> float:
    """A subset's mean of one metric, rounded where T-Eval's evaluator rounds it."""
    mean = float(np.mean(values))
    return float(np.round(mean, 4)) if subset in ROUNDED_SUBSETS else mean


def dimension_scores(means: Mapping[str, float]) -> dict[str, float]:
    """The six abilities from per-subset metric means, as T-Eval's ``convert_results.py`` combines them.

    ``means`` keys are ``<subset>.<metric>``; an ability is left out when a subset it needs is missing.
    """
    parts: dict[str, list[tuple[str, ...]]] = {
        "Instruct": [
            ("instruct_json.format", "instruct_json.args_em"),
            ("instruct_string.format", "instruct_string.args_em"),
        ],
        "Plan": [("plan_str.f1",), ("plan_json.f1",)],
        "Reason": [("reason_str.thought",), ("rru_json.thought",)],
        "Retrieve": [("retrieve_str.name",), ("rru_json.name",)],
        "Understand": [("understand_str.args",), ("rru_json.args",)],
        "Review": [("review_str.review_quality",)],
    }
    out = {}
    for dim, groups in parts.items():
        if all(k in means for g in groups for k in g):
            out[dim] = sum(sum(means[k] for k in g) / len(g) for g in groups) / len(groups)
    return out
