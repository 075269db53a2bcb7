"""AgentTuning's agent-side rules for ScienceWorld (``eval_heldout/science-world``, from SwiftSage).

Written from the behaviour of its ``eval.py`` and ``eval_utils.py`` (THUDM/AgentTuning e33a45d): the
test-variation selection, how a free-text action is mapped onto the simulator's valid actions, what counts
as a failed action, and how the prompt is trimmed to the 4,096-token budget (``eval.py`` l.258-270): the
conversation as FastChat's ``llama-2`` template renders it with AgentLM's system message, counted in
cl100k tokens (``tiktoken.encoding_for_model("gpt-4")``, l.203-204), must be at most 4,096 - 60.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence

from agentflan_eval.records import Message

ROOMS = (
    "hallway",
    "greenhouse",
    "green house",
    "kitchen",
    "bathroom",
    "outside",
    "workshop",
    "art studio",
    "foundry",
    "bedroom",
    "living room",
)
TOKEN_BUDGET = 4096 - 60  # AgentTuning trims the prompt until it is at most this
SYSTEM = "You are a helpful, respectful and honest assistant."  # eval.py l.245
NEW_TASK = "The preceding task has ended. Now, I will start a new task."
_FOCUS_WORDS = re.compile(r"\b(?:focus|on|in|to)\b", re.IGNORECASE)


def select_test_variations(task_idx: int, variations: Sequence[int]) -> list[int]:
    """AgentTuning's test selection: shuffle with seed 1, keep 10 (task 15: 9, task 25: 5)."""
    keep = {15: 9, 25: 5}.get(task_idx, min(10, len(variations)))
    chosen = list(variations)
    random.Random(1).shuffle(chosen)
    return chosen[:keep]


def clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ")


def is_failed(observation: str) -> bool:
    """AgentTuning's failure test (a substring test: any 'not' counts, as in the original)."""
    return (
        observation == "No known action matches that input."
        or "can't" in observation
        or "not" in observation
        or "doesn't" in observation
    )


def candidate_actions(valid: Iterable[str], look: str, inventory: str, recent: Sequence[str]) -> set[str]:
    """The simulator's valid actions filtered the way AgentTuning does before matching."""
    actions = set(valid) | {f"open door to {r}" for r in ROOMS}
    actions -= {f"focus on {x}" for x in ("agent", "air", *ROOMS)}
    actions -= set(recent[-3:])
    seen = f"{look} {inventory}"
    closed_door = {a for a in actions if "door" in a and "open" not in a}
    unseen_focus = {
        a
        for a in actions
        if a.startswith("focus on") and any(w not in seen for w in _FOCUS_WORDS.sub("", a).split(" "))
    }
    return actions - closed_door - unseen_focus


def map_action(prediction: str, candidates: set[str]) -> str:
    """The prediction itself if valid, else the candidate sharing most words with it (first among the
    shortest; sorted for determinism where the original iterated a set), sanitised to [A-Za-z0-9 ]."""
    exact = prediction.replace("green house", "greenhouse").strip()
    if exact in candidates:
        return exact
    best, overlap = prediction, 0
    words = set(prediction.split(" "))
    for a in sorted(candidates, key=lambda x: (len(x), x)):
        n = len(words & set(a.split(" ")))
        if n > overlap:
            best, overlap = a, n
    return re.sub(r"[^A-Za-z0-9 ]+", "", best)


def counted_text(messages: Sequence[Message]) -> str:
    """The text AgentTuning counts: FastChat v0.2.31's ``llama-2`` rendering with AgentLM's system message
    and no reply slot (``get_prompt`` before ``append_message(roles[1], None)``). Turns alternate by
    position, user first, whatever their role; an empty turn renders as its bare tag."""
    out = f"[INST] <<SYS>>\n{SYSTEM}\n<</SYS>>\n\n"
    for i, m in enumerate(messages):
        tag = "[INST]" if i % 2 == 0 else "[/INST]"
        if not m.content:
            out += tag
        elif i == 0:
            out += m.content + " "
        else:
            out += f"{tag} {m.content}" + (" " if i % 2 == 0 else " </s><s>")
    return out


def trim_prompt(messages: Sequence[Message], budget: int = TOKEN_BUDGET) -> list[Message]:
    """AgentTuning's loop (``eval.py`` l.265-270): while the counted text is over ``budget`` cl100k tokens,
    delete messages 4-5 (the second few-shot pair, later the oldest episode turns past the first reply) and,
    once message 4 is the task, the first few-shot pair too. ``messages`` = instruction, 'Ok.', few-shot
    turns, task, episode turns. Stops when nothing more can go (the original would crash there)."""
    from agentflan_eval.benchmarks.common.cl100k import count_tokens

    msgs = list(messages)
    while len(msgs) > 4 and count_tokens(counted_text(msgs)) > budget:
        del msgs[4:6]
        if len(msgs) > 4 and msgs[4].content.startswith(NEW_TASK):
            del msgs[2:4]
    return msgs
