"""Replay each task's own gold solution through its real environment and print the share solved.

A user's check that the sandbox, database, JVM and browser work, and ours that every environment is
solvable: each sample's episode runs through the agent loop of ``run`` (environment, parser, turn limit,
scorer) with a scripted backend that answers from the task's ``Benchmark.gold_agent``. The gold agent
sees the whole conversation: AgentBench's history window is for a model's context and is not applied.
Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, create_model
from pydantic.fields import FieldInfo
from tqdm import tqdm

from agentflan_eval import benchmarks, flags
from agentflan_eval.benchmark import Benchmark, GoldAgent, Sample, option_models
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import EpisodeRecord, EpisodeStatus, Message, Record

SNIPPET = 160  # characters of an observation or error shown for an unsolved sample
_FLAGS = ("tasks", "suite", "limit", "concurrency", "data_dir")  # the RunConfig settings selftest takes
CONCURRENCY_HELP = "episodes (environments) open at once"
_NOT_SOLVED = (EpisodeStatus.ENV_ERROR, EpisodeStatus.MODEL_ERROR)  # the gold run itself broke

EPILOG = """output: per task, solved/total and the share; below, each unsolved sample's id and why
(how its episode ended, its score, the error or the last observation). Tasks whose benchmark ships no
gold solution say so.
exit status: 0 when every requested task's environment started (whatever the share), 1 when one could
not (missing data, package or service, or no episode could start), 2 on bad flags.
examples:
  python -m agentflan_eval selftest --tasks alfworld --limit 5
  python -m agentflan_eval selftest --tasks os,db,alfworld,kg
  python -m agentflan_eval selftest --suite held-in"""


class Unsolved(Record):
    sample_id: str
    reason: str


class TaskCheck(Record):
    """One task's self-test: ``status`` says whether its gold solutions ran at all."""

    task: str
    status: Literal["checked", "cannot start", "no gold solution"]
    reason: str = ""
    solved: int = 0
    total: int = 0  # samples whose gold solution was replayed
    no_gold: int = 0  # samples the task has no gold solution for
    unsolved: list[Unsolved] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def share(self) -> float | None:
        return self.solved / self.total if self.total else None


def selftest(config: RunConfig) -> list[TaskCheck]:
    from agentflan_eval.runner import selected_tasks

    data = DataResolver(config.data_dir)
    return [check_task(benchmarks.get(name)(config, data), config) for name in selected_tasks(config)]


def check_task(bench: Benchmark, config: RunConfig) -> TaskCheck:
    """Replay every selected sample's gold solution through ``bench``'s own environment and scorer."""
    started = time.perf_counter()
    reason = bench.unavailable()
    if reason is not None:
        return TaskCheck(task=bench.name, status="cannot start", reason=reason)
    try:
        samples = bench.load_samples()[: config.limit]
        agents, broken = _gold_agents(bench, samples)
    except Exception as e:  # noqa: BLE001 - a task that cannot load is reported, the others still run
        return TaskCheck(task=bench.name, status="cannot start", reason=f"{type(e).__name__}: {e}")
    playable = [s for s in samples if s.id in agents]
    no_gold = len(samples) - len(playable) - len(broken)
    if not playable and not broken:
        return TaskCheck(task=bench.name, status="no gold solution", no_gold=no_gold)
    records = _replay(bench, playable, agents, config)
    order = {s.id: i for i, s in enumerate(samples)}
    unsolved = broken + [Unsolved(sample_id=r.sample_id, reason=why(r)) for r in records if not solved(r)]
    unsolved.sort(key=lambda u: order[u.sample_id])  # in the task's order, not the order episodes ended
    check = TaskCheck(
        task=bench.name,
        status="checked",
        solved=sum(solved(r) for r in records),
        total=len(playable) + len(broken),
        no_gold=no_gold,
        unsolved=unsolved,
        seconds=time.perf_counter() - started,
    )
    if records and all(r.status is EpisodeStatus.ENV_ERROR and not r.steps for r in records):
        first = records[0].error
        why_not = f"{first.type}: {first.message}" if first else "no environment started"
        return check.model_copy(update={"status": "cannot start", "reason": why_not})
    return check


