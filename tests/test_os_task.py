"""OS interaction: real problems of AgentTuning's AgentBench copy, parsing, judging, replayed episodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.replay import ReplayBackend
from agentflan_eval.benchmarks.os.benchmark import OSEnv, OSInteraction, observation, parse_os_action
from agentflan_eval.benchmarks.os.judge import compare
from agentflan_eval.benchmarks.os.problems import OSProblem
from agentflan_eval.records import Action, EpisodeRecord, EpisodeStatus, GenerationConfig


@pytest.fixture(scope="module")
def problems(os_bench: OSInteraction) -> dict[str, OSProblem]:
    return {p.id: p for p in os_bench.problems}


def test_the_144_standard_problems_load(os_bench: OSInteraction, problems: dict[str, OSProblem]) -> None:
    assert len(problems) == 144 == os_bench.n_standard
    assert [p.id for p in problems.values() if p.skip] == ["os-6-new-8"]
    assert len(os_bench.load_samples()) == 143
    files = {p.subset for p in problems.values()}
    assert len(files) == 16 and sum(p.subset == "7/2023-06-07-00-13-14" for p in problems.values()) == 88
    q47 = problems["os-4-Q47-0"]  # inline python and bash checks, a start script
    assert [c.language for c in q47.check or [] if c] == ["python", "bash", "bash"]
    assert q47.start is not None and q47.start.code.endswith("cd /home/user2")
    assert problems["os-4-N41-0"].match == "no" and problems["os-4-N41-0"].check is None
    assert problems["os-1-stock-0"].init[0].origin == "reconstructed:init/stock-log.sh"
    assert problems["os-1-stock-0"].check[1].code == "check/integer-match.py"  # type: ignore[index,union-attr]
    assert problems["os-5-new-7"].init == []  # its `create` is a list by mistake: AgentBench runs no init
    whats = " ".join(d.what for d in os_bench.deviations())
    assert "1 of 144 problems skipped: os-6-new-8" in whats and "init/nested_folders.sh" in whats


@pytest.mark.parametrize(
    ("name", "answer", "expected", "ok"),
    [
        ("check/integer-match.py", "220", "220\n", True),
        ("check/integer-match.py", " 7 ", "7", True),
        ("check/integer-match.py", "7.0", "7", False),
        ("check/integer-match.py", "None", "3\n", False),
        ("check/string-match.py", "/home/user\r\n", "/home/user\n", True),
        ("check/string-match.py", "/home/User", "/home/user", False),
        ("check/size-match.py", "4K", "4096", True),
        ("check/size-match.py", "4.0K", "4096", False),  # size-match.py reads no decimals
        ("check/size-match.py", "12M", "12582912", True),
        ("check/size-match.py", "12M", "12K", False),
        ("check/size-match.py", "big", "1K", False),
        ("check/in.py", "jack", "jack bill tom\n", True),
        ("check/in.py", "george", "jack bill", False),
        ("check/containing.py", "the answer is 42", "42\n", True),
        ("check/containing.py", "41", "42", False),
    ],
)
def test_comparators(name: str, answer: str, expected: str, ok: bool) -> None:
    assert compare(name, [answer, expected]) == (0 if ok else 1)


@pytest.mark.parametrize(
    ("reply", "name", "argument"),
    [
        ("Think: count.\n\nAct: bash\n\n```bash\nls -1 /etc | wc -l\n```", "bash", "ls -1 /etc | wc -l"),
        ("Act: bash\n```bash\ncd /tmp\n```\n```bash\npwd\n```", "bash", "cd /tmp\n\npwd"),
        ("Think: Now I get the answer, it is 220.\n\nAct: answer(220)", "answer", "220"),
        ("Act: answer((a) and (b))", "answer", "(a) and (b)"),
        ("Act: bash\n```bash\nls\n```\nAct: finish", "finish", ""),
        (
            "Act: answer 220\nAct: bash\n```bash\nls\n```",
            "bash",
            "ls",
        ),  # answer without parentheses is skipped
        ("The answer is 220.", "invalid", ""),
        ("Act: run\n```bash\nls\n```", "invalid", ""),
    ],
)
def test_parse_action_follows_agentbench(reply: str, name: str, argument: str) -> None:
    action = parse_os_action(reply)
    assert (action.name, action.argument, action.valid) == (name, argument, name != "invalid")


def test_observation_truncation() -> None:
    assert observation("") == "The output of the OS is empty."
    assert observation("220") == "The output of the OS:\n\n220"
    long = observation("x" * 801)
    assert long == "The output of the OS:\n\n" + "x" * 780 + "\n[truncated because the output is too long]"


def _replay(bench: OSInteraction, sample: OSProblem, replies: list[str], tmp_path: Path) -> EpisodeRecord:
    script = tmp_path / f"{sample.id}.jsonl"
    script.write_text(json.dumps({"task": "os", "sample_id": sample.id, "replies": replies}) + "\n")
    done: list[EpisodeRecord] = []
    run_episodes(bench, [sample], ReplayBackend(script), GenerationConfig(), 1, done.append)
    return done[0]


def test_replay_match_problem(
    os_bench: OSInteraction, problems: dict[str, OSProblem], tmp_path: Path
) -> None:
    """Q49: `start` sets var=10 in the shell; the answer is matched after strip."""
    sample = problems["os-4-Q49-1"]
    look = 'Think: test it.\n\nAct: bash\n\n```bash\n[ "$var" -eq "$var" ] 2>/dev/null && echo yes || echo no\n```'
    right = _replay(os_bench, sample, [look, "Think: it is.\n\nAct: answer( yes )"], tmp_path)
    assert right.steps[0].observation == "The output of the OS:\n\nyes\n"
    assert right.status == EpisodeStatus.COMPLETED and right.score.success
    wrong = _replay(os_bench, sample, ["Think: guess.\n\nAct: answer(no)"], tmp_path)
    assert wrong.score.value == 0.0


def test_replay_check_problem(
    os_bench: OSInteraction, problems: dict[str, OSProblem], tmp_path: Path
) -> None:
    """Q19: the answer is compared (integer-match) with the example command run in the episode's sandbox."""
    sample = problems["os-4-Q19-0"]
    count = "Think: count lines.\n\nAct: bash\n\n```bash\nwc -l < /root/matrix.txt\n```"
    right = _replay(os_bench, sample, [count, "Think: three lines.\n\nAct: answer(3)"], tmp_path)
    assert right.steps[0].observation == "The output of the OS:\n\n3\n"
    assert right.score.success and right.env_info["checks"][0]["output"] == "3\n"
    assert _replay(os_bench, sample, ["Act: answer(1)"], tmp_path).score.value == 0.0


