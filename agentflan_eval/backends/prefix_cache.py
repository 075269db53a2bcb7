"""Key/value caches of earlier prompts, so the hf backend prefills only what is new in each turn.

An agent prompt at turn k+1 is its prompt at turn k plus the reply and the next observation, and
every episode of a task starts with the same instructions and few-shot examples. Re-reading all of
it each turn makes prefill grow with the square of the episode length and dominate generation on a
CPU. So every row's KV cache is kept after generation (prompt + the reply tokens fed back), and a
new prompt starts from whichever kept cache shares its longest prefix (its own previous turn, or
another episode's shared instructions): only the rest is computed, one row at a time, and the
decoding loop (decode.py) pads it into its running batch.

The kept caches are bounded in number (about two per episode in flight) and in bytes (by default 40 % of
the memory free once the model is loaded): a 7B model's cache of a 2,000-token prompt takes 1 GiB, so a
count alone would fill a GPU. The least recently used cache goes first; losing one costs only a prefill.

Only models whose cache is a plain per-layer key/value stack (Llama, Mistral, Qwen, SmolLM...) take
this path; others (sliding-window or recurrent caches) run without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def cache_kwarg(model: Any) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache``; older versions only know the old name."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def common_prefix_length(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray) -> int:
    """Vectorised: every admission compares a prompt of thousands of tokens with every kept one, and a
    Python loop over them (20 ms a turn at 68 kept caches) holds the GIL while the GPU waits."""
    a, b = np.asarray(a), np.asarray(b)
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


def _layers(cache: Any) -> list[tuple[Any, Any]]:
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache))  # transformers 4.x


@dataclass(eq=False)  # entries are found and removed by identity (their ids are arrays)
class _Entry:
    ids: np.ndarray  # token ids, int64
    kv: list[tuple[Any, Any]]  # per layer (keys, values), batch 1, exactly len(ids) positions

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for pair in self.kv for t in pair)


def free_memory_bytes(device: str) -> int:
    """This process's share of the free memory: its GPU's, or the RAM shared by the processes on the host."""
    import os

    import torch

    if str(device).startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    import psutil

    return int(psutil.virtual_memory().available) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


class PrefixCache:
    def __init__(
        self, model: Any, device: str, capacity: int = 16, min_tokens: int = 16, max_bytes: int | None = None
    ):
        self.model, self.device = model, device
        self.capacity, self.min_tokens = capacity, min_tokens
        # the rest of the free memory is for the running batch's buffers and activations
        self.max_bytes = int(0.4 * free_memory_bytes(device)) if max_bytes is None else max_bytes
        self.kwarg = cache_kwarg(model)
        self._entries: list[_Entry] = []  # most recently used last
        self.reused_tokens = (
            0  # prompt tokens taken from a kept cache instead of computed (for bench scripts)
        )
        self.computed_tokens = 0

    @staticmethod
    def supports(model: Any) -> bool:
        """A plain per-layer cache that can be cut and padded along the sequence axis."""
        from transformers import DynamicCache

        try:
            probe = _empty_cache(DynamicCache, model.config)
        except Exception:  # noqa: BLE001 - an unusual config: run without kept caches
            return False
        return not any(getattr(layer, "is_sliding", False) for layer in getattr(probe, "layers", []))

    # -- a row's cache -----------------------------------------------------------------------------
    def row_kv(self, prompt: Sequence[int]) -> list[tuple[Any, Any]]:
        """Per layer (keys, values) of ``prompt``, batch 1: the longest kept prefix, and the rest computed."""
        import torch
        from transformers import DynamicCache

        ids = np.array(prompt, dtype=np.int64)  # a copy: the entry keeps it, and the prefill tensor shares it
        best, shared = None, 0
        for entry in self._entries:
            n = common_prefix_length(entry.ids, ids)
            if n > shared:
                best, shared = entry, n
        if best is None or shared < self.min_tokens:
            best, shared = None, 0
        else:
            self._entries.remove(best)
            self._entries.append(best)
        cache = _empty_cache(DynamicCache, self.model.config)
        if best is not None:
            for layer, (k, v) in enumerate(best.kv):
                cache.update(k[:, :, :shared], v[:, :, :shared], layer)
        if len(ids) > shared:
            with torch.inference_mode():
                # logits_to_keep=1: only the keys/values are wanted; logits of every prompt position would take
                # memory (a 3,000-token prompt: 600 MB in float32) and, for a small model, a fifth of the prefill
                self.model(
                    input_ids=torch.from_numpy(ids[None, shared:]).to(self.device),
                    use_cache=True,
                    logits_to_keep=1,
                    **{self.kwarg: cache},
                )
        self.reused_tokens += shared
        self.computed_tokens += len(ids) - shared
        kv = _layers(cache)
        self._add(_Entry(ids=ids, kv=kv))  # later rows of this batch may share it (same instructions)
        return kv

    # -- keeping a row's cache after generation ---------------------------------------------------
    def store(self, ids: Sequence[int], kv: list[tuple[Any, Any]]) -> None:
        """Keep a finished row's cache: exactly ``len(ids)`` positions (its prompt and the reply fed back)."""
        self._add(_Entry(ids=np.array(ids, dtype=np.int64), kv=kv))

    def _add(self, entry: _Entry) -> None:
        # an earlier turn of the same conversation is superseded by this one
        self._entries = [e for e in self._entries if common_prefix_length(e.ids, entry.ids) < len(e.ids)]
        self._entries.append(entry)
        del self._entries[: -self.capacity]
        kept = self.kept_bytes
        while self._entries and kept > self.max_bytes:
            kept -= self._entries.pop(0).nbytes  # least recently used first

    @property
    def kept_bytes(self) -> int:
        return sum(e.nbytes for e in self._entries)


def _empty_cache(cls: Any, config: Any) -> Any:
    try:
        return cls(config=config)
    except TypeError:  # transformers 4.x
        return cls()
