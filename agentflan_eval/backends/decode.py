"""The hf backend's decoding loop: continuous batching over kept prompt caches.

``model.generate`` keeps every row stepping until the longest reply of the batch ends, its DynamicCache
copies the whole key/value cache on every token (``torch.cat``), and a new prompt must wait for the
whole batch. Agent replies end at stop strings after very different lengths, and on a CPU decoding reads
the cache more than the weights, so all three costs are large. Here one thread runs a single batch:
between two decoding steps waiting prompts join it (each in its own row of preallocated buffers, from
column 0), a finished row leaves at once (its cache is handed back to the PrefixCache for the episode's
next turn, and the last row moves into its place), and new keys/values are written in place.
"""

from __future__ import annotations

import atexit
import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from transformers.cache_utils import DynamicLayer

from agentflan_eval.backends.prefix_cache import PrefixCache

GROW = 256  # positions added when the buffers are full: a few reallocations per episode, not one per token


class SlotState:
    """What the layers of one batch share: each row's cached length, where this step's key/value goes."""

    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.columns: Any = None  # tensor of lengths, set before each forward pass
        self.rows: Any = None  # tensor 0..len(lengths)-1, likewise (made once a step, not once a layer)


class SlotLayer(DynamicLayer):
    """One layer's keys/values for up to ``rows`` sequences, each in its own row from column 0 (right-padded).

    Rows join and leave by copying only their own row, and each step writes one column per row in place,
    so no step or batch change copies the whole cache (DynamicCache copies it on every token)."""

    def __init__(self, state: SlotState, like: Any, rows: int, room: int):
        super().__init__()
        self.state = state
        self._k = like.new_zeros((rows, like.shape[1], room, like.shape[-1]))
        self._v = like.new_zeros((rows, like.shape[1], room, like.shape[-1]))
        self.device, self.is_initialized = like.device, True
        self.keys, self.values = self._k[:0, :, :0], self._v[:0, :, :0]

    def get_seq_length(self) -> int:
        return max(self.state.lengths, default=0)

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        n, rows = len(self.state.lengths), self.state.rows
        self._k[rows, :, self.state.columns] = key_states[:, :, -1]  # one new position per row
        self._v[rows, :, self.state.columns] = value_states[:, :, -1]
        width = self.get_seq_length() + 1
        self.keys, self.values = self._k[:n, :, :width], self._v[:n, :, :width]
        return self.keys, self.values

    def put(self, row: int, keys: Any, values: Any) -> None:
        self._k[row, :, : keys.shape[-2]] = keys
        self._v[row, :, : values.shape[-2]] = values

    def move(self, src: int, dst: int, length: int) -> None:
        self._k[dst, :, :length] = self._k[src, :, :length]
        self._v[dst, :, :length] = self._v[src, :, :length]

    def take(self, row: int, length: int) -> tuple[Any, Any]:
        return self._k[row : row + 1, :, :length].clone(), self._v[row : row + 1, :, :length].clone()

    def ensure(self, room: int) -> None:
        if room > self._k.shape[-2]:
            old = self._k.shape[-2]
            k = self._k.new_zeros((*self._k.shape[:2], room + GROW, self._k.shape[-1]))
            v = self._v.new_zeros((*self._v.shape[:2], room + GROW, self._v.shape[-1]))
            k[:, :, :old], v[:, :, :old] = self._k, self._v
            self._k, self._v = k, v
            self.keys, self.values = k[:, :, :0], v[:, :, :0]  # let the old buffers go now


class RowEnd(str, enum.Enum):
    """Why a row stopped decoding."""

    EOS = "eos"
    STOP = "stop"  # a stop string
    LENGTH = "length"  # max_new tokens
    CANCELLED = "cancelled"  # its caller gave up on it


@dataclass
class Row:
    """One prompt being answered: its ids, the tokens generated so far, and why it stopped."""

    prompt: list[int]
    generated: list[int] = field(default_factory=list)
    reason: RowEnd | None = None  # None while generating


