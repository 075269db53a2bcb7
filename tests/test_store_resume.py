"""The run store: a run killed with SIGKILL mid-way and resumed loses nothing and regenerates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agentflan_eval.config import RunConfig
from agentflan_eval.errors import AgentFlanError, DataFormatError
from agentflan_eval.records import EpisodeRecord, EpisodeStatus, RunManifest, Score
from agentflan_eval.rescore import rescore
from agentflan_eval.runner import run
from agentflan_eval.store import RunStore

N = 8

# A child process runs the real runner with a replay backend slowed to one reply per 0.3 s, so the
# parent can SIGKILL it after a few episodes have been written.
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import agentflan_eval.runner as runner
    from agentflan_eval.backends.replay import ReplayBackend
    from agentflan_eval.config import RunConfig

    class Slow(ReplayBackend):
        def generate(self, requests, config):
            time.sleep(0.3)
            return super().generate(requests, config)

    runner.make_backend = lambda cfg: Slow(cfg.replay_file)
    cfg = RunConfig.model_validate_json(sys.argv[1])
    runner.run(cfg)
""")


def _script(tmp_path: Path) -> Path:
    lines = [
        {
            "task": "hotpotqa",
            "sample_id": "*",
            "replies": [
                " look",
                " Search[Milhouse]",
                " ok",
                " Finish[yes]",
            ],
        }
    ]
    path = tmp_path / "replay.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_kill_9_then_resume_loses_nothing_and_regenerates_nothing(tmp_path: Path, data_dir: Path) -> None:
    cfg = RunConfig(
        backend="replay",
        replay_file=_script(tmp_path),
        tasks=["hotpotqa"],
        limit=N,
        concurrency=1,
        output_dir=tmp_path / "runs",
        run_id="r",
        data_dir=data_dir,
    )
    episodes = tmp_path / "runs/r/episodes/hotpotqa.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, cfg.model_dump_json()],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if episodes.exists() and episodes.read_text().count("\n") >= 3:
            break
        assert child.poll() is None, "the child finished before it could be killed"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    before = [json.loads(x) for x in episodes.read_text().splitlines()]
    assert 3 <= len(before) < N
    killed = [e for e in RunStore(tmp_path / "runs/r").wall_times() if e.task == "hotpotqa"]
    # timed at every episode, just before it is written: the kill may fall in between
    assert len(killed) == 1 and killed[0].episodes in (len(before), len(before) + 1)
    assert killed[0].seconds >= 4 * 0.3 * len(before)  # four slowed replies an episode

    calls: list[str] = []
    from agentflan_eval import runner
    from agentflan_eval.backends.replay import ReplayBackend

    class Counting(ReplayBackend):
        def generate(self, requests, config):
            calls.extend(r.sample_id for r in requests)
            return super().generate(requests, config)

    orig = runner.make_backend
    runner.make_backend = lambda c: Counting(c.replay_file)
    try:
        store, results = run(cfg)
    finally:
        runner.make_backend = orig
    after = list(store.episodes("hotpotqa"))
    assert len(after) == N and len({e.sample_id for e in after}) == N
    done_before = {e["sample_id"] for e in before}
    assert not done_before & set(calls), "a finished episode was generated again"
    assert set(calls) == {e.sample_id for e in after} - done_before
    assert [e.model_dump(mode="json") for e in after[: len(before)]] == before  # untouched on disk
    assert results.tasks["hotpotqa"].n == N
    walls = [e for e in store.wall_times() if e.task == "hotpotqa"]
    assert len(walls) == 2 and sum(e.episodes for e in walls) == killed[0].episodes + N - len(before)
    assert results.tasks["hotpotqa"].wall_seconds == sum(e.seconds for e in walls)  # both invocations count
    assert results.wall_seconds is not None and results.wall_seconds > results.tasks["hotpotqa"].wall_seconds

    calls.clear()
    runner.make_backend = lambda c: Counting(c.replay_file)
    try:
        run(cfg)  # a third run has nothing left to do
    finally:
        runner.make_backend = orig
    assert calls == [] and len(list(store.episodes("hotpotqa"))) == N


