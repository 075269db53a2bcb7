"""Errored episodes as AgentBench v0.1 counted them: the protocol's figure leaves out the episodes its
original dropped (an environment that raised), the strict figure counts them as failures, and both are
reported with the number left out. Real DB samples, episodes run through the real agent loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflan_eval import benchmarks
from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.replay import ReplayBackend
from agentflan_eval.benchmark import Environment, Observation, Sample
from agentflan_eval.benchmarks.db.benchmark import Database, DBSample
from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import (
    Action,
    EpisodeRecord,
    EpisodeStatus,
    GenerationConfig,
    RunManifest,
    RunResults,
)
from agentflan_eval.runner import summary_lines
from agentflan_eval.scoring import task_result


class _FailsMidEpisode(Environment):
    """Opens like the real environment, then raises on the first action (a crashed database)."""

    def __init__(self, real: Environment):
        self.real = real

    def reset(self):  # type: ignore[no-untyped-def]
        return self.real.reset()

    def step(self, action: Action) -> Observation:
        raise RuntimeError("the database connection dropped")

    def close(self) -> None:
        self.real.close()


class _FlakyDatabase(Database):
    """The real DB benchmark whose environment fails to start for one sample and mid-episode for another."""

    fail_start: str = ""
    fail_step: str = ""

    def make_env(self, sample: Sample) -> Environment:
        if sample.id == self.fail_start:
            raise RuntimeError("could not create the table")
        env = super().make_env(sample)
        return _FailsMidEpisode(env) if sample.id == self.fail_step else env


@pytest.fixture(scope="module")
def episodes(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Database, list[EpisodeRecord]]:
    bench = _FlakyDatabase(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    chosen: list[DBSample] = [s for s in bench.load_samples() if s.subset == "SELECT"][:4]  # type: ignore[misc]
    assert len(chosen) == 4
    bench.fail_start, bench.fail_step = chosen[2].id, chosen[3].id
    replay = tmp_path_factory.mktemp("errored") / "replies.jsonl"
    replay.write_text(
        "".join(
            json.dumps(
                {
                    "task": "db",
                    "sample_id": s.id,
                    "replies": [f"Action: Answer\nFinal Answer: {json.dumps(s.label)}"],
                }
            )
            + "\n"
            for s in chosen
        )
    )
    done: list[EpisodeRecord] = []
    run_episodes(bench, chosen, ReplayBackend(replay), GenerationConfig(), 4, done.append)
    by_id = {r.sample_id: r for r in done}
    return bench, [by_id[s.id] for s in chosen]


def test_the_episodes_end_as_scripted(episodes: tuple[Database, list[EpisodeRecord]]) -> None:
    _, recs = episodes
    assert [r.status for r in recs] == [EpisodeStatus.COMPLETED] * 2 + [EpisodeStatus.ENV_ERROR] * 2
    assert [r.score.value for r in recs] == [1.0, 1.0, 0.0, 0.0]
    assert [len(r.steps) for r in recs] == [1, 1, 0, 1]  # the start failure took no step


def test_db_leaves_out_only_an_environment_that_failed_to_start(
    episodes: tuple[Database, list[EpisodeRecord]],
) -> None:
    """AgentBench's DB task caught errors during the interaction (scored wrong) and dropped a sample whose
    set-up raised: 2 right of the 3 kept; strict: 2 of 4."""
    bench, recs = episodes
    res = task_result(bench, recs)
    assert res.score == pytest.approx(2 / 3) and res.left_out == 1
    assert res.strict_score == pytest.approx(2 / 4)
    assert res.n == 4 and res.errors == 2


def test_any_rule_leaves_out_every_environment_error(
    episodes: tuple[Database, list[EpisodeRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """KG and ALFWorld dropped every episode that raised: 2 of 2 kept, strict 2 of 4."""
    bench, recs = episodes
    monkeypatch.setattr(type(bench), "errored_left_out", "any")
    res = task_result(bench, recs)
    assert (res.score, res.left_out, res.strict_score) == (1.0, 2, 0.5)


def test_tasks_whose_original_kept_errors_count_them(
    data_dir: Path, episodes: tuple[Database, list[EpisodeRecord]]
) -> None:
    """HotpotQA's original kept every episode: its score counts the errored ones as failures."""
    _, recs = episodes
    hotpot = HotpotQA(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    assert not any(hotpot.left_out(r.status, len(r.steps)) for r in recs)
    rules = {n: benchmarks.get(n).errored_left_out for n in benchmarks.task_names()}
    assert {n: r for n, r in rules.items() if r != "none"} == {
        "os": "start",
        "db": "start",
        "kg": "any",
        "alfworld": "any",
    }


def test_the_summary_shows_both_figures(episodes: tuple[Database, list[EpisodeRecord]]) -> None:
    bench, recs = episodes
    res = task_result(bench, recs)
    lines = summary_lines(RunResults(run_id="r", model="m", tasks={"db": res}))
    assert any(line.split()[:2] == ["db", "held-in"] and "66.67" in line for line in lines)
    assert any("1 errored episode(s) left out" in line and "strict score 50.00" in line for line in lines)


def test_a_run_reports_the_left_out_episode_and_the_strict_score(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI: results.json, the printed summary and the report all carry both figures."""
    from agentflan_eval.cli import main

    bench = Database(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    first = bench.load_samples()[:3]
    real_make_env = Database.make_env

    def make_env(self: Database, sample: Sample) -> Environment:
        if sample.id == first[1].id:
            raise RuntimeError("could not create the table")
        return real_make_env(self, sample)

    monkeypatch.setattr(Database, "make_env", make_env)
    replay = tmp_path / "replies.jsonl"
    replay.write_text(
        "".join(
            json.dumps({"task": "db", "sample_id": s.id, "replies": ["Action: Answer\nFinal Answer: []"]})
            + "\n"
            for s in first
        )
    )
    args = ["run", "--backend", "replay", "--model", str(replay), "--tasks", "db", "--limit", "3"]
    assert (
        main([*args, "--output-dir", str(tmp_path / "runs"), "--run-id", "r", "--data-dir", str(data_dir)])
        == 0
    )
    results = json.loads((tmp_path / "runs" / "r" / "results.json").read_text())["tasks"]["db"]
    assert (results["n"], results["left_out"], results["statuses"]) == (
        3,
        1,
        {"completed": 2, "env_error": 1},
    )
    assert results["strict_score"] is not None
    report = (tmp_path / "runs" / "r" / "report" / "report.md").read_text()
    assert "1 episode(s) whose environment raised are left out of the score" in report
    assert "Left out (strict score)" in report


def test_the_report_interval_is_over_the_episodes_the_headline_keeps(
    episodes: tuple[Database, list[EpisodeRecord]], data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bootstrap resamples the 3 episodes DB's headline keeps, not the start failure it leaves out."""
    from agentflan_eval.report import tables

    bench, recs = episodes
    res = task_result(bench, recs)
    manifest = RunManifest(
        run_id="r",
        created="",
        model="m",
        backend="replay",
        chat_template="",
        generation=GenerationConfig(),
        config=RunConfig(data_dir=data_dir).model_dump(mode="json"),
        tasks=["db"],
        command_line=[],
        package_versions={},
    )
    resampled: list[int] = []
    statistic_interval = tables.statistic_interval

    def spy(pairs, *args):  # type: ignore[no-untyped-def]
        resampled.append(len(pairs))
        return statistic_interval(pairs, *args)

    monkeypatch.setattr(tables, "statistic_interval", spy)
    ci = tables._interval(manifest, res, recs, 300, 0)
    assert resampled == [3] and ci is not None and ci.low <= 100 * 2 / 3 <= ci.high
