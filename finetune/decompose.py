"""Capability decomposition (Agent-FLAN §3.2): supervise reasoning, retrieval and understanding apart.

Each aligned function-call turn is split into a retrieval turn (the tool's name: choosing the tool)
and an understanding turn (the JSON arguments: reading the tool documentation and the observations);
thoughts and final answers are reasoning. Format following ("instruct") is carried by the ReAct share.
The loss flags then mix the capabilities at the configured ratios (default reasoning 1.0 :
retrieval 0.5 : understanding 0.7, the released ``r10r5u7`` split): for each capability, exactly
round(ratio × n) of the n conversations that hold it keep loss on its turns, chosen with the seed;
in the others those turns stay as context without loss.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence

from agentflan_eval.finetune.records import AGENT_CAPABILITIES, Conversation, Turn

DEFAULT_RATIOS: dict[str, float] = {"reasoning": 1.0, "retrieval": 0.5, "understanding": 0.7}


def decompose(conv: Conversation) -> Conversation:
    """Split the function-call turns of an aligned conversation into retrieval and understanding turns."""
    calls = set(conv.metadata.get("function_call_turns", []))
    turns: list[Turn] = []
    for i, t in enumerate(conv.turns):
        if i not in calls:
            turns.append(t)
            continue
        call = json.loads(t.content)
        turns.append(Turn(role="assistant", content=call["name"], loss=True, capability="retrieval"))
        turns.append(
            Turn(
                role="assistant",
                content=json.dumps(call["arguments"], ensure_ascii=False),
                loss=True,
                capability="understanding",
            )
        )
    meta = {k: v for k, v in conv.metadata.items() if k != "function_call_turns"}
    return conv.model_copy(update={"turns": turns, "metadata": meta})


def apply_ratios(convs: Sequence[Conversation], ratios: dict[str, float], seed: int) -> list[Conversation]:
    """Set per-turn loss flags so each capability is supervised in exactly round(ratio × n) of the n
    conversations holding it. Conversations left with no supervised turn are dropped."""
    for cap, r in ratios.items():
        if cap not in AGENT_CAPABILITIES or not 0.0 <= r <= 1.0:
            raise ValueError(
                f"ratio {cap}={r}: capabilities are {', '.join(AGENT_CAPABILITIES)}, ratios in [0, 1]"
            )
    chosen: dict[str, set[int]] = {}
    for cap in AGENT_CAPABILITIES:
        holders = [i for i, c in enumerate(convs) if any(t.capability == cap for t in c.turns)]
        rng = random.Random(f"{seed}/ratio/{cap}")
        chosen[cap] = set(rng.sample(holders, round(ratios.get(cap, 1.0) * len(holders))))
    out = []
    for i, c in enumerate(convs):
        turns = [
            t.model_copy(update={"loss": i in chosen[t.capability]}) if t.capability in chosen else t
            for t in c.turns
        ]
        if any(t.loss for t in turns):
            supervised = sorted({t.capability for t in turns if t.loss and t.capability})
            out.append(
                c.model_copy(update={"turns": turns, "metadata": {**c.metadata, "supervised": supervised}})
            )
    return out


def capability_counts(convs: Sequence[Conversation]) -> dict[str, dict[str, int]]:
    """Per capability: conversations holding it, conversations supervising it, supervised turns."""
    held: Counter[str] = Counter()
    supervised: Counter[str] = Counter()
    turns: Counter[str] = Counter()
    for c in convs:
        caps = {t.capability for t in c.turns if t.capability}
        held.update(caps)
        supervised.update({t.capability for t in c.turns if t.capability and t.loss})
        turns.update(t.capability for t in c.turns if t.capability and t.loss)
    return {
        cap: {
            "conversations": held[cap],
            "supervised_conversations": supervised[cap],
            "supervised_turns": turns[cap],
        }
        for cap in sorted(held)
    }
