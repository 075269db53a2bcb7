"""The one set of computed tables every report output is rendered from.

Reads runs only through :class:`RunStore` (manifest, results, episodes) and baselines from
``model_zoo.baselines``; all aggregation goes through :mod:`agentflan_eval.scoring`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentflan_eval.decoding import applied_protocols
from agentflan_eval.errors import AgentFlanError, UnknownNameError
from agentflan_eval.model_zoo.baselines import SOURCES, BaselineRow, gpt4_reference
from agentflan_eval.records import (
    SCHEMA_VERSION,
    Deviation,
    EpisodeRecord,
    NotRun,
    RepeatSpread,
    RunManifest,
    Score,
    TaskResult,
)
from agentflan_eval.report.bootstrap import DEFAULT_RESAMPLES, Interval, mean_interval, statistic_interval
from agentflan_eval.scoring import (
    HELD_IN_FITTED_DIVISORS,
    OVERALL_COLUMNS,
    gpt4_normalised,
    held_in_fitted,
    paper_columns,
    percent,
)
from agentflan_eval.store import RunStore

if TYPE_CHECKING:
    from agentflan_eval.benchmark import Benchmark

log = logging.getLogger(__name__)

# The paper's columns, in its order; the radar and the bar chart use the first six.
AXES: dict[str, str] = {
    "held_in": "Held-In",
    "hotpotqa": "HotpotQA",
    "sciworld": "SciWorld",
    "webarena": "WebArena",
    "teval": "T-Eval",
    "agent_h": "Agent-H",
}
MAIN_COLUMNS: dict[str, str] = {**AXES, "overall": "Overall"}
HELD_IN_TASKS: dict[str, str] = {
    "alfworld": "ALFWorld",
    "webshop": "WebShop",
    "mind2web": "Mind2Web",
    "kg": "KG",
    "os": "OS",
    "db": "Database",
}
MINIWOB = ("miniwob", "MiniWoB++ (not WebArena)")
AGENT_H_NOTE = "Agent-H (re-constructed; original data unreleased)"
PARTIAL_MARK = "*"
RECONSTRUCTED_MARK = "‡"


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskCell(Model):
    """One task of one run: score on 0-100 with its sample count and bootstrap interval."""

    task: str
    suite: str
    metric: str
    scale: float = 100.0  # the metric's maximum: episode values / scale x 100 are on the score's scale
    score: float | None
    n: int
    n_standard: int
    ci_low: float | None = None
    ci_high: float | None = None
    statuses: dict[str, int] = Field(default_factory=dict)
    invalid_action_rate: float = 0.0
    errors: int = 0
    left_out: int = 0  # episodes the protocol's headline leaves out (see TaskResult)
    strict_score: float | None = None  # on 0-100, every episode counted
    wall_seconds: float | None = None  # summed over every invocation of the run (None: an older run)
    truncated_prompts: int = 0  # steps whose prompt was cut from the left to fit the context
    decoding: str = ""  # as the run applied it: "greedy", "T=0.7, top-p 1"
    repeats: int = 1
    repeat_spread: RepeatSpread | None = None  # on 0-100, when repeats > 1

    @property
    def partial(self) -> bool:
        return self.n < self.n_standard


class RunSummary(Model):
    label: str
    run_id: str
    model: str
    backend: str
    root: str
    tasks: dict[str, TaskCell]
    deviations: list[Deviation] = Field(default_factory=list)
    not_run: list[NotRun] = Field(default_factory=list)

    def per_task(self) -> dict[str, float | None]:
        return {t: c.score for t, c in self.tasks.items()}


class Row(Model):
    label: str
    kind: Literal["baseline", "run"]
    source: str  # baseline table name, or the run dir
    values: dict[str, float | None]
    marks: dict[str, str] = Field(default_factory=dict)  # column → markers explained in the notes
    reference: bool = False  # a GPT-4 row: what the normalised scores divide by


class Table(Model):
    name: str
    title: str
    columns: dict[str, str]  # key → header
    rows: list[Row]
    digits: dict[str, int] = Field(
        default_factory=dict
    )  # decimals per column as the paper prints them; else 1

    def decimals(self, column: str) -> int:
        return self.digits.get(column, 1)


class ReportTables(Model):
    schema_version: int = SCHEMA_VERSION
    baselines: list[str]  # "table:key" of every baseline row shown
    runs: list[RunSummary]
    tables: list[Table]
    notes: list[str]
    sources: list[str]

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise UnknownNameError("table", name, [t.name for t in self.tables])


# -- runs ------------------------------------------------------------------------------------------
def load_run(root: Path, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> RunSummary:
    """A run's task cells from results.json, with intervals recomputed from its episodes."""
    store = RunStore(Path(root))
    manifest = store.read_manifest()
    results = store.read_results()
    if results is None:
        raise AgentFlanError(
            f"{store.root} has no results.json (an interrupted run?); "
            f"run `python -m agentflan_eval rescore {store.root}` first"
        )
    tasks = {}
    protocols = applied_protocols(manifest)
    for name, res in results.tasks.items():
        ci = _interval(manifest, res, list(store.episodes(name)), n_resamples, seed)
        tasks[name] = TaskCell(
            task=name,
            suite=res.suite,
            metric=res.metric,
            scale=res.scale,
            score=percent(res),
            n=res.n,
            n_standard=res.n_standard,
            ci_low=ci.low if ci else None,
            ci_high=ci.high if ci else None,
            statuses=res.statuses,
            invalid_action_rate=res.invalid_action_rate,
            errors=res.errors,
            left_out=res.left_out,
            strict_score=None if res.strict_score is None else res.strict_score / res.scale * 100.0,
            wall_seconds=res.wall_seconds,
            truncated_prompts=res.truncated_prompts,
            decoding=protocols[name].decoding.short() if name in protocols else "",
            repeats=res.repeats,
            repeat_spread=_scaled_spread(res),
        )
    model = manifest.model
    label = Path(model).name if ("/" in model and Path(model).exists()) else model
    return RunSummary(
        label=label,
        run_id=manifest.run_id,
        model=model,
        backend=manifest.backend,
        root=str(store.root),
        tasks=tasks,
        deviations=manifest.deviations,
        not_run=results.not_run,
    )


