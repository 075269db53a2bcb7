"""Data parallelism for the vllm backend: vLLM's offline ``LLM`` refuses ``data_parallel_size > 1`` in one
process, so each replica is an engine in a worker process of its own, on its own GPUs."""

from __future__ import annotations

import atexit
import itertools
import os
import threading
from concurrent.futures import Future
from functools import partial
from typing import Any

from agentflan_eval.backends.vllm_engine import Engine, EngineJob, EngineOutput, settle
from agentflan_eval.errors import ModelLoadError


def replica_main(kwargs: dict[str, Any], devices: str, conn: Any) -> None:
    """A data-parallel worker: builds its engine on its own GPUs, then serves ``(key, job)`` messages, each
    answered ``(key, "ok" | "error", value)`` when its reply ends, in whatever order replies end;
    ``(key, None)`` cancels that request."""
    os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        engine = Engine(kwargs)
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        conn.send(("error", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
        return
    conn.send(("ready", (engine.max_model_len, engine.dtype)))
    sending = threading.Lock()
    futures: dict[int, Future[EngineOutput]] = {}

    def reply(key: int, fut: Future[EngineOutput]) -> None:
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


class Replicas:
    """Data-parallel engine replicas, one spawned process each (non-daemonic: vLLM starts its own). A reader
    thread per replica resolves each request's future when the replica answers it. A replica's death is seen
    by asking whether its process is alive: the engine process vLLM forks inherits the pipe (and the process
    sentinel's pipe) and may outlive it, so neither would report the death."""

    def __init__(self, kwargs: dict[str, Any], devices: list[str]):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        self._pending: dict[int, tuple[int, Future[EngineOutput]]] = {}  # key → (replica, future)
        self._lock = threading.Lock()  # guards _pending and _dead; never held while sending
        self._sending = [threading.Lock() for _ in devices]  # one writer at a time per pipe
        self._dead: set[int] = set()
        self._keys = itertools.count()
        for dev in devices:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=replica_main, args=(kwargs, dev, child), name=f"vllm-replica-{dev}")
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

    def submit(self, replica: int, job: EngineJob) -> Future[EngineOutput]:
        done: Future[EngineOutput] = Future()
        key = next(self._keys)
        with self._lock:
            dead = replica in self._dead
            if not dead:
                self._pending[key] = (replica, done)
        if dead or not self._send(replica, (key, job)):
            with self._lock:
                ours = dead or self._pending.pop(key, None) is not None  # else the reader failed it already
            if ours:
                settle(done, error=RuntimeError(f"vLLM replica {replica} is gone"))
            return done
        done.add_done_callback(partial(self._cancelled, replica, key))
        return done

    def _cancelled(self, replica: int, key: int, done: Future[EngineOutput]) -> None:
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
                    settle(done, error=RuntimeError(f"vLLM replica {replica} failed: {e}"))
                return
            with self._lock:
                pending = self._pending.pop(key, None)
            if pending is not None:
                settle(
                    pending[1],
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
            settle(done, error=RuntimeError("the vLLM replicas were closed"))
