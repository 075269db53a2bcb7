"""Percentile-bootstrap 95 % intervals for task scores.

Episodes are resampled with replacement and the task's own statistic is recomputed on each resample,
so metrics that are not plain means (a mean over per-type accuracies, a mean of sub-scores) get the
right interval. A plain mean takes a vectorised path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")

DEFAULT_RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    level: float = LEVEL


def mean_interval(
    values: Sequence[float], n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = LEVEL
) -> Interval | None:
    """Interval of the mean; None for fewer than two values (one episode says nothing about spread)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    return _percentiles(means, level)


def statistic_interval(
    items: Sequence[T],
    statistic: Callable[[list[T]], float | None],
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> Interval | None:
    """Interval of any statistic of a list of items (resamples where it is undefined are dropped)."""
    if len(items) < 2:
        return None
    rng = np.random.default_rng(seed)
    stats = []
    for idx in rng.integers(0, len(items), size=(n_resamples, len(items))):
        value = statistic([items[i] for i in idx])
        if value is not None:
            stats.append(value)
    return _percentiles(np.asarray(stats), level) if stats else None


def _percentiles(stats: np.ndarray, level: float) -> Interval:
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(stats, [tail, 100.0 - tail])
    return Interval(float(low), float(high), level)