def _scaled_spread(res: TaskResult) -> RepeatSpread | None:
    spread, f = res.repeat_spread, 100.0 / res.scale
    if spread is None:
        return None
    return RepeatSpread(
        scores=[x * f for x in spread.scores], sd=spread.sd * f, low=spread.low * f, high=spread.high * f
    )


def _interval(
    manifest: RunManifest, res: TaskResult, records: list[EpisodeRecord], n_resamples: int, seed: int
) -> Interval | None:
    """Bootstrap interval (0-100) of the benchmark's own task statistic; a plain mean is vectorised.
    Without the benchmark, only a score that is the mean of its episodes gets an interval."""
    to_pct = 100.0 / res.scale
    bench = _benchmark(manifest, res.task)
    if bench is not None:  # the interval is around the headline: over the episodes it keeps
        records = [r for r in records if not bench.left_out(r.status, len(r.steps))]
    if res.repeats > 1:  # without its benchmark, a repeated run's statistic is unknown: no interval
        return _scaled(_repeated_interval(bench, records, n_resamples, seed), to_pct) if bench else None
    if bench is not None and not _is_plain_mean(bench):
        pairs = [(r.subset, r.score) for r in records]
        try:
            ci = statistic_interval(pairs, lambda xs: bench.task_score(xs)[0], n_resamples, seed)
        except (ArithmeticError, LookupError, TypeError, ValueError) as e:  # a resample the metric rejects
            log.warning("no interval for %s: its task score failed on a resample (%s)", res.task, e)
            return None
        return _scaled(ci, to_pct)
    values = [r.score.value for r in records]
    if (
        bench is None
        and values
        and res.score is not None
        and abs(sum(values) / len(values) - res.score) > 1e-6
    ):
        log.info(
            "no interval for %s: its score is not the mean of its episodes and its benchmark is unknown",
            res.task,
        )
        return None
    return _scaled(mean_interval(values, n_resamples, seed), to_pct)


def _repeated_interval(
    bench: Benchmark, records: list[EpisodeRecord], n_resamples: int, seed: int
) -> Interval | None:
    """With repeats, samples are resampled (each with all its repeats), and the statistic is the task score
    as the results give it: each repeat scored on its own, then the mean over repeats."""
    by_sample: dict[str, list[EpisodeRecord]] = {}
    for r in records:
        by_sample.setdefault(r.sample_id, []).append(r)

    def statistic(picked: list[list[EpisodeRecord]]) -> float | None:
        repeats: dict[int, list[tuple[str | None, Score]]] = {}
        for group in picked:
            for r in group:
                repeats.setdefault(r.repeat, []).append((r.subset, r.score))
        values = [bench.task_score(pairs)[0] for pairs in repeats.values()]
        return (
            None if any(v is None for v in values) else sum(v for v in values if v is not None) / len(values)
        )

    try:
        return statistic_interval(list(by_sample.values()), statistic, n_resamples, seed)
    except (ArithmeticError, LookupError, TypeError, ValueError) as e:  # a resample the metric rejects
        log.warning("no interval for %s: its task score failed on a resample (%s)", records[0].task, e)
        return None


