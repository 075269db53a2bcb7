"""One vLLM engine and the thread that steps it (``LLMEngine.step``): each request joins the engine's running
batch as soon as it is submitted, and its future resolves when its own reply ends."""

from __future__ import annotations

import atexit
import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineJob:
    ids: list[int]
    max_tokens: int
    stops: tuple[str, ...]
    temperature: float
    seed: int  # the request's own (request_seed), as the hf backend samples
    top_p: float = 1.0


@dataclass(frozen=True)
class EngineOutput:
    text: str
    tokens: int
    finish_reason: str | None  # vLLM's own word ("stop", "length", "abort"); vllm_backend maps it
    seconds: float  # from submit to the reply's end: its own latency, as the hf backend reports it
    # as vLLM counted the prompt it ran (records show what the model saw, not what was sent)
    prompt_tokens: int


class Engine:
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
        self._inbox: queue.SimpleQueue[tuple[str, EngineJob, float, Future[EngineOutput]] | None] = (
            queue.SimpleQueue()
        )
        self._ids = itertools.count()
        self._closed = False
        # a submit racing close() is either queued before the stop, or refused
        self._closing = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="vllm-engine", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def submit(self, job: EngineJob) -> Future[EngineOutput]:
        done: Future[EngineOutput] = Future()
        with self._closing:
            if self._closed:
                done.set_exception(RuntimeError("the vLLM engine is closed"))
            else:
                self._inbox.put((str(next(self._ids)), job, time.perf_counter(), done))
        return done

    def _loop(self) -> None:
        running: dict[str, tuple[float, Future[EngineOutput]]] = {}
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
                    settle(
                        item[3],
                        error=RuntimeError(f"the vLLM engine thread stopped: {type(e).__name__}: {e}"),
                    )
            log.error("the vLLM engine thread stopped: %s: %s", type(e).__name__, e)

    def _serve(self, running: dict[str, tuple[float, Future[EngineOutput]]]) -> None:
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
                        settle(done, error=e)
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
                    settle(
                        done,
                        EngineOutput(
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


def _sampling(job: EngineJob) -> Any:
    from vllm import SamplingParams

    params = SamplingParams(
        max_tokens=job.max_tokens,
        temperature=job.temperature,
        top_p=job.top_p,
        stop=list(job.stops),
        seed=job.seed,
    )
    try:  # only the finished reply, as LLM.generate asks: no per-token outputs to build and skip
        from vllm.sampling_params import RequestOutputKind

        params.output_kind = RequestOutputKind.FINAL_ONLY
    except ImportError:
        pass
    return params


def settle(done: Future[Any], value: Any = None, error: BaseException | None = None) -> None:
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


def _fail(running: dict[str, tuple[float, Future[EngineOutput]]], error: BaseException) -> None:
    for _, done in running.values():
        settle(done, error=error)
    running.clear()
