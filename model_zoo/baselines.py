"""Published baselines: the Agent-FLAN main table and AgentTuning's per-task table, with their sources.

Numbers are transcribed as published (``shared/reference/published_scores.md``); keys are the
project's task names (``os``, ``db``, ``alfworld``, ``webshop``, ``mind2web``, ``kg``, ``hotpotqa``,
``sciworld``, ``webarena``, ``miniwob``, ``teval``, ``agent_h``) plus the published aggregates
``held_in`` (AgentTuning's weighted held-in score, not a percentage), ``held_out`` and ``overall``.
A cell the source leaves empty is absent, never 0. Reports pick rows with :func:`select`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from agentflan_eval.errors import UnknownNameError


@dataclass(frozen=True)
class Source:
    citation: str
    location: str  # where the numbers were read: repository and file, or page
    notes: str = ""


@dataclass(frozen=True)
class BaselineRow:
    """One model's published numbers in one table. ``scores`` maps a column key to its value."""

    table: str  # "agent-flan" | "agenttuning"
    key: str  # short id used by the selection flag, unique within its table
    model: str  # the name as the source prints it
    scores: Mapping[str, float] = field(default_factory=dict)

    def get(self, column: str) -> float | None:
        return self.scores.get(column)


def _row(table: str, key: str, model: str, **scores: float | None) -> BaselineRow:
    return BaselineRow(
        table, key, model, MappingProxyType({k: v for k, v in scores.items() if v is not None})
    )


AGENT_FLAN_SOURCE = Source(
    citation="Chen et al. 2024, Agent-FLAN (arXiv 2403.12881), Table 'Main results'",
    location="InternLM/Agent-FLAN docs/figure/performance.png",
    notes="Overall = mean of HotpotQA, SciWorld, WebArena, T-Eval, Agent-H; Held-In is AgentTuning's "
    "weighted score; T-Eval's GPT-4 is GPT-4-1106-preview (open-compass/T-Eval docs/scores.csv).",
)
AGENTTUNING_SOURCE = Source(
    citation="Zeng et al. 2023, AgentTuning (arXiv 2310.12823), main table",
    location="THUDM/AgentTuning docs/index.html",
    notes="Held-in/held-out Overall are AgentTuning's weighted scores (weights unpublished).",
)
SOURCES = {"agent-flan": AGENT_FLAN_SOURCE, "agenttuning": AGENTTUNING_SOURCE}

_F = "agent-flan"
AGENT_FLAN_MAIN: tuple[BaselineRow, ...] = (
    _row(
        _F,
        "gpt-3.5",
        "GPT-3.5",
        held_in=1.59,
        hotpotqa=37.4,
        sciworld=21.2,
        webarena=4.56,
        teval=84.0,
        agent_h=92.1,
        overall=47.8,
    ),
    _row(
        _F,
        "gpt-4",
        "GPT-4",
        held_in=2.75,
        hotpotqa=52.1,
        sciworld=36.4,
        webarena=6.28,
        teval=86.4,
        agent_h=94.2,
        overall=55.1,
    ),
    _row(
        _F,
        "llama2-7b-chat",
        "Llama2-7B (chat)",
        held_in=0.19,
        hotpotqa=22.6,
        sciworld=5.9,
        webarena=1.2,
        teval=27.4,
        agent_h=78.7,
        overall=27.2,
    ),
    _row(
        _F,
        "fireact-7b",
        "FireAct-7B",
        held_in=None,
        hotpotqa=26.2,
        sciworld=6.8,
        webarena=0.25,
        teval=9.3,
        agent_h=40.4,
        overall=16.6,
    ),
    _row(
        _F,
        "agentlm-7b",
        "AgentLM-7B",
        held_in=1.96,
        hotpotqa=22.3,
        sciworld=13.7,
        webarena=0.74,
        teval=41.4,
        agent_h=80.6,
        overall=31.7,
    ),
    _row(
        _F,
        "agenttuning-reimpl",
        "AgentTuning* (re-impl.)",
        held_in=1.89,
        hotpotqa=25.4,
        sciworld=16.8,
        webarena=2.71,
        teval=61.8,
        agent_h=84.5,
        overall=38.2,
    ),
    _row(
        _F,
        "agent-flan-7b",
        "Agent-FLAN-7B",
        held_in=2.01,
        hotpotqa=28.5,
        sciworld=20.0,
        webarena=4.68,
        teval=66.0,
        agent_h=89.1,
        overall=41.7,
    ),
)

