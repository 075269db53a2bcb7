"""vLLM backend: the offline ``vllm.LLM`` engine, fed the same token ids as the ``hf`` backend.

Prompts go through ``ChatEncoder`` (the hf backend's template and tokenisation) and reach vLLM as
token ids, so both backends see identical inputs and write the same records. Prefix caching is on
by default: an agent episode's prompt at turn k+1 starts with its whole prompt at turn k.

Parallelism: tensor and pipeline parallel sizes go to the engine. vLLM's offline ``LLM`` refuses
``data_parallel_size > 1`` in one process, so data parallelism here is that many engine replicas in
worker processes, each on its own GPUs; every request of an episode goes to the same replica, so
the replica's prefix cache already holds the episode's earlier turns.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agentflan_eval.backends.base import Backend, GenerationRequest, cut_at_stop
from agentflan_eval.backends.hf import ChatEncoder, load_path, trusts_remote_code
from agentflan_eval.config import RunConfig
from agentflan_eval.errors import AgentFlanError, MissingDependencyError, ModelLoadError
from agentflan_eval.model_resolve import ResolvedModel, model_hash
from agentflan_eval.records import Completion, GenerationConfig, Message

log = logging.getLogger(__name__)

# Engine settings that have their own flag (or are fixed by the backend); --engine-args may not set them.
RESERVED_ENGINE_ARGS = {
    "model": "--model", "tokenizer": "--model", "seed": "--seed", "dtype": "--dtype",
    "tensor_parallel_size": "--tensor-parallel-size", "pipeline_parallel_size": "--pipeline-parallel-size",
    "data_parallel_size": "--data-parallel-size", "gpu_memory_utilization": "--gpu-memory-utilization",
    "max_model_len": "--max-model-len",
}


def require_vllm() -> None:
    """A one-line error, before any model loads, when vLLM is missing or broken."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        if e.name == "vllm":
            raise MissingDependencyError("vllm", "vllm", "the vllm backend needs it and a CUDA GPU") from None
        raise ModelLoadError(f"vllm is installed but cannot be imported: {type(e).__name__}: {e}") from None


