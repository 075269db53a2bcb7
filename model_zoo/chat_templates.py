"""Chat templates, written out character for character.

Agent models were tuned on one exact prompt layout; a template that differs by a newline changes
their scores, so templates live here as plain code with tests on their exact output, never inside
a backend. ``tokenizer`` defers to the tokenizer's own Jinja template.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agentflan_eval.records import Message, Role

AGENTLM_SYSTEM = "You are a helpful, respectful and honest assistant."


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    description: str
    render_fn: Callable[[Sequence[Message]], str] | None
    stop: tuple[str, ...] = ()
    adds_bos: bool = False  # the rendered text already holds the BOS token
    # the rendering without the system prompt the template adds by itself (AgentLM's fixed one)
    bare_fn: Callable[[Sequence[Message]], str] | None = None

    def render(self, messages: Sequence[Message], tokenizer: Any = None, system: bool = True) -> str:
        """The prompt text for ``messages``, ending where the assistant's reply begins; ``system=False``
        leaves out the template's own default system prompt (messages of role system still render)."""
        if self.render_fn is not None:
            return (self.render_fn if system or self.bare_fn is None else self.bare_fn)(messages)
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("the 'tokenizer' chat template needs a tokenizer that has a chat_template")
        dicts = [{"role": _plain_role(m.role), "content": m.content} for m in messages]
        return tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True)


def _plain_role(role: Role) -> Role:
    """Templates without a tool role read tool output as a user turn, as AgentBench did."""
    return "user" if role == "tool" else role


def system_into_user(messages: Sequence[Message]) -> list[Message]:
    """The messages with no system turn: its text opens the first user turn (as AgentLM's template puts a
    task's own system prompt), so a template renders no system block."""
    sys_parts = [m.content for m in messages if m.role == "system"]
    turns = [m for m in messages if m.role != "system"]
    if not sys_parts:
        return turns
    head = "\n\n".join(sys_parts)
    if turns and turns[0].role == "user":
        return [Message(role="user", content=f"{head}\n\n{turns[0].content}"), *turns[1:]]
    return [Message(role="user", content=head), *turns]


def _agentflan(messages: Sequence[Message]) -> str:
    # internlm/Agent-FLAN-7b: user/system open with <|Human|>U+0D46 and close with "\n ";
    # assistant turns open with <|Assistant|>U+0D46 and close with U+0D3F "\n ".
    out = []
    for m in messages:
        if m.role == "assistant":
            out.append("<|Assistant|>\u0d46" + m.content + "\u0d3f\n ")
        else:
            out.append("<|Human|>\u0d46" + m.content + "\n ")
    return "".join(out) + "<|Assistant|>\u0d46"


def _llama2(messages: Sequence[Message], system: str | None = None) -> str:
    """Llama-2-chat: <s>[INST] <<SYS>>\\n..\\n<</SYS>>\\n\\n user [/INST] answer </s> ..."""
    msgs = [Message(role=_plain_role(m.role), content=m.content) for m in messages]
    if system is not None:  # AgentLM's system prompt is fixed; a task's own goes into the first user turn
        sys_text: str | None = system
        turns = system_into_user(msgs)
    else:
        sys_parts = [m.content for m in msgs if m.role == "system"]
        sys_text = "\n\n".join(sys_parts) if sys_parts else None
        turns = [m for m in msgs if m.role != "system"]
    # Consecutive same-role turns are merged so the [INST] alternation holds.
    merged: list[Message] = []
    for m in turns:
        if merged and merged[-1].role == m.role:
            merged[-1] = Message(role=m.role, content=merged[-1].content + "\n\n" + m.content)
        else:
            merged.append(m)
    # FastChat's llama-2 rendering (v0.2.31, which AgentTuning used) writes an empty turn as its bare tag: an
    # empty reply adds nothing after "[/INST]" (and no "</s><s>"), an empty user turn is "[INST][/INST]".
    out = []
    first, bos = True, "<s>"
    for m in merged:
        text = m.content.strip()
        if m.role == "user":
            if first and sys_text:
                text = f"<<SYS>>\n{sys_text}\n<</SYS>>\n\n{text}"
            out.append(f"{bos}[INST] {text} [/INST]" if text else f"{bos}[INST][/INST]")
            first = False
        else:
            out.append(f" {text} </s>" if text else "")
            bos = "<s>" if text else ""
    return "".join(out)


def _chatml(messages: Sequence[Message]) -> str:
    body = "".join(f"<|im_start|>{_plain_role(m.role)}\n{m.content}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


TEMPLATES: dict[str, ChatTemplate] = {
    t.name: t
    for t in (
        ChatTemplate(
            "agentflan",
            "Agent-FLAN-7B (InternLM-style, U+0D46/U+0D3F markers)",
            _agentflan,
            stop=("\u0d3f", "<|Human|>"),
        ),
        ChatTemplate("llama2", "Llama-2-chat", _llama2, stop=("</s>",), adds_bos=True),
        ChatTemplate(
            "agentlm",
            "AgentLM: Llama-2-chat with its fixed system prompt",
            lambda ms: _llama2(ms, system=AGENTLM_SYSTEM),
            stop=("</s>",),
            adds_bos=True,
            bare_fn=_llama2,
        ),
        ChatTemplate("chatml", "ChatML (<|im_start|>role ... <|im_end|>)", _chatml, stop=("<|im_end|>",)),
        ChatTemplate("tokenizer", "the tokenizer's own chat_template (Jinja)", None),
    )
}


def get_template(name: str) -> ChatTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise KeyError(f"unknown chat template {name!r}; choose one of: {', '.join(TEMPLATES)}") from None


def choose(requested: str | None, known_template: str | None, tokenizer: Any = None) -> ChatTemplate:
    """--chat-template wins; then the known-model table; then the tokenizer's own; then ChatML."""
    if requested:
        return get_template(requested)
    if known_template:
        return get_template(known_template)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return TEMPLATES["tokenizer"]
    return TEMPLATES["chatml"]
