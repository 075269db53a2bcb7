"""Any OpenAI-compatible /v1/chat/completions endpoint (OpenAI, vLLM, TGI, llama.cpp server...).

Requests run concurrently up to ``max_connections``; the openai client retries 429 and 5xx with
exponential backoff. A request that still fails marks only its own episode as a model error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agentflan_eval.backends.base import Backend, GenerationRequest, cut_at_stop
from agentflan_eval.errors import BackendUnavailableError, MissingDependencyError
from agentflan_eval.records import Completion, GenerationConfig


class OpenAIBackend(Backend):
    name = "openai"
    template_name = "server"

    def __init__(self, model: str, api_base: str | None, api_key_env: str = "OPENAI_API_KEY",
                 max_connections: int = 8, max_retries: int = 5, timeout: float = 600.0):
        try:
            import openai
        except ImportError:
            raise MissingDependencyError("openai", extra="openai", why="needed by --backend openai") from None
        self._openai = openai
        self.model = model
        self.api_base = api_base or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        key = os.environ.get(api_key_env) or "EMPTY"  # local servers accept any key
        self.client = openai.OpenAI(base_url=self.api_base, api_key=key, max_retries=max_retries, timeout=timeout)
        self.pool = ThreadPoolExecutor(max_workers=max(1, max_connections))
        self._check()

    def _check(self) -> None:
        """Fail fast with one line when the endpoint cannot be reached at all."""
        try:
            self.client.with_options(max_retries=1, timeout=10).models.list()
        except self._openai.APIConnectionError as e:
            raise BackendUnavailableError(f"endpoint {self.api_base} is unreachable: {e}") from None
        except self._openai.APIStatusError:
            pass  # reachable; some servers do not implement /models

    def _one(self, req: GenerationRequest, config: GenerationConfig) -> Completion:
        t0 = time.perf_counter()
        try:
            resp = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in req.messages],  # type: ignore[misc]
                max_tokens=config.max_new_tokens, temperature=config.temperature, seed=config.seed,
                stop=config.stop[:4] or None,  # the API accepts at most four
            )
        except self._openai.OpenAIError as e:
            return Completion(text="", finish_reason="error", error=f"{type(e).__name__}: {e}",
                              seconds=time.perf_counter() - t0)
        choice = resp.choices[0]
        text, _ = cut_at_stop(choice.message.content or "", config.stop)
        usage = resp.usage
        return Completion(text=text, prompt_tokens=usage.prompt_tokens if usage else 0,
                          completion_tokens=usage.completion_tokens if usage else 0,
                          finish_reason=choice.finish_reason or "stop", seconds=time.perf_counter() - t0)

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        return list(self.pool.map(lambda r: self._one(r, config), requests))

    def describe(self) -> dict[str, Any]:
        return {"model_path": self.model, "api_base": self.api_base}

    def close(self) -> None:
        self.pool.shutdown(wait=False)