def test_a_run_found_through_the_environment_rescores_without_it(
    tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    monkeypatch.setenv("AGENTFLAN_DATA_DIR", str(data_dir))
    cfg = RunConfig(
        backend="replay",
        replay_file=_script(tmp_path),
        tasks=["hotpotqa"],
        limit=2,
        output_dir=tmp_path / "runs",
        run_id="env",
        report=False,
    )
    store, _ = run(cfg)
    assert store.read_manifest().config["data_dir"] == str(data_dir.resolve())
    monkeypatch.delenv("AGENTFLAN_DATA_DIR")
    assert rescore(store.root).changed == 0


def test_wall_time_sums_invocations_and_takes_the_slowest_rank(tmp_path: Path) -> None:
    from agentflan_eval.records import WallTime

    def entry(invocation: str, rank: int, seconds: float, task: str = "os") -> WallTime:
        return WallTime(invocation=invocation, rank=rank, task=task, seconds=seconds)

    main = RunStore(tmp_path)
    main.record_wall(entry("first", 0, 10.0))
    main.record_wall(entry("first", 0, 25.0))  # the same invocation later on: replaces, not adds
    main.record_wall(entry("first", 0, 4.0, task="db"))
    for rank, seconds in ((0, 30.0), (1, 50.0)):  # a resumed, sharded invocation: ranks run side by side
        RunStore(tmp_path, shard_rank=rank).record_wall(entry("second", rank, seconds))
    assert main.wall_seconds() == {"os": 25.0 + 50.0, "db": 4.0}
    # the run: the first invocation 25 + 4 s; the second, rank 1's 50 s (rank 0 ran beside it)
    assert main.total_wall_seconds() == 25.0 + 4.0 + 50.0
    main.merge_shards()  # the main process folds the ranks' figures into timing.json
    assert main.wall_seconds() == {"os": 25.0 + 50.0, "db": 4.0} and not list(main.shards_dir.glob("*"))


def test_a_corrupt_timing_file_is_set_aside_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from agentflan_eval.records import WallTime

    store = RunStore(tmp_path)
    (tmp_path / "timing.json").write_text("{not json")
    assert store.wall_seconds() == {}
    assert "timing.json is not a list of wall times" in caplog.text
    assert (tmp_path / "timing.json.corrupt").read_text() == "{not json"
    store.record_wall(WallTime(invocation="i", task="os", seconds=3.0))
    assert store.wall_seconds() == {"os": 3.0}


def test_wall_times_of_a_run_begun_before_they_were_kept_are_not_shown(tmp_path: Path) -> None:
    """An older run dir resumed: its earlier episodes have no time, so the sum would understate it."""
    from agentflan_eval.records import RunResults, TaskResult, WallTime
    from agentflan_eval.runner import with_wall_times

    store = RunStore(tmp_path)
    store.record_wall(WallTime(invocation="new", task="os", seconds=60.0, episodes=3))
    store.record_wall(WallTime(invocation="new", task="db", seconds=9.0, episodes=5))
    tasks = {
        t: TaskResult(task=t, suite="held-in", metric="success rate", score=0.0, n=n, n_standard=n)
        for t, n in (("os", 5), ("db", 5))
    }  # two of os's episodes ran before
    out = with_wall_times(store, RunResults(run_id="r", model="m", tasks=tasks))
    assert out.tasks["os"].wall_seconds is None and out.tasks["db"].wall_seconds == 9.0
    assert out.wall_seconds is None


def _record(sample_id: str) -> EpisodeRecord:
    return EpisodeRecord(
        task="t", sample_id=sample_id, prompt=[], status=EpisodeStatus.COMPLETED, score=Score(value=1.0)
    )


def test_torn_last_line_is_dropped_and_repaired_on_append(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.append(_record("a"))
    with open(store.episode_path("t"), "a") as fh:
        fh.write(_record("b").model_dump_json()[:30])  # killed mid-write
    assert [r.sample_id for r in store.episodes("t")] == ["a"]
    store.append(_record("c"))
    assert [r.sample_id for r in store.episodes("t")] == ["a", "c"]
    assert store.episode_path("t").read_text().count("\n") == 2


def test_a_last_line_torn_inside_a_character_is_dropped_and_repaired(tmp_path: Path) -> None:
    """Records hold non-ASCII text as UTF-8: a kill can cut the last one inside a character."""
    store = RunStore(tmp_path)
    store.append(_record("a"))
    line = _record("é" * 40).model_dump_json().encode("utf-8")
    cut = line.index("é".encode()) + 1  # the first byte of a two-byte character
    with open(store.episode_path("t"), "ab") as fh:
        fh.write(line[:cut])
    assert [r.sample_id for r in store.episodes("t")] == ["a"]
    store.append(_record("c"))
    assert [r.sample_id for r in store.episodes("t")] == ["a", "c"]


def test_corrupt_middle_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    store.append(_record("a"))
    with open(store.episode_path("t"), "a") as fh:
        fh.write("{not json}\n")
    store.append(_record("c"))
    with pytest.raises(DataFormatError, match=r"t\.jsonl:2"):
        list(store.episodes("t"))


def test_rescore_reproduces_the_original_scores(tmp_path: Path, data_dir: Path) -> None:
    cfg = RunConfig(
        backend="replay",
        replay_file=_script(tmp_path),
        tasks=["hotpotqa"],
        limit=6,
        output_dir=tmp_path / "runs",
        run_id="r",
        data_dir=data_dir,
    )
    store, _ = run(cfg)
    original = json.loads(store.results_path.read_text())
    store.results_path.unlink()
    outcome = rescore(store.root)
    assert outcome.episodes == 6 and outcome.changed == 0
    assert outcome.results.model_dump(mode="json") == original
    assert json.loads(store.results_path.read_text()) == original


def test_another_dtype_is_another_run_and_cannot_resume_this_one(tmp_path: Path) -> None:
    """bfloat16 replies differ from float32 ones, so they must not be mixed into one run dir."""
    from agentflan_eval.errors import AgentFlanError
    from agentflan_eval.runner import _check_resume, default_run_id

    plain = RunConfig(model="m")
    assert default_run_id(plain) == default_run_id(
        RunConfig(model="m", dtype=None)
    )  # older runs keep their id
    assert default_run_id(RunConfig(model="m", dtype="bfloat16")) != default_run_id(plain)
    store = RunStore(tmp_path / "r")
    store.root.mkdir(parents=True)
    store.write_manifest(
        RunManifest(
            run_id="r",
            created="now",
            model="m",
            backend="hf",
            chat_template="chatml",
            generation=plain.generation(),
            config=plain.model_dump(mode="json"),
            tasks=["db"],
            command_line=[],
            package_versions={},
        )
    )
    _check_resume(store, plain)
    try:
        _check_resume(store, RunConfig(model="m", dtype="bfloat16"))
    except AgentFlanError as e:
        assert "different dtype" in str(e)
    else:
        raise AssertionError("a bfloat16 run resumed a float32 run dir")


# -- two runs on one run dir; a lost final newline (issue 22, item 6) -----------------------------
N_AT_ONCE = 40


def _guess_replay(tmp_path: Path) -> Path:
    path = tmp_path / "replay.jsonl"
    replies = [" guess", " Finish[no idea]"]
    path.write_text(json.dumps({"task": "hotpotqa", "sample_id": "*", "replies": replies}) + "\n")
    return path


def _cli_run(tmp_path: Path, limit: int) -> subprocess.Popen[str]:
    args = [
        "run",
        "--backend",
        "replay",
        "--replay-file",
        str(_guess_replay(tmp_path)),
        "--tasks",
        "hotpotqa",
    ]
    args += ["--limit", str(limit), "--output-dir", str(tmp_path / "out"), "--run-id", "r", "--no-report"]
    return subprocess.Popen(
        [sys.executable, "-m", "agentflan_eval", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=os.environ.copy(),
    )


def _task_lines(tmp_path: Path) -> list[str]:
    return (tmp_path / "out" / "r" / "episodes" / "hotpotqa.jsonl").read_text().splitlines()


def test_a_second_run_on_a_held_run_dir_is_refused(tmp_path: Path) -> None:
    lock = RunStore(tmp_path / "out" / "r").lock()  # as a run in progress holds it
    try:
        proc = _cli_run(tmp_path, 3)
        _, err = proc.communicate(timeout=120)
    finally:
        lock.release()
    assert proc.returncode == 2
    assert len(err.strip().splitlines()) == 1 and "in use by another agentflan_eval run" in err
    assert not (tmp_path / "out" / "r" / "episodes").exists()  # it wrote nothing


def test_two_runs_at_once_write_each_episode_once(tmp_path: Path) -> None:
    procs = [_cli_run(tmp_path, N_AT_ONCE), _cli_run(tmp_path, N_AT_ONCE)]
    results = [(p.wait(timeout=180), p.stderr.read() if p.stderr else "") for p in procs]
    for p in procs:
        for fh in (p.stdout, p.stderr):
            if fh:
                fh.close()
    assert sorted(rc for rc, _ in results) in ([0, 0], [0, 2]), results  # refused, or ran after the first
    ids = [json.loads(ln)["sample_id"] for ln in _task_lines(tmp_path)]
    assert len(ids) == N_AT_ONCE == len(set(ids))
    assert not list((tmp_path / "out" / "r").glob("*.tmp"))


def test_sharded_ranks_share_the_run_dir_and_keep_others_out(tmp_path: Path) -> None:
    root = tmp_path / "run"
    ranks = [RunStore(root, shard_rank=r).lock() for r in (0, 1)]
    try:
        with pytest.raises(AgentFlanError, match="in use"):
            RunStore(root).lock()
        with pytest.raises(AgentFlanError, match="in use"):
            RunStore(root, shard_rank=1).lock()  # a second sharded run
    finally:
        for lk in ranks:
            lk.release()
    RunStore(root).lock().release()  # free again once the ranks are done


def _whole(i: int) -> EpisodeRecord:
    return EpisodeRecord(
        task="t", sample_id=f"s{i}", prompt=[], status=EpisodeStatus.COMPLETED, score=Score(value=1.0)
    )


def test_a_last_line_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    for i in range(3):
        store.append(_whole(i))
    path = store.episode_path("t")
    path.write_bytes(path.read_bytes()[:-1])  # killed between the record and its newline
    assert store.done_ids("t") == {"s0", "s1", "s2"}
    store.append(_whole(3))
    assert store.done_ids("t") == {"s0", "s1", "s2", "s3"}
    assert len(path.read_text().splitlines()) == 4
    path.write_bytes(path.read_bytes()[:-20])  # a truly torn line is still cut
    store.append(_whole(4))
    assert store.done_ids("t") == {"s0", "s1", "s2", "s4"}


def test_resume_after_a_lost_final_newline_loses_nothing(tmp_path: Path) -> None:
    """Killed after its 5th record but before that record's newline; the resumed run adds a 6th."""
    assert _cli_run(tmp_path, 5).wait(timeout=120) == 0
    path = tmp_path / "out" / "r" / "episodes" / "hotpotqa.jsonl"
    path.write_bytes(path.read_bytes().removesuffix(b"\n"))
    assert _cli_run(tmp_path, 6).wait(timeout=120) == 0
    ids = [json.loads(ln)["sample_id"] for ln in _task_lines(tmp_path)]
    assert len(ids) == 6 == len(set(ids))


def test_another_replay_file_is_another_run(tmp_path: Path, data_dir: Path) -> None:
    """A second replay file must not silently resume (and so report) the first one's results."""
    right, wrong = tmp_path / "a" / "replies.jsonl", tmp_path / "b" / "replies.jsonl"
    for path, answer in ((right, "yes"), (wrong, "no")):
        path.parent.mkdir()
        replies = [" sure", f"Finish[{answer}]"]
        path.write_text(json.dumps({"task": "hotpotqa", "sample_id": "*", "replies": replies}) + "\n")
    out = tmp_path / "runs"
    cfgs = [
        RunConfig(
            backend="replay", replay_file=p, tasks=["hotpotqa"], limit=2, output_dir=out, data_dir=data_dir
        )
        for p in (right, wrong)
    ]
    stores = [run(c)[0] for c in cfgs]
    assert stores[0].root != stores[1].root
    finals = [{r.steps[-1].reply for r in s.episodes("hotpotqa")} for s in stores]
    assert finals == [{"Finish[yes]"}, {"Finish[no]"}]
    from agentflan_eval.runner import default_run_id

    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(right.read_bytes())
    same = RunConfig(backend="replay", model=str(copy))  # the same replies, however named: the same run
    assert default_run_id(same).rsplit("-", 1)[1] == stores[0].root.name.rsplit("-", 1)[1]
