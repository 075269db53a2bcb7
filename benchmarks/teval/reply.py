"""T-Eval's reply clean-up: what ``test.py`` does to a model's output before any evaluator reads it.

Followed: open-compass/T-Eval ``test.py`` @58f2240 (``split_special_tokens``, l.50-63, applied to every
prediction at l.79). The reply is cut before the first end-of-turn or role marker of the chat formats
T-Eval ships templates for, so a model that runs on into an imagined next turn keeps only its own; then
a leading ```json fence and any backticks at either end go. The markers are matched as plain text, as the
original does: ``"\\nuser"`` also cuts ``"\\nusername: ..."``.
"""

from __future__ import annotations

# In test.py's order; each cut keeps the text before the marker's first occurrence.
TURN_MARKERS = (
    "<eoa>",
    "<TOKENS_UNUSED_1>",
    "<|im_end|>",
    "\nuser",
    "\nassistant",
    "\nUSER",
    "[INST]",
    "<|user|>",
)
JSON_FENCE = "```json"


def clean_reply(text: str) -> str:
    """The prediction T-Eval's evaluators would see for the raw model reply ``text``."""
    for marker in TURN_MARKERS:
        text = text.partition(marker)[0]
    text = text.strip().removeprefix(JSON_FENCE)
    return text.strip("`").strip()
