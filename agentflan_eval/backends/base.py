"""The model interface: a batch of chat conversations in, completions with token counts out.

A backend that serves requests independently (a remote server) may also set ``streaming`` and
implement ``submit``: the agent loop then sends each episode's next request as soon as its last
reply is applied, instead of waiting for a whole turn of episodes (see agent_loop).
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from agentflan_eval.model_zoo.prompt_formats import chat_messages, completion_text
from agentflan_eval.records import Completion, GenerationConfig, Message, Overflow, PromptFormat, Record


class GenerationRequest(Record):
    """One conversation to continue. task/sample_id/turn identify it (the replay backend keys on them);
    overflow and prompt_format are the task's protocol: what to do with a prompt over the context (a
    backend cuts only under TRUNCATE_LEFT) and how to render the messages."""

    messages: list[Message]
    task: str = ""
    sample_id: str = ""
    turn: int = 0
    overflow: Overflow = Overflow.END_EPISODE
    prompt_format: PromptFormat = PromptFormat.CHAT
    repeat: int = 0  # which of --repeats runs of the sample: another repeat, another sampling seed


class Backend(ABC):
    name: str = ""
    template_name: str = "server"  # the chat template applied, for the manifest
    streaming: bool = False  # True: submit() works, and the agent loop keeps requests in flight per episode
    cuts_prompts: bool = True  # False: it cannot cut a prompt's tokens (a remote chat API)
    raw_prompts: bool = True  # False: a raw completion prompt goes out as one chat user turn

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        """One completion per request, in order. A request that fails gets FinishReason.ERROR."""

    def submit(self, request: GenerationRequest, config: GenerationConfig) -> Future[Completion]:
        """Start one request without waiting; a request that fails resolves to FinishReason.ERROR.

        Only backends with ``streaming = True`` implement it.
        """
        raise NotImplementedError(f"backend {self.name!r} has no submit(); use generate()")

    def describe(self) -> dict[str, Any]:
        """Model path, hash and settings for the run manifest."""
        return {}

    def render_example(self, messages: Sequence[Message]) -> str:
        """The exact prompt text the model sees for ``messages`` (for the manifest)."""
        return "\n".join(f"[{m.role}] {m.content}" for m in messages)

    def render(self, request: GenerationRequest) -> str:
        """The prompt the model is sent for ``request``, in its task's prompt format (the manifest's
        first_prompt); backends without a template show the messages they send."""
        if request.prompt_format is PromptFormat.COMPLETION and self.raw_prompts:
            return completion_text(request.messages)
        return self.render_example(chat_messages(request.messages, request.prompt_format))

    def close(self) -> None:
        return None


def request_seed(request: GenerationRequest, config: GenerationConfig) -> int:
    """A sampling seed of the request's own (run seed, task, sample, turn, repeat), so that a sampled reply
    does not depend on which other requests share its batch, and a rerun reproduces it. Repeat 0 keeps the
    seeds of runs made before repeats existed."""
    name = f"{request.task}/{request.sample_id}/{request.turn}"
    key = zlib.crc32((name + (f"/{request.repeat}" if request.repeat else "")).encode())
    return config.seed * 1_000_003 + key


def fit_context(
    ids: list[int], request: GenerationRequest, context_length: int, max_new_tokens: int
) -> tuple[list[int], int]:
    """The prompt ids the model gets and how many were cut. Under TRUNCATE_LEFT a prompt longer than the
    context minus the reply budget keeps its newest tokens (BOS and the first [INST] go first), as TGI's
    ``truncate`` did; otherwise it is unchanged, and one with no room ends its episode as context_limit."""
    keep = context_length - max_new_tokens
    if request.overflow is not Overflow.TRUNCATE_LEFT or len(ids) <= keep or keep < 1:
        return ids, 0
    return ids[-keep:], len(ids) - keep


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
