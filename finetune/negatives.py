"""Negative samples against agent hallucination (Agent-FLAN §3.3).

Agent-tuned models call tools where none belong. Two kinds of plain-answer samples teach restraint:
(a) no tools are offered and the user asks an ordinary question → a plain answer;
(b) real tools are offered (a tool set from a parsed trajectory) but the question needs none → a
    plain answer with no tool call.
Queries and answers are real instruction/answer pairs (self-instruct's human-written seed tasks);
which pair and which tool set go together is fixed by the seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from agentflan_eval.finetune.align import tools_system_prompt
from agentflan_eval.finetune.records import Conversation, NegativeKind, ToolSpec, Turn


@dataclass(frozen=True)
class QAPair:
    id: str
    query: str
    answer: str


def seed_task_pairs(rows: Sequence[dict]) -> list[QAPair]:
    """self-instruct ``seed_tasks.jsonl``: instruction (+ input) → output of the first instance."""
    out = []
    for r in rows:
        inst = (r.get("instances") or [{}])[0]
        if not inst.get("output"):
            continue
        query = r["instruction"] + (f"\n\n{inst['input']}" if inst.get("input") else "")
        out.append(QAPair(id=r["id"], query=query, answer=inst["output"]))
    return out


def build_negatives(
    pairs: Sequence[QAPair], tool_sets: Sequence[tuple[str, list[ToolSpec]]], n_a: int, n_b: int, seed: int
) -> list[Conversation]:
    """``n_a`` samples of kind (a) and ``n_b`` of kind (b), disjoint in their queries (fewer if the pool
    is smaller). ``tool_sets`` are (source, tools) pairs; kind (b) needs at least one."""
    rng = random.Random(f"{seed}/negatives")
    pool = list(pairs)
    rng.shuffle(pool)
    usable_sets = sorted((s for s in tool_sets if s[1]), key=lambda s: (s[0], [t.name for t in s[1]]))
    out = []
    for p in pool[:n_a]:
        out.append(_sample(p, [], "a", "none"))
    if usable_sets:
        for p in pool[n_a : n_a + n_b]:
            source, tools = usable_sets[rng.randrange(len(usable_sets))]
            out.append(_sample(p, tools, "b", source))
    return out


def _sample(p: QAPair, tools: list[ToolSpec], kind: NegativeKind, tool_source: str) -> Conversation:
    return Conversation(
        id=f"negative-{kind}/{p.id}",
        source="self_instruct",
        format="negative",
        negative=kind,
        turns=[
            Turn(role="system", content=tools_system_prompt(tools)),
            Turn(role="user", content=p.query),
            Turn(role="assistant", content=p.answer, loss=True, capability="negative"),
        ],
        metadata={"tool_source": tool_source, "tools": [t.name for t in tools]},
    )
