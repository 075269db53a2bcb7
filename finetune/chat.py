"""Conversations that need no alignment: general chat (OASST trees, ShareGPT JSONL) and the released
Agent-FLAN rows (already aligned and decomposed by its authors)."""

from __future__ import annotations

from typing import Any

from agentflan_eval.finetune.align import trim
from agentflan_eval.finetune.parse import ParseError
from agentflan_eval.finetune.records import Conversation, Role, Turn

_SHAREGPT_ROLES: dict[str, Role] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "function_call": "assistant",
    "observation": "tool",
}
_RELEASE_ROLES: dict[str, Role] = {"system": "system", "user": "user", "assistant": "assistant"}


def oasst_conversation(tree: dict[str, Any], rid: str) -> Conversation:
    """One OpenAssistant message tree: from the root, follow the best-ranked (lowest ``rank``) live
    reply at each level, then cut the path so that it ends on an assistant message."""
    node = tree.get("prompt")
    turns: list[Turn] = []
    while node is not None and not node.get("deleted"):
        role: Role = "assistant" if node["role"] == "assistant" else "user"
        turns.append(
            Turn(
                role=role,
                content=node["text"],
                loss=role == "assistant",
                capability="chat" if role == "assistant" else None,
            )
        )
        live = [r for r in node.get("replies", []) if not r.get("deleted")]
        node = min(live, key=lambda r: (r.get("rank") is None, r.get("rank") or 0)) if live else None
    turns = trim(turns)
    if not turns:
        raise ParseError("no assistant reply")
    return Conversation(id=rid, source="oasst", format="chat", turns=turns)


def sharegpt_conversation(rec: dict[str, Any], rid: str, source: str = "sharegpt") -> Conversation:
    """ShareGPT ``{conversations: [{from, value}]}`` or OpenAI ``{messages: [{role, content}]}``."""
    raw = rec.get("conversations") or rec.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ParseError("no 'conversations' or 'messages' list")
    turns = []
    for m in raw:
        speaker = str(m.get("from", m.get("role", ""))).lower()
        if speaker not in _SHAREGPT_ROLES:
            raise ParseError(f"unknown speaker {speaker!r}")
        role = _SHAREGPT_ROLES[speaker]
        turns.append(
            Turn(
                role=role,
                content=str(m.get("value", m.get("content")) or ""),
                loss=role == "assistant",
                capability="chat" if role == "assistant" else None,
            )
        )
    turns = trim(turns)
    if not turns:
        raise ParseError("no assistant reply")
    return Conversation(id=str(rec.get("id", rid)), source=source, format="chat", turns=turns)


def release_conversation(rec: dict[str, Any], rid: str, split: str) -> Conversation:
    """A released ``internlm/Agent-FLAN`` row ``{conversation: [{role, content, loss}], id}``; its own
    loss flags are kept. Roles other than system/user/assistant are tool output."""
    raw = rec.get("conversation")
    if not isinstance(raw, list) or not raw:
        raise ParseError("no 'conversation' list")
    turns = []
    for m in raw:
        role = _RELEASE_ROLES.get(str(m.get("role")), "tool")  # other roles are tool output
        turns.append(Turn(role=role, content=str(m.get("content") or ""), loss=bool(m.get("loss", False))))
    return Conversation(
        id=f"{split}/{rec.get('id', rid)}", source=f"agentflan/{split}", format="release", turns=trim(turns)
    )
