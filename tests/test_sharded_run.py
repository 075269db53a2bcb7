"""One process per device: two ranks (torchrun on CPU, gloo) shard the episodes and merge into one run dir
that equals a one-process run, with no episode lost or duplicated."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import EpisodeRecord, EpisodeStatus, Score
from agentflan_eval.store import RunStore

N = 7  # odd, so the ranks get unequal shares


def _replay(tmp_path: Path, data_dir: Path) -> Path:
    """Right answers for every third question, a search then a wrong answer for the rest."""
    samples = HotpotQA(RunConfig(data_dir=data_dir), DataResolver(data_dir)).load_samples()[:N]
    lines = []
    for i, s in enumerate(samples):
        final = s.answer if i % 3 == 0 else "no idea"
        lines.append(
            {
                "task": "hotpotqa",
                "sample_id": s.id,
                "replies": [" look", f" Search[{s.question[:30]}]", " done", f" Finish[{final}]"],
            }
        )
    path = tmp_path / "replay.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _cli(args: list[str], cwd: Path, nproc: int) -> subprocess.CompletedProcess:
    launcher = (
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            str(nproc),
            "--master-port",
            str(29500 + os.getpid() % 1000),
            "-m",
            "agentflan_eval",
        ]
        if nproc > 1
        else [sys.executable, "-m", "agentflan_eval"]
    )
    return subprocess.run(
        [*launcher, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _episodes(run_dir: Path) -> dict[str, EpisodeRecord]:
    lines = (run_dir / "episodes" / "hotpotqa.jsonl").read_text().splitlines()
    records = [EpisodeRecord.model_validate_json(x) for x in lines]
    ids = [r.sample_id for r in records]
    assert len(ids) == len(set(ids)), "an episode was written twice"
    return {r.sample_id: r for r in records}


def _same_episodes(one: dict[str, EpisodeRecord], two: dict[str, EpisodeRecord]) -> None:
    assert one.keys() == two.keys()
    for sid, rec in one.items():
        assert [s.reply for s in rec.steps] == [s.reply for s in two[sid].steps], sid
        assert rec.score == two[sid].score, sid


def test_two_ranks_merge_to_the_one_process_result(tmp_path: Path, data_dir: Path) -> None:
    replay = _replay(tmp_path, data_dir)
    common = [
        "run",
        "--backend",
        "replay",
        "--replay-file",
        str(replay),
        "--tasks",
        "hotpotqa",
        "--limit",
        str(N),
        "--concurrency",
        "2",
        "--no-report",
    ]
    single = _cli([*common, "--run-id", "one"], tmp_path, 1)
    assert single.returncode == 0, single.stderr
    sharded = _cli([*common, "--run-id", "two"], tmp_path, 2)
    assert sharded.returncode == 0, sharded.stderr
    assert sharded.stdout.count("run dir:") == 1, "only the main rank reports"
    bars = sharded.stderr.replace("\r", "\n")
    assert re.search(r"hotpotqa\[0/2\]: 100%.* 4/4", bars) and re.search(
        r"hotpotqa\[1/2\]: 100%.* 3/3", bars
    ), "each rank runs only its share (4 + 3 of 7)"

    one, two = _episodes(tmp_path / "runs/one"), _episodes(tmp_path / "runs/two")
    assert len(two) == N
    _same_episodes(one, two)
    assert sum(r.score.value == 1.0 for r in two.values()) == 3
    assert not list((tmp_path / "runs/two/episodes/shards").glob("*")), "shards and markers are cleaned up"
    res1 = json.loads((tmp_path / "runs/one/results.json").read_text())["tasks"]["hotpotqa"]
    res2 = json.loads((tmp_path / "runs/two/results.json").read_text())["tasks"]["hotpotqa"]
    assert res1["score"] == res2["score"] and res2["n"] == N
    walls = json.loads((tmp_path / "runs/two/timing.json").read_text())
    assert {(w["task"], w["rank"]) for w in walls} >= {("hotpotqa", 0), ("hotpotqa", 1)}
    assert len({w["invocation"] for w in walls}) == 1, "both ranks share one invocation id"
    assert res2["wall_seconds"] == max(w["seconds"] for w in walls if w["task"] == "hotpotqa")


def test_left_over_shards_count_as_done_and_merge(tmp_path: Path) -> None:
    """A sharded run killed before its merge: the next run sees the shard episodes and folds them in."""
    store = RunStore(tmp_path / "r")

    def rec(sid: str, status: EpisodeStatus = EpisodeStatus.COMPLETED) -> EpisodeRecord:
        return EpisodeRecord(
            task="t", sample_id=sid, prompt=[], status=status, score=Score(value=1.0, success=True)
        )

    store.append(rec("a"))
    RunStore(tmp_path / "r", shard_rank=0).append(rec("b"))
    RunStore(tmp_path / "r", shard_rank=1).append(rec("c", EpisodeStatus.MODEL_ERROR))
    assert store.tasks() == ["t"]
    assert store.done_ids("t") == {"a", "b"}, "a model error is retried on resume"
    RunStore(tmp_path / "r", shard_rank=1).append(rec("c"))  # the retry
    assert store.merge_shards() == 2
    final = [EpisodeRecord.model_validate_json(x) for x in store.episode_path("t").read_text().splitlines()]
    assert [(r.sample_id, r.status) for r in final] == [
        ("a", "completed"),
        ("b", "completed"),
        ("c", "completed"),
    ]
    assert store.shard_paths("t") == []


def test_a_retried_model_error_is_replaced_by_its_retry(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    store.append(
        EpisodeRecord(
            task="t", sample_id="x", prompt=[], status=EpisodeStatus.MODEL_ERROR, score=Score(value=0.0)
        )
    )
    assert store.done_ids("t") == set()
    store.append(
        EpisodeRecord(
            task="t", sample_id="x", prompt=[], status=EpisodeStatus.COMPLETED, score=Score(value=0.5)
        )
    )
    (only,) = store.episodes("t")
    assert only.status == EpisodeStatus.COMPLETED and only.score.value == 0.5
    assert store.done_ids("t") == {"x"}


@pytest.mark.slow
def test_two_cpu_ranks_on_the_embedded_model_equal_one_process(tmp_path: Path, embedded_dir: Path) -> None:
    """Batch 1 in both, so padding cannot change a greedy token; each rank loads its own model copy."""
    common = [
        "run",
        "--tasks",
        "hotpotqa",
        "--limit",
        "3",
        "--concurrency",
        "1",
        "--max-new-tokens",
        "24",
        "--no-report",
    ]
    single = _cli([*common, "--run-id", "one"], tmp_path, 1)
    assert single.returncode == 0, single.stderr
    sharded = _cli([*common, "--run-id", "two"], tmp_path, 2)
    assert sharded.returncode == 0, sharded.stderr
    _same_episodes(_episodes(tmp_path / "runs/one"), _episodes(tmp_path / "runs/two"))


def test_shards_merge_each_sample_and_repeat_and_old_records_are_repeat_0(tmp_path: Path) -> None:
    """With --repeats, ranks write (sample, repeat) episodes: the merge keeps every repeat of a sample, and a
    record written before repeats existed (no ``repeat`` key) is repeat 0."""
    store = RunStore(tmp_path / "r")
    old = EpisodeRecord(
        task="t", sample_id="a", prompt=[], status=EpisodeStatus.COMPLETED, score=Score(value=1)
    )
    line = json.loads(old.model_dump_json())
    del line["repeat"]
    store.episode_path("t").parent.mkdir(parents=True)
    store.episode_path("t").write_text(json.dumps(line) + "\n")
    for rank, (sid, repeat) in enumerate([("a", 1), ("b", 0), ("b", 1)]):
        RunStore(tmp_path / "r", shard_rank=rank % 2).append(
            old.model_copy(update={"sample_id": sid, "repeat": repeat})
        )
    assert store.done_keys("t") == {("a", 0), ("a", 1), ("b", 0), ("b", 1)}
    assert store.merge_shards() == 3 and store.shard_paths("t") == []
    assert sorted(r.key for r in store.episodes("t")) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
