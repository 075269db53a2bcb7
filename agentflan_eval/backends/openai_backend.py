"""Any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, vLLM, TGI, llama.cpp server...).

Requests are async (``openai.AsyncOpenAI``) on one event loop in a background thread, so hundreds can
be in flight from a single-threaded agent loop; a semaphore caps them at ``max_connections`` (the run's
``--concurrency``) in all.
``api_base`` may list several servers, comma-separated: each request goes to the one with the fewest
requests in flight. The openai client retries 429, 5xx and dropped connections with exponential
backoff (honouring Retry-After); a request that still fails marks only its own episode as a model
error, and a prompt over the server's context window ends its episode as ``context_limit``.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, cast

from agentflan_eval.backends.base import Backend, GenerationRequest, cut_at_stop, request_seed
from agentflan_eval.errors import BackendUnavailableError, MissingDependencyError
from agentflan_eval.model_zoo.prompt_formats import chat_messages
from agentflan_eval.records import Completion, FinishReason, GenerationConfig, Message

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

# How OpenAI, vLLM and TGI word a prompt that does not fit the model's window (HTTP 400).
_CONTEXT_OVERFLOW = re.compile(
    r"context[ _]length|maximum context|must be <= \d+|too many tokens", re.IGNORECASE
)


def _utf8(text: str) -> str:
    """``text`` with any lone surrogate (a reply can hold one) as U+FFFD: a request body must be UTF-8."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class OpenAIBackend(Backend):
    name = "openai"
    template_name = "server"
    streaming = True
    cuts_prompts = False  # the server's tokenizer is not here: an overlong prompt ends as context_limit
    raw_prompts = False  # /v1/chat/completions only: a raw completion prompt is sent as one user turn

    def __init__(
        self,
        model: str,
        api_base: str | None,
        api_key_env: str = "OPENAI_API_KEY",
        max_connections: int = 8,
        max_retries: int = 5,
        timeout: float = 300.0,
    ):
        try:
            import openai
        except ImportError:
            raise MissingDependencyError("openai", extra="openai", why="needed by --backend openai") from None
        self._openai = openai
        self._left_out: Any = getattr(openai, "omit", openai.NOT_GIVEN)  # a parameter not sent at all
        self.model = model
        base = api_base or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self.endpoints = [b.strip() for b in base.split(",") if b.strip()]
        self.api_base = ",".join(self.endpoints)
        key = os.environ.get(api_key_env) or "EMPTY"  # local servers accept any key
        self._check_timeout = min(10.0, timeout)
        self.clients = [
            openai.AsyncOpenAI(base_url=b, api_key=key, max_retries=max_retries, timeout=timeout)
            for b in self.endpoints
        ]
        self._in_flight = [0] * len(self.clients)  # touched only on the event loop thread
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-backend", daemon=True)
        self._thread.start()
        self._slots = self._call(self._make_semaphore(max(1, max_connections)))
        try:
            for client, base_url in zip(self.clients, self.endpoints):
                self._call(self._check(client, base_url))
        except BaseException:
            self.close()
            raise

    def _call(self, coro: Any) -> Any:
        """Run a coroutine on the backend's loop and wait for it (set-up and tear-down only)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @staticmethod
    async def _make_semaphore(n: int) -> asyncio.Semaphore:
        return asyncio.Semaphore(n)

    async def _check(self, client: Any, base_url: str) -> None:
        """Fail fast with one line when an endpoint cannot be reached at all."""
        try:
            await client.with_options(max_retries=1, timeout=self._check_timeout).models.list()
        except self._openai.APIConnectionError as e:
            raise BackendUnavailableError(f"endpoint {base_url} is unreachable: {e}") from None
        except self._openai.APIStatusError:
            pass  # reachable; some servers do not implement /models

    def submit(self, request: GenerationRequest, config: GenerationConfig) -> Future[Completion]:
        return asyncio.run_coroutine_threadsafe(self._one(request, config), self._loop)

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        futures = [self.submit(r, config) for r in requests]
        return [f.result() for f in futures]

    async def _one(self, req: GenerationRequest, config: GenerationConfig) -> Completion:
        async with self._slots:
            i = min(range(len(self.clients)), key=self._in_flight.__getitem__)
            self._in_flight[i] += 1
            t0 = time.perf_counter()
            try:
                resp = await self.clients[i].chat.completions.create(
                    model=self.model,
                    messages=[_api_message(m) for m in chat_messages(req.messages, req.prompt_format)],
                    max_tokens=config.max_new_tokens,
                    temperature=config.temperature,
                    # TGI refuses top_p = 1.0 (it must be < 1): sent only where it narrows sampling
                    top_p=config.top_p if 0 < config.temperature and config.top_p < 1 else self._left_out,
                    seed=request_seed(req, config),
                    stop=config.stop[:4] or None,  # the API accepts at most four; the rest are cut below
                )
            except self._openai.BadRequestError as e:
                overflow = _CONTEXT_OVERFLOW.search(str(e))
                reason = FinishReason.CONTEXT_LIMIT if overflow else FinishReason.ERROR
                return Completion(
                    text="",
                    finish_reason=reason,
                    error=f"{type(e).__name__}: {e}",
                    seconds=time.perf_counter() - t0,
                )
            except self._openai.OpenAIError as e:
                return Completion(
                    text="",
                    finish_reason=FinishReason.ERROR,
                    error=f"{type(e).__name__}: {e}",
                    seconds=time.perf_counter() - t0,
                )
            finally:
                self._in_flight[i] -= 1
        seconds = time.perf_counter() - t0
        if not resp.choices or resp.choices[0].message is None:
            return Completion(
                text="", finish_reason=FinishReason.ERROR, error="response without a message", seconds=seconds
            )
        choice = resp.choices[0]
        text, _ = cut_at_stop(choice.message.content or "", config.stop)
        usage = resp.usage
        return Completion(
            text=text,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=_finish_reason(choice.finish_reason),
            seconds=seconds,
        )

    async def _shutdown(self) -> None:
        """Cancel requests still in flight (an interrupted run), then close the HTTP connections."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in self.clients:
            await client.close()

    def describe(self) -> dict[str, Any]:
        return {"model_path": self.model, "api_base": self.api_base}

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


def _finish_reason(api: str | None) -> FinishReason:
    """The API's finish_reason: "length" is the token limit; every other ("stop", "tool_calls",
    "content_filter", "function_call") ended the reply, which the agent loop then reads as it stands."""
    return FinishReason.LENGTH if api == "length" else FinishReason.STOP


def _api_message(m: Message) -> ChatCompletionMessageParam:
    content = _utf8(m.content)
    if m.role == "system":
        return {"role": "system", "content": content}
    if m.role == "user":
        return {"role": "user", "content": content}
    if m.role == "assistant":
        return {"role": "assistant", "content": content}
    # an observation sent as a "tool" turn without the tool_call_id the API's type asks for (no tool calls
    # are made: the agent's actions are text); servers that need one answer 400, an error for that episode
    return cast("ChatCompletionMessageParam", {"role": "tool", "content": content})
