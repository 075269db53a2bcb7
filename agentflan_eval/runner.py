"""A run in named steps: pick tasks → open the run dir → run episodes per task → score → record."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import textwrap
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from tqdm import tqdm

from agentflan_eval import benchmarks
from agentflan_eval.agent_loop import Attempt, run_episodes
from agentflan_eval.backends import Backend, make_backend
from agentflan_eval.benchmark import Benchmark, Sample
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DATA_ENV, DataResolver
from agentflan_eval.decoding import resolve, run_key, task_generation
from agentflan_eval.distributed import Shard, current_shard, done_marker, wait_for_markers
from agentflan_eval.errors import AgentFlanError
from agentflan_eval.manifest import record_first_prompt, write_manifest
from agentflan_eval.model_zoo.known_models import EMBEDDED
from agentflan_eval.records import (
    MODEL_LOAD,
    Decoding,
    EpisodeRecord,
    NotRun,
    RunResults,
    Score,
    TaskResult,
    WallTime,
    duration_text,
)
from agentflan_eval.scoring import percent, suite_scores, task_result
from agentflan_eval.store import RunStore

log = logging.getLogger(__name__)


def selected_tasks(config: RunConfig) -> list[str]:
    names = list(config.tasks)
    if config.suite:
        names += [t for t in benchmarks.suite_tasks(config.suite) if t not in names]
    if not names:
        names = benchmarks.suite_tasks("all")
    for n in names:
        benchmarks.get(n)  # unknown names fail here, before any model is loaded
    return names


def default_run_id(config: RunConfig) -> str:
    """Same model and generation settings → same run dir, so re-running resumes instead of restarting.

    Sampled decoding (the default ``--decoding protocol``, or a --temperature) adds to the key, so its
    run never resumes a greedy one; all-greedy settings keep the ids of runs made before decoding was
    applied, which were all greedy. ``--repeats`` is not in the key: more repeats extend the same run."""
    model = config.model or EMBEDDED
    replay = config.replay_file or (Path(config.model) if config.model else None)
    if config.backend == "replay" and replay is not None:
        model = str(replay)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name if Path(model).exists() else model).strip("-")
    key = f"{config.backend}|{config.model}|{config.chat_template}|{config.max_new_tokens}|{config.seed}"
    if config.backend == "replay" and replay is not None and replay.is_file():  # the replies, not the name
        key = key.replace(f"|{config.model}|", f"|{hashlib.sha256(replay.read_bytes()).hexdigest()}|", 1)
    if config.dtype:  # other weights' precision, other replies (unset: kept out, so older runs resume)
        key += f"|{config.dtype}"
    key += run_key(config)
    return f"{slug}-{config.backend}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def run(config: RunConfig, argv: Sequence[str] = ()) -> tuple[RunStore, RunResults]:
    check_output_dir(config.output_dir)
    if config.data_dir is None and os.environ.get(DATA_ENV):  # recorded, so `rescore` finds the same data
        config = config.model_copy(update={"data_dir": Path(os.environ[DATA_ENV]).resolve()})
    names = selected_tasks(config)
    data = DataResolver(config.data_dir, offline=True if config.offline else None)
    benches = [benchmarks.get(n)(config, data) for n in names]
    runnable, not_run = _split_runnable(benches)
    if not runnable:
        raise AgentFlanError(
            "no selected task can run here: " + "; ".join(f"{n.task}: {n.reason}" for n in not_run)
        )
    # Samples load before the model so a corrupt data file fails in a second, not after the model loads.
    samples = {b.name: _selected_samples(b, config) for b in runnable}
    shard = current_shard()
    store = RunStore(
        config.output_dir / (config.run_id or default_run_id(config)),
        shard_rank=shard.rank if shard.distributed else None,
    )
    made = [d for d in (store.root, *store.root.parents) if not d.exists()]
    lock = store.lock()  # before anything is read or written: one run at a time per run dir
    try:
        return _run_locked(config, argv, store, shard, runnable, not_run, samples)
    finally:
        lock.release()
        _remove_if_unused(made)


def _remove_if_unused(made: list[Path]) -> None:
    """A run that failed before writing anything (no backend, say) leaves no run dir behind: only the
    folders it made itself, holding nothing but its lock files, are removed."""
    for d in made:
        if d.is_dir() and all(f.suffix == ".lock" and f.is_file() for f in d.iterdir()):
            for f in d.iterdir():
                f.unlink()
            d.rmdir()


def _run_locked(
    config: RunConfig,
    argv: Sequence[str],
    store: RunStore,
    shard: Shard,
    runnable: list[Benchmark],
    not_run: list[NotRun],
    samples: dict[str, list[Sample]],
) -> tuple[RunStore, RunResults]:
    _check_resume(store, config, runnable)
    if shard.distributed and config.device is None:
        config = config.model_copy(update={"device": shard.device()})
    invocation = shard.agree(dt.datetime.now(dt.timezone.utc).isoformat())  # one id for all ranks
    started = time.perf_counter()
    backend = make_backend(config)
    store.record_wall(
        WallTime(
            invocation=invocation, rank=shard.rank, task=MODEL_LOAD, seconds=time.perf_counter() - started
        )
    )
    try:
        if shard.is_main:
            write_manifest(store, config, backend, runnable, argv)
            for rank in range(shard.world_size):
                done_marker(store.root, rank).unlink(missing_ok=True)
        shard.wait_for_everyone()  # every rank sees the manifest and no stale markers
        for bench in runnable:
            _run_task(store, bench, samples[bench.name], backend, config, shard, invocation)
    finally:
        backend.close()
    if shard.distributed:
        _join_shards(store, shard)
    results = collect_results(store, config, not_run)
    if shard.is_main:
        store.write_results(results)
    return store, results


def check_output_dir(path: Path) -> None:
    """Fail before the model loads, not at the first episode written after it."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        why = "is a file" if existing == path else f"cannot be made: {existing} is a file"
        raise AgentFlanError(f"--output-dir {path} {why}, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        why = "" if existing == path else f" (nor is {existing}, where it would be made)"
        raise AgentFlanError(f"--output-dir {path} is not writable{why}")


def _join_shards(store: RunStore, shard: Shard) -> None:
    """Each rank signs off; the main one waits for all, then folds the shards into the task files."""
    marker = done_marker(store.root, shard.rank)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    if not shard.is_main:
        return
    wait_for_markers(store.root, shard.world_size)
    log.info("merged %d episodes from %d processes", store.merge_shards(), shard.world_size)
    for rank in range(shard.world_size):
        done_marker(store.root, rank).unlink(missing_ok=True)


def _selected_samples(bench: Benchmark, config: RunConfig) -> list[Sample]:
    samples = bench.load_samples()
    return samples if config.limit is None else samples[: config.limit]


def _split_runnable(benches: list[Benchmark]) -> tuple[list[Benchmark], list[NotRun]]:
    runnable, not_run = [], []
    for b in benches:
        reason = b.unavailable()
        if reason is None:
            runnable.append(b)
        else:
            not_run.append(NotRun(task=b.name, reason=reason))
            log.warning("not running %s: %s", b.name, reason)
    return runnable, not_run


# What a manifest written before a setting existed implies about it: every run was greedy then.
def _check_resume(store: RunStore, config: RunConfig, benches: Sequence[Benchmark] = ()) -> None:
    """Refuse to add episodes made with other settings to a run dir (e.g. sampled to greedy ones). Decoding
    is compared as each task resolves it, so two spellings of greedy (--decoding greedy, --temperature 0)
    resume each other's runs."""
    if not store.exists():
        return
    old = store.read_manifest()
    now = config.model_dump(mode="json")
    for key in ("model", "backend", "max_new_tokens", "seed", "chat_template", "dtype"):
        if old.config.get(key) != now.get(key):
            raise AgentFlanError(
                f"run dir {store.root} was made with a different {key} ({old.config.get(key)!r}); "
                f"pass the same --{key.replace('_', '-')}, or use another --run-id or --output-dir"
            )
    for b in benches:
        # manifests before --decoding recorded the declared decoding, but every run then was greedy
        was = old.protocols[b.name].decoding if "decoding" in old.config and b.name in old.protocols else None
        was = Decoding() if was is None and ("decoding" not in old.config) else was
        if was is not None and not _same_decoding(was, resolve(b.decoding, config)):
            raise AgentFlanError(
                f"run dir {store.root} decoded {b.name} {was.short()}, this run would decode it "
                f"{resolve(b.decoding, config).short()}: pass the --decoding/--temperature/--top-p it was "
                "made with, or use another --run-id or --output-dir"
            )


def _same_decoding(a: Decoding, b: Decoding) -> bool:
    return (a.temperature, a.top_p if not a.greedy else 1.0) == (
        b.temperature,
        b.top_p if not b.greedy else 1.0,
    )


def _run_task(
    store: RunStore,
    bench: Benchmark,
    samples: list[Sample],
    backend: Backend,
    config: RunConfig,
    shard: Shard,
    invocation: str,
) -> None:
    started = time.perf_counter()
    finished = 0

    def record_wall() -> None:  # at every episode, so a killed run keeps its time up to the last one
        store.record_wall(
            WallTime(
                invocation=invocation,
                rank=shard.rank,
                task=bench.name,
                seconds=time.perf_counter() - started,
                episodes=finished,
            )
        )

    done = store.done_keys(bench.name)
    # repeat by repeat, so that an interrupted run has its first repeats whole
    wanted = [Attempt(s, r) for r in range(config.repeats) for s in samples]
    todo = shard.take([a for a in wanted if (a.sample.id, a.repeat) not in done])
    keys = {(a.sample.id, a.repeat) for a in wanted} & done
    scores = [(r.subset, r.score) for r in store.episodes(bench.name) if r.key in keys]
    total = len(keys) + len(todo)
    desc = f"{bench.name}[{shard.rank}/{shard.world_size}]" if shard.distributed else bench.name
    bar = tqdm(
        total=total, initial=total - len(todo), desc=desc, unit="ep", dynamic_ncols=True, position=shard.rank
    )
    _postfix(bar, bench, scores)

    def on_done(record: EpisodeRecord) -> None:
        nonlocal finished
        finished += 1
        record_wall()  # before the episode is written: a kill in between leaves time counted, never an episode untimed
        store.append(record)
        scores.append((record.subset, record.score))
        bar.update(1)
        _postfix(bar, bench, scores)

    try:
        first = partial(record_first_prompt, store, backend) if shard.is_main else None
        run_episodes(bench, todo, backend, task_generation(bench, config), config.concurrency, on_done, first)
    finally:
        bar.close()
        if todo:
            record_wall()


def _postfix(bar: tqdm, bench: Benchmark, scores: list[tuple[str | None, Score]]) -> None:
    """The running task score, computed as the final one is (H-score, F1, success rate...)."""
    value = bench.task_score(scores)[0] if scores else None
    if value is not None:
        bar.set_postfix_str(f"{bench.metric} {value / bench.scale * 100:.1f}")


def collect_results(
    store: RunStore, config: RunConfig, not_run: list[NotRun] | None = None, data: DataResolver | None = None
) -> RunResults:
    """Task and suite scores over every episode in the run dir (so resumed runs accumulate)."""
    data = data or DataResolver(config.data_dir)
    tasks: dict[str, TaskResult] = {}
    for name in store.tasks():
        bench = benchmarks.get(name)(config, data)
        tasks[name] = task_result(bench, store.episodes(name))
    run_names = set(tasks)
    return with_wall_times(
        store,
        RunResults(
            run_id=store.root.name,
            model=config.model or EMBEDDED,
            tasks=tasks,
            suites=suite_scores(tasks),
            not_run=[n for n in (not_run or []) if n.task not in run_names],
        ),
    )


def with_wall_times(store: RunStore, results: RunResults) -> RunResults:
    """The wall-clock time each task and the whole run took, over every invocation that worked on it.

    A task some of whose episodes ran before wall times were kept (an older run dir, resumed) gets none:
    its figure would only be a lower bound."""
    wall, timed = store.wall_seconds(), store.timed_episodes()
    if not wall:
        return results
    tasks = {
        n: r.model_copy(update={"wall_seconds": wall.get(n) if timed.get(n, 0) >= r.n else None})
        for n, r in results.tasks.items()
    }
    complete = all(t.wall_seconds is not None for t in tasks.values())
    return results.model_copy(
        update={"tasks": tasks, "wall_seconds": store.total_wall_seconds() if complete else None}
    )


def summary_lines(results: RunResults) -> list[str]:
    lines = [f"{'task':<14}{'suite':<15}{'score':>8}{'n':>6}{'wall':>9}  metric"]
    for name, r in results.tasks.items():
        p = percent(r)
        partial = "" if r.n >= r.n_standard else f" (partial: {r.n}/{r.n_standard})"
        lines.append(
            f"{name:<14}{r.suite:<15}{'-' if p is None else f'{p:.2f}':>8}{r.n:>6}"
            f"{duration_text(r.wall_seconds):>9}  {r.metric}{partial}"
        )
        if r.repeat_spread is not None:
            lines.append(f"{'':<14}{spread_text(r)}")
        if r.left_out and r.strict_score is not None:
            strict = r.strict_score / r.scale * 100.0
            lines.append(
                f"{'':<14}{r.left_out} errored episode(s) left out, as the original protocol did; "
                f"strict score {strict:.2f}"
            )
        if r.truncated_prompts:
            lines.append(
                f"{'':<14}{r.truncated_prompts} prompt(s) cut from the left to fit the context, "
                "as the original protocol did"
            )
        if r.extra:  # the score's parts (Agent-H's hallucination rates, DB's per-type accuracy...)
            lines += textwrap.wrap(
                ", ".join(f"{k} {v:.4g}" for k, v in r.extra.items()),
                width=110,
                initial_indent=" " * 14,
                subsequent_indent=" " * 14,
            )
    for n in results.not_run:
        lines.append(f"{n.task:<14}{'':<15}{'not run':>8}{'':>6}  {n.reason}")
    for suite, v in results.suites.items():
        lines.append(f"{suite:<29}{'-' if v is None else f'{v:.2f}':>8}")
    if results.wall_seconds is not None:
        lines.append(
            f"wall time {duration_text(results.wall_seconds)}, model loading included, summed over every "
            "invocation of this run dir"
        )
    return lines


def spread_text(r: TaskResult) -> str:
    """The score's spread across repeats on 0-100, e.g.
    "mean 41.20 ± 1.30 (sd) over 3 repeats (39.90 to 42.50)"."""
    spread = r.repeat_spread
    if spread is None or r.score is None:
        return ""
    f = 100.0 / r.scale
    return (
        f"mean {r.score * f:.2f} ± {spread.sd * f:.2f} (sd) over {r.repeats} repeats "
        f"({spread.low * f:.2f} to {spread.high * f:.2f})"
    )
