"""Recompute every score of a run from its saved transcripts, without a model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from agentflan_eval import benchmarks
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.errors import AgentFlanError
from agentflan_eval.flags import error_line
from agentflan_eval.records import RunResults, TaskResult
from agentflan_eval.runner import with_wall_times
from agentflan_eval.scoring import suite_scores, task_result
from agentflan_eval.store import RunStore


@dataclass
class RescoreOutcome:
    results: RunResults
    episodes: int
    changed: int  # episodes whose recomputed score differs from the stored one


def rescore(run_dir: Path, data_dir: Path | None = None) -> RescoreOutcome:
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    try:
        config = RunConfig.model_validate(manifest.config)
    except ValidationError as e:  # e.g. a --limit of -1, accepted before limits were checked
        raise AgentFlanError(
            f"{run_dir}: the run's recorded config is not valid: {error_line(e, {})}"
        ) from None
    if data_dir is not None:
        config = config.model_copy(update={"data_dir": data_dir})
    data = DataResolver(config.data_dir)
    tasks: dict[str, TaskResult] = {}
    total = changed = 0
    for name in store.tasks():
        bench = benchmarks.get(name)(config, data)
        samples = {s.id: s for s in bench.load_samples()}
        records = []
        for rec in store.episodes(name):
            if rec.sample_id not in samples:
                raise AgentFlanError(f"{name}: sample {rec.sample_id!r} of the run is not in the task's data")
            score = bench.score(samples[rec.sample_id], rec.steps, rec.env_info)
            total += 1
            changed += int(abs(score.value - rec.score.value) > 1e-9)
            records.append(rec.model_copy(update={"score": score}))
        tasks[name] = task_result(bench, records)
    old = store.read_results()
    results = with_wall_times(
        store,
        RunResults(
            run_id=store.root.name,
            model=manifest.model,
            tasks=tasks,
            suites=suite_scores(tasks),
            not_run=old.not_run if old else [],
        ),
    )
    store.write_results(results)
    return RescoreOutcome(results, total, changed)