@dataclass
class DecodeStats:
    """Where the decoding thread's time went, for scripts/bench_throughput.py: steps include waiting for the
    GPU (each step reads its tokens back); admitting covers finding kept caches and prefilling new tokens."""

    steps: int = 0
    row_steps: int = 0  # rows decoded, summed over steps: / steps = mean batch fill
    widest: int = 0  # the most rows one step decoded
    step_seconds: float = 0.0
    admitted: int = 0
    admit_seconds: float = 0.0


@dataclass
class Job:
    row: Row
    max_new: int
    temperature: float
    stops: tuple[str, ...]
    seed: int = 0
    top_p: float = 1.0
    future: Future[Row] = field(default_factory=Future)
    started: float = field(default_factory=time.perf_counter)
    abandoned: bool = False  # set by the caller when nobody waits for the reply any more
    _generator: Any = None

    def generator(self, device: Any) -> Any:
        import torch

        if self._generator is None:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
        return self._generator


def sample_token(logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
    """One token drawn from ``softmax(logits / temperature)`` cut to its nucleus: the most likely tokens
    whose probabilities first add up to ``top_p`` (always at least the most likely one), renormalised."""
    import torch

    probs = torch.softmax(logits.float() / temperature, -1)
    if top_p < 1.0:
        ranked, order = probs.sort(descending=True)
        before = ranked.cumsum(-1) - ranked  # the mass of the tokens ranked above each one
        ranked[before >= top_p] = 0.0  # the nucleus already holds top_p without this token
        probs = torch.zeros_like(probs).scatter_(-1, order, ranked)
    return torch.multinomial(probs, 1, generator=generator)[0]


class Batcher:
    """One decoding thread; rows join between steps and leave when they finish."""

    def __init__(
        self,
        model: Any,
        prefixes: PrefixCache,
        max_rows: int,
        eos_ids: set[int],
        decode_text: Callable[[list[int]], str],
    ):
        self.model, self.prefixes, self.max_rows, self.eos_ids = model, prefixes, max(1, max_rows), eos_ids
        self.decode_text = decode_text
        self.device = next(model.parameters()).device
        self._waiting: deque[Job] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.stats = DecodeStats()
        self._reset()
        atexit.register(self.close)  # also when nobody calls close(), e.g. after Ctrl-C

    def _reset(self) -> None:
        self.jobs: list[Job] = []  # row i of the batch answers jobs[i]
        self.state = (
            SlotState()
        )  # lengths[i]: positions cached for row i (its prompt and reply but the next token)
        self.cache: Any = None
        self.tokens: list[int] = []  # the token each row feeds next

    # -- the caller's side ---------------------------------------------------------------------
    def submit(self, jobs: Sequence[Job]) -> None:
        with self._wake:
            if self._closed:
                raise RuntimeError("the hf backend was closed")
            self._waiting.extend(jobs)
            self._wake.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="hf-decode", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the thread and wait for it: a thread still inside torch when the interpreter exits aborts it."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)

    # -- the decoding thread ---------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed and not self._waiting and not self.jobs:
                    self._wake.wait()
                if self._closed:  # nobody will answer what is left
                    closed = RuntimeError("the hf backend was closed")
                    for job in self.jobs:
                        job.future.set_exception(closed)
                    for job in self._waiting:
                        if job.future.set_running_or_notify_cancel():
                            job.future.set_exception(closed)
                    return
                new = [
                    self._waiting.popleft()
                    for _ in range(min(len(self._waiting), self.max_rows - len(self.jobs)))
                ]
            new = [j for j in new if j.future.set_running_or_notify_cancel()]  # cancelled ones are dropped
            try:
                if new:
                    t0 = time.perf_counter()
                    self._admit(new)
                    self.stats.admitted += len(new)
                    self.stats.admit_seconds += time.perf_counter() - t0
                if self.jobs:
                    self._step()
            except BaseException as e:  # noqa: BLE001 - fails the rows in flight, not the thread
                for job in self.jobs:
                    job.future.set_exception(e)
                self._reset()

    def _admit(self, new: list[Job]) -> None:
        """Prefill each new row from the kept caches and copy it into a free row of the batch."""
        for job in new:
            try:
                self._admit_one(job, new)
            except Exception as e:  # noqa: BLE001 - a prompt that cannot be prefilled fails only itself
                job.future.set_exception(e)

    def _admit_one(self, job: Job, new: list[Job]) -> None:
        kv = self.prefixes.row_kv(job.row.prompt[:-1])
        if self.cache is None:
            from transformers import DynamicCache

            room = max(len(j.row.prompt) for j in new) + GROW  # grown when a row needs more
            self.cache = DynamicCache()
            self.cache.layers = [SlotLayer(self.state, k, self.max_rows, room) for k, _ in kv]
        row = len(self.jobs)
        for layer, (k, v) in zip(self.cache.layers, kv):
            layer.ensure(k.shape[-2] + 1)
            layer.put(row, k[0], v[0])
        self.jobs.append(job)
        self.state.lengths.append(len(job.row.prompt) - 1)
        self.tokens.append(job.row.prompt[-1])

    def _step(self) -> None:
        import torch

        t0, rows = time.perf_counter(), len(self.jobs)
        lengths = self.state.lengths
        for layer in self.cache.layers:
            layer.ensure(max(lengths) + 1)
        columns = torch.tensor(lengths, device=self.device)
        self.state.columns, self.state.rows = columns, torch.arange(len(lengths), device=self.device)
        mask = (torch.arange(max(lengths) + 1, device=self.device)[None, :] <= columns[:, None]).long()
        with torch.inference_mode():
            logits = self.model(
                input_ids=torch.tensor(self.tokens, device=self.device)[:, None],
                attention_mask=mask,
                position_ids=columns[:, None],
                use_cache=True,
                logits_to_keep=1,
                **{self.prefixes.kwarg: self.cache},
            ).logits[:, -1]
            chosen = logits.argmax(-1)
            hot = [j for j, job in enumerate(self.jobs) if job.temperature > 0]
            for j in hot:  # each request its own seeded generator: the same draw whatever shares the batch
                job = self.jobs[j]
                chosen[j] = sample_token(logits[j], job.temperature, job.top_p, job.generator(logits.device))
        self.tokens = chosen.tolist()
        self.state.lengths = lengths = [n + 1 for n in lengths]
        done: list[Job] = []
        try:
            for j in reversed(range(len(self.jobs))):  # from the end, so moving the last row into j is safe
                job = self.jobs[j]
                if not self._finished(job, self.tokens[j]):
                    continue
                # the row's cache holds its prompt and every generated token but the last: kept for its next turn
                kv = [layer.take(j, lengths[j]) for layer in self.cache.layers]
                self.prefixes.store([*job.row.prompt, *job.row.generated[:-1]], kv)
                last = len(self.jobs) - 1
                if j != last:
                    for layer in self.cache.layers:
                        layer.move(last, j, lengths[last])
                    self.jobs[j], lengths[j], self.tokens[j] = (
                        self.jobs[last],
                        lengths[last],
                        self.tokens[last],
                    )
                self.jobs.pop(), lengths.pop(), self.tokens.pop()
                done.append(job)
            if not self.jobs:
                self._reset()
        finally:  # counted before any reply is handed over, so a caller woken by the last one sees the whole step
            self.stats.steps += 1
            self.stats.row_steps += rows
            self.stats.widest = max(self.stats.widest, rows)
            self.stats.step_seconds += time.perf_counter() - t0
            for (
                job
            ) in done:  # answered even when a later row failed: only rows still in the batch get the error
                job.future.set_result(job.row)

    def _finished(self, job: Job, token: int) -> bool:
        row = job.row
        row.generated.append(token)
        if job.abandoned:  # its caller cancelled it: free the row
            row.reason = RowEnd.CANCELLED
        elif token in self.eos_ids:
            row.reason = RowEnd.EOS
        elif job.stops and any(s in self.decode_text(row.generated) for s in job.stops):
            row.reason = RowEnd.STOP
        elif len(row.generated) >= job.max_new:
            row.reason = RowEnd.LENGTH
        return row.reason is not None
