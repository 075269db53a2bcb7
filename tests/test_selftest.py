"""selftest: each task's gold solution replayed through its real environment, parser and scorer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.alfworld.benchmark import ALFWorld, AlfworldEnv
from agentflan_eval.cli import main
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import Message
from agentflan_eval.selftest import check_task, table_lines


@pytest.fixture
def alfworld(data_dir: Path) -> ALFWorld:
    return ALFWorld(RunConfig(data_dir=data_dir), DataResolver(data_dir, offline=True))


def one_game_per_type(bench: ALFWorld, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The selftest's samples cut to the first game of each of the six task types (for time)."""
    firsts = {s.subset: s for s in reversed(bench.load_samples())}
    samples = [firsts[t] for t in sorted(firsts)]
    monkeypatch.setattr(bench, "load_samples", lambda: samples)
    return [s.id for s in samples]


def test_alfworld_expert_plans_solve_real_games_of_every_type(
    alfworld: ALFWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = one_game_per_type(alfworld, monkeypatch)
    steps: dict[str, list[str]] = {}
    original_step = AlfworldEnv.step

    def step(self: AlfworldEnv, action):  # type: ignore[no-untyped-def]
        steps.setdefault(self.sample.id, []).append(action.argument)
        return original_step(self, action)

    monkeypatch.setattr(AlfworldEnv, "step", step)
    check = check_task(alfworld, RunConfig(concurrency=3))
    assert (check.status, check.solved, check.total, check.unsolved) == ("checked", 6, 6, [])
    assert sorted(steps) == sorted(ids) and all(len(s) >= 3 for s in steps.values())
    # the replies went through the task's parser: AgentBench's "put X in/on Y", never the file's "move X to Y"
    played = [a for s in steps.values() for a in s]
    assert any(a.startswith("put ") and " in/on " in a for a in played)
    assert not any(a.startswith("move ") for a in played)


def test_a_wrong_or_broken_gold_solution_is_reported_unsolved_with_why(
    alfworld: ALFWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second, third = alfworld.load_samples()[:3]
    monkeypatch.setattr(alfworld, "load_samples", lambda: [first, second, third])
    right = alfworld.gold_agent(first)

    def wrong(messages: Sequence[Message]) -> str:
        return "THOUGHT: I will just look.\n ACTION: look\n"

    def broken(messages: Sequence[Message]) -> str:
        raise KeyError("no such table")

    agents = {first.id: right, second.id: wrong, third.id: broken}
    monkeypatch.setattr(alfworld, "gold_agent", lambda s: agents[s.id])
    check = check_task(alfworld, RunConfig())
    assert (check.status, check.solved, check.total) == ("checked", 1, 3)
    why = {u.sample_id: u.reason for u in check.unsolved}
    assert set(why) == {second.id, third.id}
    # three identical replies end ALFWorld's episode as a failure; the reason shows the game's answer
    assert why[second.id].startswith("invalid_action after 4 step(s); score 0")
    assert (
        "same reply three times" in why[second.id]
        and "last observation 'You are in the middle" in why[second.id]
    )
    assert (
        why[third.id] == "model_error after 0 step(s); score 0; error ModelError: KeyError: 'no such table'"
    )
    lines = table_lines([check])
    assert lines[1].split()[:4] == ["alfworld", "1", "3", "33.3%"]
    assert f"unsolved alfworld/{second.id}: invalid_action" in "\n".join(lines)


def test_no_gold_solution_and_an_environment_that_cannot_start(
    alfworld: ALFWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alfworld, "load_samples", lambda: ALFWorld.load_samples(alfworld)[:2])
    monkeypatch.setattr(alfworld, "gold_agent", lambda s: None)
    check = check_task(alfworld, RunConfig())
    assert (check.status, check.total, check.no_gold) == ("no gold solution", 0, 2)
    assert table_lines([check])[1].split() == ["alfworld", "0", "0", "-", "-", "no", "gold", "solution"]

    monkeypatch.setattr(alfworld, "gold_agent", lambda s: ALFWorld.gold_agent(alfworld, s))

    def no_engine(self: AlfworldEnv) -> list[Message]:
        raise OSError("textworld's PDDL engine is missing")

    monkeypatch.setattr(AlfworldEnv, "reset", no_engine)
    check = check_task(alfworld, RunConfig())
    assert (check.status, check.reason) == ("cannot start", "OSError: textworld's PDDL engine is missing")


def test_cli_prints_the_table_and_exits_by_whether_environments_started(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["selftest", "--tasks", "alfworld", "--limit", "1", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["task", "solved", "total", "share", "time", "status"]
    assert out[1].split()[:4] == ["alfworld", "1", "1", "100.0%"] and out[1].endswith("checked")

    # a task whose service is down: the others are still checked, and the exit status says one could not start
    down = ["--webshop-url", "http://127.0.0.1:9"]
    assert main(["selftest", "--tasks", "alfworld,webshop", "--limit", "1", *down]) == 1
    out = capsys.readouterr().out
    assert "alfworld" in out and "webshop" in out and "cannot start: WebShop server http://127.0.0.1:9" in out

    # no data: cannot start, one line why
    monkeypatch.delenv("AGENTFLAN_DATA_DIR")
    monkeypatch.setenv("AGENTFLAN_CACHE", str(tmp_path / "cache"))
    assert main(["selftest", "--tasks", "alfworld", "--data-dir", str(tmp_path / "empty")]) == 1
    assert (
        "cannot start: data file agenttuning/agentbench_old/alfworld/std.json is not in"
        in capsys.readouterr().out
    )

    # bad flags are a usage error
    assert main(["selftest", "--tasks", "alfwrold"]) == 2
    assert "Did you mean: alfworld" in capsys.readouterr().err
    assert main(["selftest", "--limit", "0"]) == 2
    assert "--limit must be 1 or more" in capsys.readouterr().err


def test_selftest_help_names_its_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["selftest", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--tasks" in text and "--db-url" in text and "exit status: 0 when every" in text
    assert "--model" not in text and "--backend" not in text  # no model is involved
