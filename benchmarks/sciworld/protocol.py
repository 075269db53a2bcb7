"""AgentTuning's agent-side rules for ScienceWorld (``eval_heldout/science-world``, from SwiftSage).

Written from the behaviour of its ``eval.py`` and ``eval_utils.py``: the test-variation selection,
how a free-text action is mapped onto the simulator's valid actions, what counts as a failed action,
and how the few-shot prompt is trimmed to the 4,096-token budget.
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
TOKEN_BUDGET = 4096 - 60  # AgentTuning trims the prompt until it is shorter than this
_FOCUS_WORDS = re.compile(r"\b(?:focus|on|in|to)\b", re.IGNORECASE)
_TOKEN = re.compile(r"\w+|[^\w\s]")


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


def approx_tokens(text: str) -> int:
    """Words and punctuation marks: a stand-in for tiktoken's gpt-4 count, which needs a download."""
    return len(_TOKEN.findall(text))


def trim_prompt(messages: Sequence[Message], n_examples: int, budget: int = TOKEN_BUDGET) -> list[Message]:
    """Drop few-shot turns, oldest pair first (the first pair last), then the oldest episode turns,
    until the prompt fits ``budget``. ``messages`` = instruction, 'Ok.', examples, task, episode turns."""
    msgs = list(messages)
    examples = n_examples

    def size() -> int:
        return sum(approx_tokens(m.content) + 4 for m in msgs)

    while size() > budget and len(msgs) > 5:
        if examples >= 4:
            del msgs[4:6]
            examples -= 2
        elif examples >= 2:
            del msgs[2:4]
            examples -= 2
        else:
            del msgs[3:5]  # keep instruction, 'Ok.' and the task; drop the oldest action and its observation
    return msgs
