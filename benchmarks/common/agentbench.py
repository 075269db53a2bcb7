"""What every task of AgentTuning's frozen AgentBench shares: the history window of its ``Session``.

``AgentBench.old/src/agent.py`` sends the model the first message (the task instruction) and then
only the latest messages that fit in 3500 "segments" (its rough token count), starting on an agent
turn, and tells the model how many messages it left out. Benchmarks following that protocol return
``agentbench_window(messages)`` from ``fit_prompt``.
"""

from __future__ import annotations

from typing import ClassVar

from agentflan_eval.records import Decoding, Message, Overflow, PromptFormat


class AgentBenchProtocol:
    """What AgentBench.old's client did for every held-in task; mixed in before ``Benchmark``."""

    # Its TGI client (src/agents/tgi_client.py) sent temperature 0.7 with do_sample false; the TGI image it
    # pinned (sha-4cce843) samples whenever the temperature is not 1, so every held-in reply was sampled.
    decoding: ClassVar[Decoding] = Decoding(
        temperature=0.7,
        top_p=1.0,
        source="AgentBench.old tgi_client.py on TGI sha-4cce843 (sampled at T=0.7)",
    )
    # It asked TGI to keep the last (max_tokens - max_new_tokens) prompt tokens, cutting from the left.
    overflow: ClassVar[Overflow] = Overflow.TRUNCATE_LEFT
    history: ClassVar[str] = (
        "AgentBench.old's window (src/agent.py Session.filter_messages): the instruction, then the newest turns "
        "within 3,500 segments"
    )
    overflow_note: ClassVar[str] = (
        "prompt cut from the left to the context minus the reply budget (TGI truncate)"
    )
    # FastChat's llama-2 template with no system message (set_system_message was never called).
    prompt_format: ClassVar[PromptFormat] = PromptFormat.CHAT_NO_SYSTEM
    # Every held-in launch script (AgentBench.old eval/single-task/*.sh) passed --max_new_tokens 128.
    max_new_tokens: ClassVar[int | None] = 128

    def fit_prompt(self, messages: list[Message]) -> list[Message]:
        """src/agent.py's Session cut every task's history with its window: the instruction plus the newest
        turns within 3500 segments."""
        return agentbench_window(messages)


SEGMENT_LIMIT = 3500


def segments(text: str) -> int:
    """AgentBench's count: each run of letters in pieces of at most 7, plus every other non-blank character."""
    n = run = 0
    for ch in text:
        if ch.isalpha():
            run += 1
            if run == 7:
                n, run = n + 1, 0
        else:
            if run:
                n, run = n + 1, 0
            if ch not in " \n":
                n += 1
    return n + (1 if run else 0)


def agentbench_window(messages: list[Message], limit: int = SEGMENT_LIMIT) -> list[Message]:
    """The first message, then the newest messages within ``limit`` segments in all, beginning on a reply."""
    total = segments(messages[0].content)
    kept: list[Message] = []
    for m in reversed(messages[1:]):
        total += segments(m.content)
        if total >= limit:
            break
        kept.append(m)
    if kept and kept[-1].role != "assistant":
        kept.pop()
    first, omitted = messages[0], len(messages) - len(kept) - 1
    if omitted > 0:
        first = Message(
            role=first.role, content=f"{first.content}\n\n[NOTICE] {omitted} messages are omitted."
        )
    return [first, *reversed(kept)]
