"""From episode records to task results and suite scores (results.json)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from agentflan_eval.benchmark import Benchmark
from agentflan_eval.records import EpisodeRecord, EpisodeStatus, TaskResult

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


def task_result(bench: Benchmark, records: Iterable[EpisodeRecord]) -> TaskResult:
    """The protocol's figure as the headline (episodes its original left out excluded), the strict one
    (every episode, errors as failures) beside it when they differ."""
    recs = list(records)
    kept = [r for r in recs if not bench.left_out(r.status, len(r.steps))]
    scores = [(r.subset, r.score) for r in kept]
    score, extra = bench.task_score(scores)
    strict = bench.task_score([(r.subset, r.score) for r in recs])[0] if len(kept) < len(recs) else None
    steps = sum(len(r.steps) for r in recs)
    invalid = sum(r.invalid_actions for r in recs)
    return TaskResult(
        task=bench.name,
        suite=bench.suite,
        metric=bench.metric,
        scale=bench.scale,
        score=score,
        n=len(recs),
        n_standard=bench.n_standard,
        subsets=bench.subset_scores(scores),
        extra=extra,
        statuses=dict(Counter(r.status.value for r in recs)),
        invalid_action_rate=invalid / steps if steps else 0.0,
        errors=sum(1 for r in recs if r.status in _ERRORS),
        left_out=len(recs) - len(kept),
        strict_score=strict,
        truncated_prompts=sum(1 for r in recs for s in r.steps if s.truncated_tokens),
    )


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
