"""Agent-H scoring: one verdict per reply, and the H-score over a set of verdicts.

What a reply contains (``inspect_reply``):
- *calls*: ReAct ``Action: <name>`` lines, and JSON (or Python-dict) objects naming a function with
  its arguments (``{"name": .., "arguments"|"parameters"|"args": ..}``, ``{"function": {"name": ..}}``,
  ``{"action": .., "action_input": ..}``), also inside ``<tool_call>``/``<|action_start|>`` wrappers.
  A call whose name is empty or says no tool (``None``, ``N/A``, ``no tool needed``, ``Final
  Answer``, ``Finish``...) is a call of no tool. Objects with a ``description`` are echoed
  definitions, not calls;
- *markers*: ReAct protocol lines (``Thought:``, ``Action:``, ``Action Input:``, ``Observation:``,
  ``Final Answer:``) and tool-call tags (``<tool_call>``, ``<|action_start|>``, ``<|plugin|>``...).

The verdict on one sample (``judge``):
- format-level hallucination: in ``none_fits``/``no_tools`` (a plain answer is asked for): in the
  chat format any marker or any call; in the ReAct format any call, or any marker of the tool-call
  path (Action, Action Input, Observation, tags) — Thought/Final Answer is the protocol's direct
  answer. In ``control``: a call in the other format's syntax (JSON in ReAct, an Action
  line in chat), or ReAct markers in the chat format.
- action-level hallucination: in ``none_fits``/``no_tools`` any call of a tool; in ``control`` a
  call of a tool that is not listed (names match exactly, case-insensitively, or a listed alias).
- correct call (``control`` only): the first tool call names a gold API.
- ok: a non-empty reply with no format- and no action-level hallucination, and in ``control`` a
  correct call.

H-score (``h_score``), 0-100, higher is better: per format F, the share of ``none_fits`` and
``no_tools`` samples that are ok (``NoHall_F``) and the share of ``control`` samples that are ok
(``Ctrl_F``) are averaged with equal weight, H_F = 100 · (NoHall_F + Ctrl_F) / 2; H is the mean
of H_ReAct and H_chat. This is a balanced accuracy of the call-or-answer decision: a model that
never calls a tool scores at most 50, as does one that always calls the right tool. (On a partial
run, the mean is over the cells present.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from agentflan_eval.benchmarks.agent_h.tools import ApiSpec

NON_TOOL = frozenset(
    {
        "",
        "none",
        "n/a",
        "na",
        "no",
        "null",
        "nothing",
        "no action",
        "no tool",
        "no tools",
        "no_tool",
        "none needed",
        "not needed",
        "final answer",
        "final_answer",
        "finish",
        "answer",
    }
)
_MARKER = re.compile(
    r"^[ \t>*#]*(Thought|Action Input|Action|Observation|Final Answer)\s*\d*\s*\**:",
    re.IGNORECASE | re.MULTILINE,
)
_TAG = re.compile(
    r"<\|?(?:tool_call|action_start|plugin|function_call|interpreter)\|?>|<function=", re.IGNORECASE
)
_ACTION = re.compile(r"^[ \t>*#]*Action\s*\d*\s*\**:[ \t*]*(.*)$", re.IGNORECASE | re.MULTILINE)
_ACTION_INPUT = re.compile(r"^[ \t>*#]*Action Input\s*\d*\s*\**:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_PY_CALL = re.compile(
    r"""\{\s*['"](?:name|action)['"]\s*:\s*['"]([^'"\n]*)['"]\s*,\s*"""
    r"""['"](?:arguments|parameters|args|action_input)['"]"""
)
_ARG_KEYS = ("arguments", "parameters", "args", "action_input", "tool_input")
_TOOL_PATH = frozenset({"action", "action input", "observation"})


@dataclass(frozen=True)
class Call:
    name: str
    syntax: Literal["react", "json"]
    arguments: str = ""
    pos: int = 0

    @property
    def is_tool(self) -> bool:
        n = normalise(self.name)
        return n not in NON_TOOL and not re.match(r"(no|none|not|final answer)\b", n)


class Verdict(BaseModel):
    format_hallucination: bool
    action_hallucination: bool
    correct_call: bool | None  # control cases only
    ok: bool
    called: list[str]
    unlisted: list[str]
    markers: list[str]


def normalise(name: str) -> str:
    n = name.strip().strip("`*'\"").strip()
    n = re.split(r"[\[(]", n, maxsplit=1)[0].strip().rstrip(".:,;").strip("`*'\"").lower()
    return n.removeprefix("functions.")


def _json_calls(reply: str) -> list[Call]:
    """Function-call objects; objects that are not calls are searched for nested calls."""
    decoder, out, spans, i = json.JSONDecoder(), [], [], reply.find("{")
    while i >= 0:
        try:
            obj, end = decoder.raw_decode(reply, i)
        except json.JSONDecodeError:
            i = reply.find("{", i + 1)
            continue
        call = _call_of(obj, i)
        if call is not None:
            out.append(call)
            spans.append((i, end))
        i = reply.find("{", end if call is not None else i + 1)
    out += [
        Call(m.group(1), "json", pos=m.start())
        for m in _PY_CALL.finditer(reply)
        if not any(a <= m.start() < b for a, b in spans)
    ]
    return out


def _call_of(obj: object, pos: int) -> Call | None:
    if not isinstance(obj, dict) or "description" in obj:  # an echoed function definition is no call
        return None
    inner = obj.get("function") or obj.get("tool_call")
    if isinstance(inner, dict) and isinstance(inner.get("name"), str):
        return Call(inner["name"], "json", json.dumps(inner.get("arguments", "")), pos)
    name = obj.get("name", obj.get("action", obj.get("tool", obj.get("tool_name"))))
    args = next((obj[k] for k in _ARG_KEYS if k in obj), None)
    if isinstance(name, str) and args is not None:
        return Call(name, "json", args if isinstance(args, str) else json.dumps(args), pos)
    return None


def find_calls(reply: str) -> list[Call]:
    """Every call in the reply, in text order."""
    inputs = [(m.start(), m.group(1).strip()) for m in _ACTION_INPUT.finditer(reply)]
    react = []
    for m in _ACTION.finditer(reply):
        arg = next((text for pos, text in inputs if pos > m.start()), "")
        react.append(Call(m.group(1).strip(), "react", arg, m.start()))
    return sorted(react + _json_calls(reply), key=lambda c: c.pos)


def markers(reply: str) -> list[str]:
    found = [m.group(1).lower() for m in _MARKER.finditer(reply)]
    return found + [m.group(0).lower() for m in _TAG.finditer(reply)]


def resolve(name: str, apis: Sequence[ApiSpec]) -> str | None:
    """The listed API a called name means, or None when it names no listed API."""
    n = normalise(name)
    for a in apis:
        if n in (a.name.lower(), *(x.lower() for x in a.aliases)):
            return a.name
    return None


def judge(case: str, fmt: str, apis: Sequence[ApiSpec], gold: Sequence[str], reply: str) -> Verdict:
    calls = find_calls(reply)
    tool_calls = [c for c in calls if c.is_tool]
    found = markers(reply)
    unlisted = [c.name for c in tool_calls if resolve(c.name, apis) is None]
    if case == "control":
        wrong_syntax = "json" if fmt == "react" else "react"
        react_markers = [m for m in found if not m.startswith("<")]
        fmt_hall = any(c.syntax == wrong_syntax for c in calls) or (fmt == "chat" and bool(react_markers))
        act_hall = bool(unlisted)
        correct = bool(tool_calls) and resolve(tool_calls[0].name, apis) in gold
    else:
        tool_path = [m for m in found if m in _TOOL_PATH or m.startswith("<")]
        fmt_hall = bool(calls) or bool(found if fmt == "chat" else tool_path)
        act_hall = bool(tool_calls)
        correct = None
    ok = not fmt_hall and not act_hall and correct is not False and bool(reply.strip())
    return Verdict(
        format_hallucination=fmt_hall,
        action_hallucination=act_hall,
        correct_call=correct,
        ok=ok,
        called=[c.name for c in tool_calls],
        unlisted=unlisted,
        markers=found,
    )


H_DEFINITION = (
    "Per reply: format-level hallucination = agent-format output where a plain answer is asked for "
    "(chat format: any ReAct marker or function call; ReAct format: any Action/Action Input/Observation "
    "line or function call; control cases: a call in the other format's syntax); action-level "
    "hallucination = calling any tool when none fits (none_fits, no_tools) or a tool that is not listed "
    "(control); a reply is ok when non-empty, free of both, and in control cases its first tool call names "
    "a fitting listed tool. H_F = 100 * (share of ok none_fits+no_tools samples + share of ok control "
    "samples) / 2 for each format F; H-score = (H_react + H_chat) / 2 (never calling a tool scores at most 50)."
)


def _pct(xs: Sequence[bool]) -> float:
    return 100.0 * sum(xs) / len(xs)


def h_score(rows: Iterable[tuple[str, str, Verdict]]) -> tuple[float | None, dict[str, float]]:
    """(H, parts) from (case, format, verdict) rows; parts are percentages (see module docstring)."""
    rows = list(rows)
    parts: dict[str, float] = {}
    cells: list[float] = []
    for fmt in ("react", "chat"):
        mine = [(c, v) for c, f, v in rows if f == fmt]
        if not mine:
            continue
        neg = [v.ok for c, v in mine if c != "control"]
        ctrl = [v for c, v in mine if c == "control"]
        parts[f"format_hallucination_{fmt}"] = _pct([v.format_hallucination for _, v in mine])
        parts[f"action_hallucination_{fmt}"] = _pct([v.action_hallucination for _, v in mine])
        fmt_cells = []
        if neg:
            parts[f"no_hallucination_{fmt}"] = _pct(neg)
            fmt_cells.append(parts[f"no_hallucination_{fmt}"])
        if ctrl:
            parts[f"control_correct_call_{fmt}"] = _pct([bool(v.correct_call) for v in ctrl])
            parts[f"control_ok_{fmt}"] = _pct([v.ok for v in ctrl])
            fmt_cells.append(parts[f"control_ok_{fmt}"])
        parts[f"H_{fmt}"] = sum(fmt_cells) / len(fmt_cells)
        cells += fmt_cells
    return (sum(cells) / len(cells) if cells else None), parts
