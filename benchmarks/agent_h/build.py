"""The Agent-H sample builder: deterministic, seeded and versioned.

Every random choice is a SHA-256 of (seed, purpose, ids), never Python's ``random``, so the same
data files, ``GENERATOR_VERSION`` and seed give the same samples in the same order on every
platform and Python version; ``samples_hash`` fingerprints the set (it is the sha256 of the JSONL
that ``write_jsonl`` writes). Change anything that alters samples → bump ``GENERATOR_VERSION``.

Layout: 900 items (query + tool list), 300 per case, each rendered in both formats = 1,800 samples.
- ``none_fits`` (a): 200 general requests + 100 knowledge questions, each with 2-3 tools drawn
  from the catalogue that share no content word with the query, are never generic search tools,
  and for knowledge questions are never entity-lookup tools.
- ``no_tools`` (b): 200 general requests + 100 knowledge questions, no tools.
- ``control`` (c): every ToolBench query with its own ToolBench API list (gold: the APIs its
  reference trajectory called, or the "relevant APIs" of the instruction file), and knowledge
  questions with a web-search tool (T-Eval GoogleSearch or ToolBench seo_api, alternating) plus
  1-2 non-fitting tools (gold: the search APIs).
Sample order repeats six cells (case × format) round by round, so ``--limit N`` stays balanced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field

from agentflan_eval.benchmark import Sample
from agentflan_eval.benchmarks.agent_h.prompts import render
from agentflan_eval.benchmarks.agent_h.queries import Query, QueryKind, general_queries, knowledge_queries
from agentflan_eval.benchmarks.agent_h.tools import ApiSpec, Catalogue, Tool
from agentflan_eval.data import DataResolver
from agentflan_eval.records import Message

GENERATOR_VERSION = 1
DEFAULT_SEED = 0
N_PER_CASE = 300
GENERAL_PER_CASE = 200  # in none_fits and no_tools; the rest are knowledge questions
MAX_LISTED_APIS = 12
Case = Literal["none_fits", "no_tools", "control"]
Fmt = Literal["react", "chat"]
CASES: tuple[Case, ...] = ("none_fits", "no_tools", "control")
FORMATS: tuple[Fmt, ...] = ("react", "chat")
CELL_ORDER: tuple[tuple[Case, Fmt], ...] = (
    ("none_fits", "react"),
    ("control", "chat"),
    ("no_tools", "react"),
    ("none_fits", "chat"),
    ("control", "react"),
    ("no_tools", "chat"),
)
SEARCH_GOLD = {
    "GoogleSearch": ("GoogleSearch.serper_search",),
    "seo_api": ("search_for_seo_api", "serp_get_for_seo_api", "crawl_for_seo_api", "search_b_for_seo_api"),
}

T = TypeVar("T")


class AgentHSample(Sample):
    case: Case
    format: Fmt
    query: str
    query_id: str  # "<dataset>:<id>"
    kind: QueryKind
    apis: list[ApiSpec] = Field(default_factory=list)  # the listed functions, in prompt order
    gold: list[str] = Field(default_factory=list)  # control: the listed APIs that fit the query

    def messages(self) -> list[Message]:
        return render(self.format, self.query, self.apis)


def _key(seed: int, *parts: str) -> str:
    return hashlib.sha256("\x1f".join([str(GENERATOR_VERSION), str(seed), *parts]).encode()).hexdigest()


def _id(x: Any) -> str:
    return x.id


def _shuffled(items: Iterable[T], seed: int, salt: str, ident: Callable[[T], str] = _id) -> list[T]:
    return sorted(items, key=lambda x: _key(seed, salt, ident(x)))


def _interleave(lists: Sequence[Sequence[T]]) -> list[T]:
    out: list[T] = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def _deal(pool: Iterable[T], quotas: dict[str, int]) -> dict[str, list[T]]:
    """Give each item to the case with the largest unfilled share, so every case gets the same mix."""
    out: dict[str, list[T]] = {c: [] for c in quotas}
    for item in pool:
        open_ = [c for c in quotas if len(out[c]) < quotas[c]]
        if not open_:
            return out
        out[max(open_, key=lambda c: 1 - len(out[c]) / quotas[c])].append(item)
    raise ValueError(f"not enough queries to fill {quotas}")


def _pick_tools(cat: Catalogue, q: Query, seed: int, k: int, room: int) -> list[Tool]:
    """k tools that do not fit ``q`` (see the module docstring), at most ``room`` APIs in all."""
    picked: list[Tool] = []
    for t in _shuffled(cat.tools.values(), seed, "tools:" + q.id, ident=lambda t: t.name):
        if t.generic or (q.kind == "knowledge" and t.lookup) or not t.fits_none_of(q.text):
            continue
        if len(t.apis) <= room - sum(len(p.apis) for p in picked):
            picked.append(t)
        if len(picked) == k:
            return picked
    if not picked:
        raise ValueError(f"no tool in the catalogue is safe to list with {q.id}")
    return picked


def _with_aliases(apis: list[ApiSpec], cat: Catalogue) -> list[ApiSpec]:
    """Also accept a bare API name where unique in the list, and a one-API tool's own name."""

    def bare(a: ApiSpec) -> str:
        return a.name.split(".", 1)[1] if "." in a.name else a.name.split("_for_", 1)[0]

    counts: dict[str, int] = {}
    for a in apis:
        counts[bare(a)] = counts.get(bare(a), 0) + 1
    out = []
    for a in apis:
        aliases = [bare(a)] if counts[bare(a)] == 1 and bare(a) != a.name else []
        if len(cat.tools[a.tool].apis) == 1 and a.tool != a.name:
            aliases.append(a.tool)
        out.append(a.model_copy(update={"aliases": aliases}))
    return out