# AgentTuning's table is printed task × model; transposed here into one row per model.
_AT_MODELS = (
    "gpt-3.5",
    "gpt-4",
    "llama2-7b",
    "llama2-13b",
    "llama2-70b",
    "agentlm-7b",
    "agentlm-13b",
    "agentlm-70b",
)
_AT_NAMES = (
    "GPT-3.5",
    "GPT-4",
    "Llama2-7B",
    "Llama2-13B",
    "Llama2-70B",
    "AgentLM-7B",
    "AgentLM-13B",
    "AgentLM-70B",
)
_AT_COLUMNS: dict[str, tuple[float, ...]] = {
    "alfworld": (14.0, 78.0, 2.0, 2.0, 6.0, 84.0, 76.0, 86.0),
    "webshop": (67.2, 58.6, 4.4, 7.2, 1.5, 63.6, 70.8, 64.9),
    "mind2web": (15.7, 22.6, 3.7, 2.3, 0.2, 6.4, 8.4, 13.5),
    "kg": (27.2, 52.1, 0.0, 0.0, 0.0, 18.1, 26.8, 47.0),
    "os": (32.6, 36.8, 8.3, 9.0, 9.0, 17.4, 18.1, 21.5),
    "db": (15.0, 33.7, 0.3, 1.3, 9.3, 30.6, 33.7, 37.7),
    "held_in": (1.59, 2.75, 0.19, 0.20, 0.27, 1.96, 2.11, 2.55),
    "sciworld": (21.2, 36.4, 5.9, 6.4, 7.9, 13.7, 18.0, 20.8),
    "miniwob": (66.7, 69.4, 0.0, 19.6, 0.7, 28.9, 31.1, 60.7),
    "webarena": (4.56, 6.28, 1.23, 1.11, 0.62, 0.74, 1.60, 3.81),
    "hotpotqa": (37.4, 52.1, 22.6, 25.2, 37.5, 22.3, 29.6, 41.6),
    "rewoo": (71.0, 79.7, 48.3, 48.7, 55.1, 50.9, 55.7, 66.0),
    "dcg": (24.5, 50.0, 0.0, 0.0, 5.0, 7.0, 2.5, 23.5),
    "held_out": (1.49, 2.13, 0.38, 0.49, 0.51, 0.67, 0.78, 1.40),
    "mmlu": (70.0, 86.4, 48.0, 54.3, 62.1, 48.7, 53.6, 59.5),
    "humaneval": (48.1, 67.0, 13.9, 18.4, 30.8, 15.4, 14.8, 28.7),
    "gsm8k": (57.1, 87.1, 27.7, 37.5, 54.7, 24.6, 32.4, 59.7),
    "mt_bench": (7.94, 8.99, 6.26, 6.65, 6.85, 6.11, 6.57, 7.26),
}
AGENTTUNING_TABLE: tuple[BaselineRow, ...] = tuple(
    _row("agenttuning", key, name, **{col: vals[i] for col, vals in _AT_COLUMNS.items()})
    for i, (key, name) in enumerate(zip(_AT_MODELS, _AT_NAMES))
)

TABLES: dict[str, tuple[BaselineRow, ...]] = {"agent-flan": AGENT_FLAN_MAIN, "agenttuning": AGENTTUNING_TABLE}
# Names accepted by --baselines besides table names and table:key pairs.
ALIASES = {"paper": ("agent-flan",), "all": ("agent-flan", "agenttuning"), "none": ()}
DEFAULT_SELECTION = "paper"


def gpt4_reference() -> BaselineRow:
    """The row every GPT-4-normalised score divides by: GPT-4 in the Agent-FLAN main table."""
    return next(r for r in AGENT_FLAN_MAIN if r.key == "gpt-4")


def select(spec: str = DEFAULT_SELECTION) -> list[BaselineRow]:
    """Rows named by a comma-separated spec: ``paper`` (default), ``agenttuning``, ``all``, ``none``,
    or single rows as ``table:key`` (e.g. ``agenttuning:agentlm-70b``) or a bare key of the paper's table."""
    rows: list[BaselineRow] = []
    for item in (s.strip().lower() for s in spec.split(",")):
        if not item:
            continue
        if item in ALIASES or item in TABLES:
            for table in ALIASES.get(item, (item,)):
                rows += TABLES[table]
            continue
        table, _, key = item.rpartition(":")
        hits = [r for r in TABLES.get(table or "agent-flan", ()) if r.key == key]
        if not hits:
            names = [*ALIASES, *TABLES, *(f"{r.table}:{r.key}" for t in TABLES.values() for r in t)]
            raise UnknownNameError("baseline", item, names)
        rows += hits
    unique = {(r.table, r.key): r for r in reversed(rows)}  # first mention wins, order kept below
    return [r for r in rows if unique.pop((r.table, r.key), None) is not None]
