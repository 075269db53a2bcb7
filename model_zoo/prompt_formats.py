"""How a benchmark's PromptFormat turns its messages into what the model is sent.

The original evaluations did not render every task alike (docs/original_protocols.md §3): AgentBench.old
sent its held-in tasks through FastChat's llama-2 template with no system message, the held-out scripts
through the same template with AgentLM's system prompt, and BOLAA's HotpotQA as one raw completion prompt.
The template itself is the model's (--chat-template, the known-model table); the format is the task's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentflan_eval.model_zoo.chat_templates import ChatTemplate, system_into_user
from agentflan_eval.records import Message, PromptFormat


def completion_text(messages: Sequence[Message]) -> str:
    """The messages as one raw prompt: their texts run together, each piece carrying its own separators
    (BOLAA's prompt is the instruction, the question and a scratchpad that ends in ``\nThought n:``)."""
    return "".join(m.content for m in messages)


def chat_messages(messages: Sequence[Message], fmt: PromptFormat) -> list[Message]:
    """The messages a chat API is sent under ``fmt``: a raw completion becomes one user turn."""
    if fmt is PromptFormat.COMPLETION:
        return [Message(role="user", content=completion_text(messages))]
    if fmt is PromptFormat.CHAT_NO_SYSTEM:
        return system_into_user(messages)
    return list(messages)


def render(
    template: ChatTemplate, messages: Sequence[Message], fmt: PromptFormat, tokenizer: Any = None
) -> str:
    """The prompt text: the raw completion, or the template with or without its default system block."""
    if fmt is PromptFormat.COMPLETION:
        return completion_text(messages)
    system = fmt is not PromptFormat.CHAT_NO_SYSTEM
    return template.render(chat_messages(messages, fmt), tokenizer, system=system)


def template_label(
    template_name: str, fmt: PromptFormat, own_system: bool = False, remote: bool = False
) -> str:
    """The template a task's prompts went through, as the manifest names it. ``own_system``: the template
    inserts its own default system prompt even when asked for none; ``remote``: the template is a chat
    server's, applied where this run cannot see it."""
    if fmt is PromptFormat.COMPLETION:
        return (
            f"{template_name} (the raw prompt sent as one user turn)" if remote else "none (raw completion)"
        )
    if fmt is PromptFormat.CHAT_NO_SYSTEM:
        if remote:
            return f"{template_name} (no system message sent; the server's template may add its own)"
        kept = "its own default system prompt kept" if own_system else "no system block"
        return f"{template_name} ({kept})"
    return template_name