def _items(
    cat: Catalogue, data: DataResolver, seed: int
) -> dict[str, list[tuple[Query, list[ApiSpec], list[str]]]]:
    general = _interleave([_shuffled(v, seed, src) for src, v in sorted(general_queries(data).items())])
    know = knowledge_queries(data)
    knowledge = _interleave(
        [_shuffled(know["bamboogle"], seed, "bamboogle"), _shuffled(know["hotpotqa"], seed, "hotpotqa")]
    )
    seen: set[str] = set()
    toolbench = []
    for qid, text, listed, gold in cat.toolbench_queries:
        if text not in seen:
            seen.add(text)
            toolbench.append((Query(id=f"toolbench:{qid}", text=text, kind="toolbench"), listed, gold))
    n_know = N_PER_CASE - GENERAL_PER_CASE
    gen = _deal(general, {"none_fits": GENERAL_PER_CASE, "no_tools": GENERAL_PER_CASE})
    kn = _deal(knowledge, {"none_fits": n_know, "no_tools": n_know, "control": N_PER_CASE - len(toolbench)})

    items: dict[str, list[tuple[Query, list[ApiSpec], list[str]]]] = {c: [] for c in CASES}
    for q in _shuffled(gen["none_fits"] + kn["none_fits"], seed, "none_fits"):
        k = 2 + int(_key(seed, "k", q.id), 16) % 2
        items["none_fits"].append(
            (q, [a for t in _pick_tools(cat, q, seed, k, MAX_LISTED_APIS) for a in t.apis], [])
        )
    items["no_tools"] = [(q, [], []) for q in _shuffled(gen["no_tools"] + kn["no_tools"], seed, "no_tools")]
    control = [(q, [cat.apis[n] for n in listed], gold) for q, listed, gold in toolbench]
    for i, q in enumerate(kn["control"]):
        search = cat.tools["GoogleSearch" if i % 2 == 0 else "seo_api"]
        k = 1 + int(_key(seed, "k", q.id), 16) % 2
        tools = _shuffled(
            [search, *_pick_tools(cat, q, seed, k, MAX_LISTED_APIS - len(search.apis))],
            seed,
            "order:" + q.id,
            ident=lambda t: t.name,
        )
        control.append((q, [a for t in tools for a in t.apis], list(SEARCH_GOLD[search.name])))
    items["control"] = _shuffled(control, seed, "control", ident=lambda it: it[0].id)
    return {c: [(q, _with_aliases(apis, cat), gold) for q, apis, gold in v] for c, v in items.items()}


def build_samples(data: DataResolver, seed: int = DEFAULT_SEED) -> list[AgentHSample]:
    """The whole Agent-H set in its standard order (cells interleaved round by round)."""
    items = _items(Catalogue(data), data, seed)
    out = []
    for i in range(N_PER_CASE):
        for case, fmt in CELL_ORDER:
            q, apis, gold = items[case][i]
            out.append(
                AgentHSample(
                    id=f"{case}-{i:03d}-{fmt}",
                    subset=f"{case}/{fmt}",
                    case=case,
                    format=fmt,
                    query=q.text,
                    query_id=q.id,
                    kind=q.kind,
                    apis=apis,
                    gold=gold,
                )
            )
    return out


def _lines(samples: Sequence[AgentHSample], seed: int) -> list[str]:
    return [
        json.dumps(
            {
                "version": GENERATOR_VERSION,
                "seed": seed,
                "sample": s.model_dump(mode="json"),
                "messages": [m.model_dump() for m in s.messages()],
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        for s in samples
    ]


def samples_hash(samples: Sequence[AgentHSample], seed: int = DEFAULT_SEED) -> str:
    """sha256 of the set's JSONL export (so ``sha256sum`` of the written file gives the same)."""
    h = hashlib.sha256()
    for line in _lines(samples, seed):
        h.update((line + "\n").encode("utf-8"))
    return h.hexdigest()


def write_jsonl(path: Path, data: DataResolver | None = None, seed: int = DEFAULT_SEED) -> str:
    """Write the generated set (one sample and its rendered messages per line); returns its sha256."""
    samples = build_samples(data or DataResolver(), seed)
    Path(path).write_text("".join(line + "\n" for line in _lines(samples, seed)), encoding="utf-8")
    return samples_hash(samples, seed)
