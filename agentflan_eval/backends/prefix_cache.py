"""Key/value caches of prompt prefixes, so the hf backend prefills a shared prefix once, not every turn.

Agent prompts are dominated by what they share: every episode of a task starts with the same
instructions and few-shot examples, and every turn of an episode starts with the previous turn.
Without this, each call re-reads thousands of prompt tokens and prefill dominates generation time.
For each batch the longest prefix common to all rows is cached (built on the longest cached entry
it extends, so only new tokens are computed); rows then hold [prefix][pad][own suffix] and the
attention mask hides the pad in the middle.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any


def cache_kwarg(model: Any) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache``; older versions only know the old name."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    first, n = rows[0], min(len(r) for r in rows)
    for row in rows[1:]:
        k = 0
        while k < n and row[k] == first[k]:
            k += 1
        n = k
    return n


class PrefixCache:
    def __init__(self, model: Any, device: str, min_tokens: int = 32, max_entries: int = 4):
        self.model, self.device = model, device
        self.min_tokens, self.max_entries = min_tokens, max_entries
        self.kwarg = cache_kwarg(model)
        self._entries: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self.reused_tokens = 0  # prompt tokens not recomputed, for the throughput script
        self.computed_tokens = 0

    def lookup(self, rows: Sequence[Sequence[int]]) -> tuple[int, Any]:
        """(prefix length, a fresh copy of its cache expanded to the batch); (0, None) when not worth it.

        Every row keeps at least one uncached token, so generation starts from a real forward pass."""
        length = min(common_prefix_length(rows), min(len(r) for r in rows) - 1)
        if length < self.min_tokens:
            return 0, None
        cache = self._get(tuple(rows[0][:length]))
        self.reused_tokens += length * len(rows)
        batch = copy.deepcopy(cache)
        if len(rows) > 1:
            batch.batch_repeat_interleave(len(rows))
        return length, batch

    def _get(self, prefix: tuple[int, ...]) -> Any:
        import torch
        from transformers import DynamicCache

        if prefix in self._entries:
            self._entries.move_to_end(prefix)
            return self._entries[prefix]
        base_len, base = 0, None
        for key, cache in self._entries.items():
            if base_len < len(key) <= len(prefix) and prefix[:len(key)] == key:
                base_len, base = len(key), cache
        cache = copy.deepcopy(base) if base is not None else DynamicCache(config=self.model.config)
        with torch.inference_mode():
            self.model(input_ids=torch.tensor([prefix[base_len:]], device=self.device), use_cache=True,
                       **{self.kwarg: cache})
        self.computed_tokens += len(prefix) - base_len
        self._entries[prefix] = cache
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return cache