def _benchmark(manifest: RunManifest, task: str) -> Benchmark | None:  # benchmarks imported lazily
    from agentflan_eval import benchmarks
    from agentflan_eval.config import RunConfig
    from agentflan_eval.data import DataResolver

    try:
        cls = benchmarks.get(task)
        config = RunConfig.model_validate(manifest.config)
    except (AgentFlanError, ValueError, ImportError) as e:
        log.info("bootstrap of %s without its benchmark: %s", task, e)
        return None
    return cls(config, DataResolver(config.data_dir))


def _is_plain_mean(bench: Benchmark) -> bool:
    from agentflan_eval.benchmark import Benchmark

    return type(bench).task_score is Benchmark.task_score


def _scaled(ci: Interval | None, factor: float) -> Interval | None:
    return None if ci is None else Interval(ci.low * factor, ci.high * factor, ci.level)


def unique_labels(runs: Sequence[RunSummary]) -> list[RunSummary]:
    """Runs of the same model get their run id appended so every row is distinguishable."""
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.label] = counts.get(r.label, 0) + 1
    return [
        r.model_copy(update={"label": f"{r.label} [{r.run_id}]"}) if counts[r.label] > 1 else r for r in runs
    ]


# -- tables ----------------------------------------------------------------------------------------
def build_tables(runs: Sequence[RunSummary], baselines: Sequence[BaselineRow]) -> ReportTables:
    runs = unique_labels(runs)
    main_cols = dict(MAIN_COLUMNS)
    if any(b.get(MINIWOB[0]) is not None for b in baselines) or any(_scored(r, MINIWOB[0]) for r in runs):
        main_cols[MINIWOB[0]] = MINIWOB[1]
    if any(_scored(r, "agent_h") for r in runs):
        main_cols["agent_h"] = f"Agent-H {RECONSTRUCTED_MARK}"
    main_rows = [_baseline_row(b, main_cols) for b in baselines] + [_run_row(r, main_cols) for r in runs]
    tables = [
        Table(
            name="main",
            title="Main results (Agent-FLAN layout)",
            columns=main_cols,
            rows=main_rows,
            digits={"held_in": 2, "webarena": 2},
        ),
        Table(
            name="normalised",
            title="GPT-4-normalised score (relative accuracy, %)",
            columns={k: main_cols[k] for k in AXES},
            rows=[_normalise(r) for r in main_rows],
        ),
    ]
    held_cols = {**HELD_IN_TASKS, "held_in_fitted": "Held-In (fitted)", "held_in": "Held-In (published)"}
    held_rows = [
        _baseline_row(b, held_cols) for b in baselines if any(b.get(t) is not None for t in HELD_IN_TASKS)
    ]
    held_rows += [_run_row(r, held_cols) for r in runs if any(t in r.tasks for t in HELD_IN_TASKS)]
    if held_rows:
        tables.append(
            Table(
                name="held_in",
                title="Held-in tasks (AgentBench, AgentTuning's protocol)",
                columns=held_cols,
                rows=held_rows,
                digits={"held_in": 2, "held_in_fitted": 2},
            )
        )
    return ReportTables(
        baselines=[f"{b.table}:{b.key}" for b in baselines],
        runs=list(runs),
        tables=tables,
        notes=_notes(runs, main_cols, baselines),
        sources=_sources(baselines),
    )


def _scored(run: RunSummary, task: str) -> bool:
    return task in run.tasks and run.tasks[task].score is not None


def _baseline_row(b: BaselineRow, columns: dict[str, str]) -> Row:
    label = b.model if b.table == "agent-flan" else f"{b.model} (AgentTuning)"
    values = {k: b.get(k) for k in columns}
    if "held_in_fitted" in columns:  # the fitted weighting applied to the published per-task numbers
        values["held_in_fitted"] = held_in_fitted({t: b.get(t) for t in HELD_IN_FITTED_DIVISORS})
    return Row(
        label=label, kind="baseline", source=b.table, values=values, reference=b.key == gpt4_reference().key
    )