def _gold_agents(bench: Benchmark, samples: Sequence[Sample]) -> tuple[dict[str, GoldAgent], list[Unsolved]]:
    agents: dict[str, GoldAgent] = {}
    broken: list[Unsolved] = []
    for s in samples:
        try:
            agent = bench.gold_agent(s)
        except Exception as e:  # noqa: BLE001 - a gold solution that cannot be built is that sample's finding
            broken.append(Unsolved(sample_id=s.id, reason=f"gold_agent raised {type(e).__name__}: {e}"))
            continue
        if agent is not None:
            agents[s.id] = agent
    return agents, broken


def _replay(
    bench: Benchmark, samples: list[Sample], agents: dict[str, GoldAgent], config: RunConfig
) -> list[EpisodeRecord]:
    from agentflan_eval.agent_loop import run_episodes
    from agentflan_eval.backends.scripted import ScriptedBackend
    from agentflan_eval.decoding import task_generation

    def whole(messages: list[Message]) -> list[Message]:
        return messages

    bench.fit_prompt = whole  # type: ignore[method-assign]  # this instance only: the gold agent reads it all
    records: list[EpisodeRecord] = []
    bar = tqdm(total=len(samples), desc=f"selftest {bench.name}", unit="ep", dynamic_ncols=True)

    def on_done(record: EpisodeRecord) -> None:
        records.append(record)
        bar.update(1)
        bar.set_postfix_str(f"solved {sum(solved(r) for r in records)}/{len(records)}")

    backend = ScriptedBackend(agents)
    try:
        run_episodes(bench, samples, backend, task_generation(bench, config), config.concurrency, on_done)
    finally:
        bar.close()
        backend.close()
    return records


def solved(record: EpisodeRecord) -> bool:
    return bool(record.score.success) and record.status not in _NOT_SOLVED


def why(record: EpisodeRecord) -> str:
    """How an unsolved episode ended: its status, score, error or last observation, in one line."""
    parts = [f"{record.status.value} after {len(record.steps)} step(s)", f"score {record.score.value:g}"]
    details = {k: v for k, v in record.score.details.items() if v not in ("", None, [], {})}
    if details:
        parts.append(_snip(json.dumps(details, default=str)))
    if record.error is not None:
        parts.append(f"error {record.error.type}: {_snip(record.error.message)}")
    last = next((s.observation for s in reversed(record.steps) if s.observation), None)
    if last:
        parts.append(f"last observation {_snip(last)!r}")
    return "; ".join(parts)


def _snip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 3] + "..."


def table_lines(checks: Sequence[TaskCheck]) -> list[str]:
    lines = [f"{'task':<12}{'solved':>8}{'total':>7}{'share':>9}{'time':>8}  status"]
    for c in checks:
        share = "-" if c.share is None else f"{c.share * 100:.1f}%"
        note = c.status + (f": {c.reason}" if c.reason else "")
        if c.no_gold and c.status == "checked":
            note += f" ({c.no_gold} sample(s) without a gold solution left out)"
        seconds = f"{c.seconds:.0f}s" if c.status == "checked" else "-"
        lines.append(f"{c.task:<12}{c.solved:>8}{c.total:>7}{share:>9}{seconds:>8}  {note}")
    for c in checks:
        lines += [f"unsolved {c.task}/{u.sample_id}: {u.reason}" for u in c.unsolved]
    return lines


def exit_status(checks: Sequence[TaskCheck]) -> int:
    return 1 if any(c.status == "cannot start" for c in checks) else 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    fields = {n: (RunConfig.model_fields[n].annotation, RunConfig.model_fields[n]) for n in _FLAGS}
    concurrency = fields["concurrency"][1]
    fields["concurrency"] = (int, FieldInfo.merge_field_infos(concurrency, description=CONCURRENCY_HELP))
    flags.add_flags(p, create_model("SelftestFlags", **fields))  # type: ignore[call-overload]
    group = p.add_argument_group("task options", "settings of one task, declared by its benchmark")
    for task, options in option_models().items():
        flags.add_flags(group, options, dest_prefix=f"{task}.")


def main(args: argparse.Namespace) -> int:
    from agentflan_eval.cli import config_from_args

    checks = selftest(config_from_args(args))
    print("\n".join(table_lines(checks)))
    return exit_status(checks)