def test_replay_state_check_problem(
    os_bench: OSInteraction, problems: dict[str, OSProblem], tmp_path: Path
) -> None:
    """6/new #4: the check inspects what the episode did to the sandbox (permissions under ~/videos)."""
    sample = problems["os-6-new-4"]
    fix = (
        "Think: chmod.\n\nAct: bash\n\n```bash\nfind ~/videos -type f -exec chmod 660 {} + && "
        "find ~/videos -type d -exec chmod 750 {} +\n```"
    )
    assert _replay(os_bench, sample, [fix, "Act: finish"], tmp_path).score.success
    assert not _replay(os_bench, sample, ["Act: finish"], tmp_path).score.success


def test_malformed_replies_end_the_episode_as_invalid(
    os_bench: OSInteraction, problems: dict[str, OSProblem], tmp_path: Path
) -> None:
    rec = _replay(os_bench, problems["os-4-Q19-0"], ["I would count the lines with wc."], tmp_path)
    assert rec.status == EpisodeStatus.INVALID_ACTION and rec.invalid_actions == 1
    assert rec.env_info["answer"] is None and rec.score.value == 0.0
    assert rec.env_info["checks"][-1]["params"] == ["None", "3\n"]  # AgentBench compares str(None)


@pytest.mark.parametrize(
    ("pid", "solution", "solved"),
    [
        ("os-5-new-0", "printf '#!/bin/bash\\npython3 -c \"print($*)\"\\n' > /usr/local/bin/calc", True),
        ("os-5-new-0", "printf '#!/bin/bash\\necho 25\\n' > /usr/local/bin/calc", False),
        ("os-5-new-1", "true", False),  # no count: /usr/local/bin, the first directory, already differs
        ("os-5-new-2", 'printf \'#!/bin/bash\\ndate -d "$1" +"$2"\\n\' > /usr/local/bin/date-format', True),
        ("os-5-new-2", "true", False),
    ],
)
def test_reconstructed_checks(
    os_bench: OSInteraction, problems: dict[str, OSProblem], pid: str, solution: str, solved: bool
) -> None:
    """The rewritten checking/N.sh scripts accept a real implementation and reject a wrong one (count's accepting
    cases: tests/test_os_checks.py, and its gold solution in tests/test_os_gold.py)."""
    env = OSEnv(problems[pid])
    try:
        env.reset()
        env.box.shell(
            solution + "; chmod +x /usr/local/bin/calc /usr/local/bin/count /usr/local/bin/date-format"
        )
        env.step(Action(name="finish"))
        score = os_bench.score(problems[pid], [], env.info())
    finally:
        env.close()
    assert score.success is solved