def _run_row(run: RunSummary, columns: dict[str, str]) -> Row:
    """Our run in the table's columns; aggregates carry the partial mark of any task they rest on."""
    per_task = run.per_task()
    derived = paper_columns(per_task)
    derived["held_in_fitted"] = derived["held_in"]
    values = {k: derived[k] if k in derived else per_task.get(k) for k in columns}
    if "held_in_fitted" in columns:
        values["held_in"] = None  # our runs have no published number
    parts = {
        "held_in": list(HELD_IN_FITTED_DIVISORS),
        "held_in_fitted": list(HELD_IN_FITTED_DIVISORS),
        "overall": list(OVERALL_COLUMNS),
    }
    marks: dict[str, str] = {}
    for k, v in values.items():
        if v is None:
            continue
        if any(run.tasks[t].partial for t in parts.get(k, [k]) if t in run.tasks):
            marks[k] = PARTIAL_MARK
        if k == "agent_h":
            marks[k] = marks.get(k, "") + RECONSTRUCTED_MARK
    return Row(label=run.label, kind="run", source=run.root, values=values, marks=marks)


def _normalise(row: Row) -> Row:
    gpt4 = gpt4_reference()
    values = {k: gpt4_normalised(row.values.get(k), gpt4.get(k)) for k in AXES}
    return row.model_copy(
        update={"values": values, "marks": {k: m for k, m in row.marks.items() if k in AXES}}
    )


def _notes(
    runs: Sequence[RunSummary], main_cols: dict[str, str], baselines: Sequence[BaselineRow]
) -> list[str]:
    divisors = ", ".join(f"{HELD_IN_TASKS[t]} {d}" for t, d in HELD_IN_FITTED_DIVISORS.items())
    held_in = (
        "Task scores are on 0-100. Held-In is AgentTuning's weighted held-in score (not a percentage); "
        "for our runs it is computed with the fitted weighting Held-In = sum(score_t / d_t), "
        f"d = {divisors} (least-squares fit of AgentTuning's eight published Held-In values; "
        "its weights are unpublished), and needs all six held-in tasks."
    )
    notes = [held_in]
    notes.append(
        "Overall = mean of HotpotQA, SciWorld, WebArena, T-Eval and Agent-H, as in the paper; "
        "'-' when any of the five is missing."
    )
    notes.append(
        "GPT-4-normalised score = score / GPT-4's published score x 100 per column (GPT-4 row of "
        "the Agent-FLAN main table; its T-Eval GPT-4 is GPT-4-1106-preview)."
    )
    if any(c.partial for r in runs for c in r.tasks.values()):
        notes.append(
            f"{PARTIAL_MARK} partial: run on fewer samples than the task's standard test set (see "
            "the per-task table); not comparable to the published numbers."
        )
    if any(c.repeats > 1 for r in runs for c in r.tasks.values()):
        notes.append(
            "A task run with --repeats: its score is the mean over repeats, shown with their standard "
            "deviation and lowest and highest repeat; its 95 % interval resamples samples (with all their "
            "repeats). The Decoding column is each task's decoding as the run applied it."
        )
    if MINIWOB[0] in main_cols:
        notes.append(
            "MiniWoB++ (task miniwob, an offline browser set) is not WebArena: it is never put in "
            "the WebArena column, the Overall or the charts."
        )
    if RECONSTRUCTED_MARK in main_cols.get("agent_h", ""):
        notes.append(
            f"{RECONSTRUCTED_MARK} {AGENT_H_NOTE}: our runs' Agent-H numbers come from a "
            "re-constructed benchmark and are not comparable to the baselines' Agent-H, measured on "
            "the original data."
        )
    notes += [
        f"{r.label}, {task}: {c.left_out} episode(s) whose environment raised are left out of the score, "
        f"as AgentBench v0.1 did; counting them as failures gives {c.strict_score:.1f}."
        for r in runs
        for task, c in r.tasks.items()
        if c.left_out and c.strict_score is not None
    ]
    if any(b.table == "agenttuning" for b in baselines):
        notes.append(
            "AgentTuning rows: Held-In is AgentTuning's published weighted score; T-Eval and "
            "Agent-H were not in that paper."
        )
    return notes


def _sources(baselines: Sequence[BaselineRow]) -> list[str]:
    tables = dict.fromkeys(b.table for b in baselines)
    return [f"{SOURCES[t].citation}; {SOURCES[t].location}. {SOURCES[t].notes}".strip() for t in tables]