def parse_engine_args(text: str | None) -> dict[str, Any]:
    """--engine-args: a JSON object of extra ``vllm.LLM`` keyword arguments."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise AgentFlanError(f"--engine-args is not valid JSON ({e.msg} at char {e.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise AgentFlanError(f"--engine-args must be a JSON object like '{{\"enforce_eager\": true}}', "
                             f"not {type(value).__name__}")
    return value


@dataclass(frozen=True)
class VLLMOptions:
    """Engine settings from the run config; validated here so a bad value fails before vLLM starts."""

    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float | None = None  # None: vLLM's default (0.9)
    max_model_len: int | None = None  # None: the model's own context length
    dtype: str | None = None  # None: "auto" (the checkpoint's dtype)
    engine_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
            if (value := getattr(self, name)) < 1:
                raise AgentFlanError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
        if (share := self.gpu_memory_utilization) is not None and not 0 < share <= 1:
            raise AgentFlanError(f"--gpu-memory-utilization must be in (0, 1], not {share}")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise AgentFlanError(f"--max-model-len must be at least 2, not {self.max_model_len}")
        clash = sorted(k for k in self.engine_args if k in RESERVED_ENGINE_ARGS)
        if clash:
            raise AgentFlanError("--engine-args may not set " + ", ".join(
                f"{k} (use {RESERVED_ENGINE_ARGS[k]})" for k in clash))

    @classmethod
    def from_config(cls, config: RunConfig) -> VLLMOptions:
        return cls(config.tensor_parallel_size, config.pipeline_parallel_size, config.data_parallel_size,
                   config.gpu_memory_utilization, config.max_model_len, config.dtype,
                   parse_engine_args(config.engine_args))

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


def llm_kwargs(options: VLLMOptions, path: str, trust_remote_code: bool = False,
               seed: int = 0) -> dict[str, Any]:
    """The keyword arguments of one ``vllm.LLM`` engine (one data-parallel replica)."""
    kwargs: dict[str, Any] = {
        "model": path, "tokenizer": path, "trust_remote_code": trust_remote_code, "seed": seed,
        "dtype": options.dtype or "auto", "tensor_parallel_size": options.tensor_parallel_size,
        "pipeline_parallel_size": options.pipeline_parallel_size, "enable_prefix_caching": True,
    }
    if options.gpu_memory_utilization is not None:
        kwargs["gpu_memory_utilization"] = options.gpu_memory_utilization
    if options.max_model_len is not None:
        kwargs["max_model_len"] = options.max_model_len
    return {**kwargs, **options.engine_args}


def replica_devices(options: VLLMOptions, visible: Sequence[str]) -> list[str]:
    """CUDA_VISIBLE_DEVICES for each data-parallel replica: consecutive groups of tp × pp GPUs."""
    n = options.gpus_per_replica
    if len(visible) < n * options.data_parallel_size:
        raise AgentFlanError(f"data parallel {options.data_parallel_size} × tensor parallel "
                             f"{options.tensor_parallel_size} × pipeline parallel "
                             f"{options.pipeline_parallel_size} needs {n * options.data_parallel_size} GPUs; "
                             f"{len(visible)} visible")
    return [",".join(visible[r * n:(r + 1) * n]) for r in range(options.data_parallel_size)]


def _visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


@dataclass(frozen=True)
class _Job:
    ids: list[int]
    max_tokens: int


@dataclass(frozen=True)
class _Output:
    text: str
    tokens: int
    finish_reason: str | None


class _Engine:
    """One vLLM engine: token-id prompts in, plain outputs out (picklable, for replica workers)."""

    def __init__(self, kwargs: dict[str, Any]):
        from vllm import LLM

        self.llm = LLM(**kwargs)
        engine_config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        reported = getattr(engine_config, "max_model_len", 0)
        self.max_model_len = int(reported or kwargs.get("max_model_len") or 0)

    def run(self, jobs: list[_Job], stops: tuple[str, ...],
            config: GenerationConfig) -> tuple[list[_Output], float]:
        from vllm import SamplingParams

        params = [SamplingParams(max_tokens=j.max_tokens, temperature=config.temperature, stop=list(stops),
                                 seed=config.seed) for j in jobs]
        t0 = time.perf_counter()
        results = self.llm.generate([{"prompt_token_ids": j.ids} for j in jobs], params, use_tqdm=False)
        seconds = time.perf_counter() - t0
        return [_Output(r.outputs[0].text, len(r.outputs[0].token_ids), r.outputs[0].finish_reason)
                for r in results], seconds


def _replica_main(kwargs: dict[str, Any], devices: str, conn: Any) -> None:
    """A data-parallel worker: builds its engine on its own GPUs, then serves (jobs, stops, config)."""
    os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        engine = _Engine(kwargs)
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
        return
    conn.send(("ready", engine.max_model_len))
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the parent is gone
            return
        if msg is None:
            return
        try:
            conn.send(("ok", engine.run(*msg)))
        except Exception as e:  # noqa: BLE001 - the parent fails this batch; the agent loop retries
            conn.send(("error", f"{type(e).__name__}: {e}"))


class _Replicas:
    """Data-parallel engine replicas, one spawned process each (non-daemonic: vLLM starts its own)."""

    def __init__(self, kwargs: dict[str, Any], devices: list[str]):
        import atexit
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        for dev in devices:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_replica_main, args=(kwargs, dev, child), name=f"vllm-replica-{dev}")
            proc.start()
            child.close()  # the parent's recv() sees EOF if the worker dies
            self.procs.append(proc)
            self.conns.append(parent)
        atexit.register(self.close)  # runs before multiprocessing joins its non-daemonic children
        try:
            self.max_model_len = min(self._receive(r) for r in range(len(devices)))
        except RuntimeError as e:
            self.close()
            raise ModelLoadError(f"vLLM could not start: {e}") from None

    def _receive(self, replica: int) -> Any:
        try:
            kind, value = self.conns[replica].recv()
        except EOFError:
            raise RuntimeError(f"replica {replica} exited (code {self.procs[replica].exitcode})") from None
        if kind == "error":
            raise RuntimeError(f"replica {replica}: {value}")
        return value

    def run(self, parts: list[list[_Job]], stops: tuple[str, ...],
            config: GenerationConfig) -> list[tuple[list[_Output], float]]:
        busy = [r for r, jobs in enumerate(parts) if jobs]
        for r in busy:
            self.conns[r].send((parts[r], stops, config))
        got = {}
        for r in busy:  # drain every replica's reply before raising, so the pipes stay in step
            try:
                got[r] = self._receive(r)
            except RuntimeError as e:
                got[r] = e
        failed = [v for v in got.values() if isinstance(v, RuntimeError)]
        if failed:
            raise failed[0]
        return [got.get(r, ([], 0.0)) for r in range(len(parts))]

    def close(self) -> None:
        for conn, proc in zip(self.conns, self.procs):
            if proc.is_alive():
                try:
                    conn.send(None)
                except OSError:  # the worker is already gone
                    pass
        for proc in self.procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)
        self.procs, self.conns = [], []


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, model: ResolvedModel, options: VLLMOptions | None = None,
                 chat_template: str | None = None, seed: int = 0):
        require_vllm()
        self.resolved = model
        self.options = options or VLLMOptions()
        path = load_path(model)
        self.encoder = ChatEncoder.load(model, path, chat_template)
        self.template_name = self.encoder.template.name
        self.kwargs = llm_kwargs(self.options, path, trusts_remote_code(model), seed)
        self._engine: _Engine | None = None
        self._replicas: _Replicas | None = None
        if self.options.data_parallel_size > 1:
            self._replicas = _Replicas(self.kwargs, replica_devices(self.options, _visible_gpus()))
            self.max_model_len = self._replicas.max_model_len
        else:
            try:
                self._engine = _Engine(self.kwargs)
            except (ValueError, RuntimeError, OSError, TypeError) as e:  # bad engine args, no GPU, OOM
                raise ModelLoadError(f"vLLM cannot start {model.spec!r}: {type(e).__name__}: "
                                     f"{str(e).splitlines()[0] if str(e) else ''}") from None
            self.max_model_len = self._engine.max_model_len
        if not self.max_model_len:
            raise ModelLoadError("vLLM did not report the model's context length; pass --max-model-len")

    def render_example(self, messages: Sequence[Message]) -> str:
        return self.encoder.render(messages)

    def _replica(self, index: int, request: GenerationRequest) -> int:
        """Every turn of an episode goes to one replica, whose prefix cache holds its earlier turns."""
        key = f"{request.task}\0{request.sample_id}" if request.sample_id else str(index)
        return zlib.crc32(key.encode()) % self.options.data_parallel_size

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        """Same context rule as the hf backend: a prompt leaving at most one token of room is not sent."""
        encoded = [self.encoder.encode(r.messages) for r in requests]
        results: list[Completion | None] = [None] * len(requests)
        parts: list[list[_Job]] = [[] for _ in range(self.options.data_parallel_size)]
        where: list[list[int]] = [[] for _ in parts]
        for i, ids in enumerate(encoded):
            room = self.max_model_len - len(ids)
            if room <= 1:
                results[i] = Completion(text="", prompt_tokens=len(ids), finish_reason="context_limit")
                continue
            r = self._replica(i, requests[i])
            parts[r].append(_Job(ids, max(1, min(config.max_new_tokens, room))))
            where[r].append(i)
        stops = self.encoder.stops(config.stop)
        if self._engine is not None:
            outputs = [self._engine.run(parts[0], stops, config)] if parts[0] else [([], 0.0)]
        else:
            assert self._replicas is not None
            outputs = self._replicas.run(parts, stops, config)
        for r, (outs, seconds) in enumerate(outputs):
            for i, out in zip(where[r], outs):
                results[i] = _completion(out, len(encoded[i]), stops, seconds / max(1, len(outs)))
        return [c for c in results if c is not None]

    def describe(self) -> dict[str, Any]:
        engine = {k: v for k, v in self.kwargs.items() if k not in ("model", "tokenizer")}
        return {"model_path": self.resolved.path, "model_hash": model_hash(self.resolved),
                "load_path": self.kwargs["model"], "context_length": self.max_model_len,
                "engine": engine, "options": asdict(self.options)}

    def close(self) -> None:
        if self._replicas is not None:
            self._replicas.close()
            self._replicas = None
        self._engine = None


def _completion(out: _Output, prompt_tokens: int, stops: tuple[str, ...], seconds: float) -> Completion:
    """vLLM already cuts at stop strings; cutting again guards against detokenisation edge cases.
    vLLM's 'stop' is EOS or a stop string, 'length' the token limit; anything else ('abort') is an error."""
    text, stopped = cut_at_stop(out.text, stops)
    reason = "stop" if stopped else out.finish_reason if out.finish_reason in ("stop", "length") else "error"
    error = f"vLLM finished: {out.finish_reason!r}" if reason == "error" else None
    return Completion(text=text, prompt_tokens=prompt_tokens, completion_tokens=out.tokens,
                      finish_reason=str(reason), seconds=seconds, error=error)
