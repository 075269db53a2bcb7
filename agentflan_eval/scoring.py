"""From episode records to task results and suite scores (results.json)."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agentflan_eval.benchmark import Benchmark
from agentflan_eval.records import EpisodeRecord, EpisodeStatus, RepeatSpread, TaskResult

# AgentTuning's Held-In score as a least-squares fit of its published numbers: sum_t score_t / d_t.
# The weights were never published; these reproduce all eight published Held-In values to ~0.001.
HELD_IN_FITTED_DIVISORS: dict[str, float] = {
    "alfworld": 119.3,
    "webshop": 167.1,
    "mind2web": 55.9,
    "kg": 94.2,
    "os": 108.3,
    "db": 75.2,
}
# The Agent-FLAN paper's Overall: the plain mean of these five held-out columns.
OVERALL_COLUMNS = ("hotpotqa", "sciworld", "webarena", "teval", "agent_h")

_ERRORS = {EpisodeStatus.ENV_ERROR, EpisodeStatus.MODEL_ERROR}


@dataclass(frozen=True)
class _Scored:
    """One repeat's task figures, as the benchmark computes them over that repeat's episodes."""

    score: float | None
    extra: dict[str, float]
    subsets: dict[str, float]
    strict: float | None


def task_result(bench: Benchmark, records: Iterable[EpisodeRecord]) -> TaskResult:
    """The protocol's figure as the headline (episodes its original left out excluded), the strict one
    (every episode, errors as failures) beside it when they differ.

    With several repeats (``--repeats``) each repeat is scored on its own, as a run of the whole set would
    be (metrics such as DB's per-type mean or Agent-H's H-score are not means of episodes), and the figures
    are the mean over repeats; ``repeat_spread`` says how far apart the repeats were. Counts (statuses,
    errors, left out) are over every episode; ``n`` counts samples."""
    recs = list(records)
    by_repeat: dict[int, list[EpisodeRecord]] = {}
    for r in sorted(recs, key=lambda r: r.repeat):
        by_repeat.setdefault(r.repeat, []).append(r)
    scored = [_score_repeat(bench, group) for group in by_repeat.values()] or [_score_repeat(bench, [])]
    steps = sum(len(r.steps) for r in recs)
    invalid = sum(r.invalid_actions for r in recs)
    left_out = sum(1 for r in recs if bench.left_out(r.status, len(r.steps)))
    return TaskResult(
        task=bench.name,
        suite=bench.suite,
        metric=bench.metric,
        scale=bench.scale,
        score=_mean([s.score for s in scored]),
        n=len({r.sample_id for r in recs}),
        n_standard=bench.n_standard,
        subsets=_mean_dicts([s.subsets for s in scored]),
        extra=_mean_dicts([s.extra for s in scored]),
        statuses=dict(Counter(r.status.value for r in recs)),
        invalid_action_rate=invalid / steps if steps else 0.0,
        errors=sum(1 for r in recs if r.status in _ERRORS),
        left_out=left_out,
        strict_score=_mean([s.strict if s.strict is not None else s.score for s in scored])
        if left_out
        else None,
        repeats=max(1, len(by_repeat)),
        repeat_spread=_spread([s.score for s in scored]),
        truncated_prompts=sum(1 for r in recs for s in r.steps if s.truncated_tokens),
    )


def _score_repeat(bench: Benchmark, recs: list[EpisodeRecord]) -> _Scored:
    kept = [r for r in recs if not bench.left_out(r.status, len(r.steps))]
    scores = [(r.subset, r.score) for r in kept]
    score, extra = bench.task_score(scores)
    strict = bench.task_score([(r.subset, r.score) for r in recs])[0] if len(kept) < len(recs) else None
    return _Scored(score, extra, bench.subset_scores(scores), strict)


def _mean(values: Sequence[float | None]) -> float | None:
    """The mean over repeats; None when some repeat has no score (nothing to average honestly)."""
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)


def _mean_dicts(dicts: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Key by key, the mean over the repeats that have the key."""
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return {k: sum(vals) / len(vals) for k in keys if (vals := [d[k] for d in dicts if k in d])}


def _spread(scores: Sequence[float | None]) -> RepeatSpread | None:
    values = [s for s in scores if s is not None]
    if len(scores) < 2 or len(values) < len(scores):
        return None
    return RepeatSpread(scores=values, sd=statistics.stdev(values), low=min(values), high=max(values))


def percent(result: TaskResult) -> float | None:
    """The task score on a 0-100 scale."""
    return None if result.score is None else result.score / result.scale * 100.0


def held_in_fitted(per_task: Mapping[str, float | None]) -> float | None:
    """AgentTuning's Held-In (fitted weighting); None unless all six held-in tasks were scored."""
    terms = [v / d for t, d in HELD_IN_FITTED_DIVISORS.items() if (v := per_task.get(t)) is not None]
    return sum(terms) if len(terms) == len(HELD_IN_FITTED_DIVISORS) else None


def suite_scores(results: Mapping[str, TaskResult]) -> dict[str, float | None]:
    """held-in: fitted AgentTuning weighting; held-out: mean of its tasks (0-100); hallucination: Agent-H."""
    pct = {name: percent(r) for name, r in results.items()}
    out: dict[str, float | None] = {}
    held_in = {n: p for n, p in pct.items() if results[n].suite == "held-in"}
    if held_in:
        out["held-in (fitted)"] = held_in_fitted(held_in)
    for suite in ("held-out", "hallucination"):
        vals = [p for n, p in pct.items() if results[n].suite == suite and p is not None]
        if vals:
            out[suite] = sum(vals) / len(vals)
    out["overall (paper)"] = overall(pct)
    return out


def overall(columns: Mapping[str, float | None]) -> float | None:
    """The Agent-FLAN paper's Overall: mean of the five held-out columns; None if any is missing."""
    vals = [v for c in OVERALL_COLUMNS if (v := columns.get(c)) is not None]
    return sum(vals) / len(vals) if len(vals) == len(OVERALL_COLUMNS) else None


def paper_columns(per_task: Mapping[str, float | None]) -> dict[str, float | None]:
    """The main table's columns from per-task scores on 0-100: ``held_in`` (fitted), the five
    held-out columns and ``overall``. MiniWoB++ is not WebArena and never stands in for it."""
    cols: dict[str, float | None] = {"held_in": held_in_fitted(per_task)}
    cols.update({c: per_task.get(c) for c in OVERALL_COLUMNS})
    cols["overall"] = overall(cols)
    return cols


def gpt4_normalised(score: float | None, gpt4: float | None) -> float | None:
    """The paper's relative accuracy: score / GPT-4's score × 100 (Figure 1)."""
    if score is None or gpt4 is None or gpt4 == 0:
        return None
    return score / gpt4 * 100.0