@pytest.mark.parametrize("pid", ["os-1-stock-0", "os-1-stock-5", "os-2-environment-3"])
def test_reconstructed_inits_make_the_described_state(
    os_bench: OSInteraction, problems: dict[str, OSProblem], pid: str
) -> None:
    """The rewritten init scripts build what the description promises; the example's answer then passes."""
    sample = problems[pid]
    env = OSEnv(sample)
    try:
        env.reset()
        assert env.init_returncodes == [0]
        out = env.box.shell(sample.example.code).text.strip()  # type: ignore[union-attr]
        assert out
        env.step(Action(name="answer", argument=out))
        assert os_bench.score(sample, [], env.info()).success
        env.answer = out + "x"
        env._verdict = None
        assert not os_bench.score(sample, [], env.info()).success
    finally:
        env.close()


def test_path_problem_with_nested_folders(
    os_bench: OSInteraction, problems: dict[str, OSProblem], tmp_path: Path
) -> None:
    sample = problems["os-2-environment-4"]  # put the folder holding echo-love on PATH via ~/.bashrc
    find = "Act: bash\n```bash\nfind / -name echo-love -perm /u=x 2>/dev/null\n```"
    add = "Act: bash\n```bash\necho 'export PATH=$PATH:/folder1/folder2/folder3/folder4/folder5' >> ~/.bashrc\n```"
    rec = _replay(os_bench, sample, [find, add, "Act: finish"], tmp_path)
    assert "/folder1/folder2/folder3/folder4/folder5/echo-love" in (rec.steps[0].observation or "")
    assert rec.score.success


@pytest.mark.slow
def test_embedded_model_runs_os_and_db(tmp_path: Path, embedded_dir: Path) -> None:
    """One episode of each on the embedded SmolLM2, through the CLI, then rescored without the model."""
    env = {**os.environ, "AGENTFLAN_OFFLINE": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentflan_eval",
            "run",
            "--tasks",
            "os,db",
            "--limit",
            "1",
            "--output-dir",
            "runs",
            "--no-report",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=1500,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    for task, sample in (("os", "os-1-stock-0"), ("db", "db-0")):
        (rec,) = [json.loads(x) for x in (run_dir / f"episodes/{task}.jsonl").read_text().splitlines()]
        assert rec["sample_id"] == sample and rec["steps"] and rec["completion_tokens"] > 0
        assert rec["status"] in ("completed", "turn_limit", "invalid_action", "context_limit")
        assert rec["error"] is None and rec["score"]["value"] in (0.0, 1.0)
    results = json.loads((run_dir / "results.json").read_text())["tasks"]
    assert results["os"]["n"] == results["db"]["n"] == 1 and "n_SELECT" in results["db"]["extra"]
    rescored = subprocess.run(
        [sys.executable, "-m", "agentflan_eval", "rescore", str(run_dir)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env=env,
        check=False,
    )
    assert rescored.returncode == 0 and "0 scores changed" in rescored.stdout


def test_model_that_fork_bombs_its_sandbox(
    os_bench: OSInteraction, problems: dict[str, OSProblem], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a pids cgroup, RLIMIT_NPROC holds the bomb (the sandbox's root is an unprivileged host user) and
    the episode is judged as usual, or the watchdog kills the sandbox and it scores nothing; either way the run
    goes on."""
    from agentflan_eval.benchmarks.common.sandbox import bwrap

    monkeypatch.setattr(bwrap.SandboxCgroup, "create", classmethod(lambda cls, *a: None))
    bomb = "Act: bash\n```bash\n:(){ :|:& };:\n```"
    wait = (
        "Act: bash\n```bash\nsleep 10\n```"  # the bomb grows in the background; a loaded machine needs time
    )
    rec = _replay(os_bench, problems["os-4-Q19-0"], [bomb, wait, "Act: answer(3)"], tmp_path)
    assert rec.error is None and len(rec.steps) == 3  # every reply was played: the run went on
    # held, the episode is judged as usual (the bomb's processes may still starve the checker); killed, it scores 0
    assert rec.env_info["sandbox_error"] in (None, "more than 256 processes")
    assert rec.env_info["sandbox_error"] is None or rec.score.value == 0.0


def test_kill_all_spares_pid_1_as_in_a_container(
    os_bench: OSInteraction, problems: dict[str, OSProblem], tmp_path: Path
) -> None:
    """`kill -9 -1` (and `kill -9 1`) end the shell but not the sandbox, whose pid 1 the kernel shields as it
    shields a docker container's: the episode goes on and is judged, as in AgentBench."""
    kill = "Act: bash\n```bash\nkill -9 1; kill -9 -1\n```"
    count = "Act: bash\n```bash\nwc -l < /root/matrix.txt\n```"
    rec = _replay(os_bench, problems["os-4-Q19-0"], [kill, count, "Act: answer(3)"], tmp_path)
    assert rec.status == EpisodeStatus.COMPLETED and len(rec.steps) == 3
    assert rec.steps[1].observation == "The output of the OS:\n\n3\n"  # a new login shell
    assert rec.score.success and rec.env_info["sandbox_error"] is None
