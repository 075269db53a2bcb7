"""HotpotQA: data loading, replayed episodes through the runner, corrupt data (the protocol: test_hotpotqa_bolaa)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA, HotpotQASample
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.errors import DataChecksumError
from agentflan_eval.runner import run


@pytest.fixture(scope="module")
def bench(data_dir: Path) -> HotpotQA:
    return HotpotQA(RunConfig(data_dir=data_dir), DataResolver(data_dir, offline=True))


def test_loads_300_questions_interleaved_by_level(bench: HotpotQA) -> None:
    samples = bench.load_samples()
    assert len(samples) == 300 and len({s.id for s in samples}) == 300
    assert [s.subset for s in samples[:6]] == ["easy", "medium", "hard"] * 2
    hard = next(s for s in samples if s.subset == "hard")
    assert isinstance(hard, HotpotQASample)
    assert hard.answer == "Gesellschaft mit beschränkter Haftung"  # dict-layout context converted
    assert ("VIVA Media", hard.context[5][1]) == hard.context[5]


def test_replayed_episodes_through_the_runner(tmp_path: Path, data_dir: Path) -> None:
    """Two replies a step (Thought, then Action), each cut at its first newline as TGI's stop did."""
    replay = tmp_path / "replay.jsonl"
    lines = [
        {
            "task": "hotpotqa",
            "sample_id": "easy-0",
            "replies": [
                " Search the kick boxer.\nAction 1: Search[Someone else]",
                " Search[Badr Hari]\nObservation 1: I imagine this",
                " He is the one.",
                " Finish[Badr Hari]",
            ],
        },
        {"task": "hotpotqa", "sample_id": "medium-0", "replies": [" hmm", " Finish[Harper's Bazaar]"]},
        {"task": "hotpotqa", "sample_id": "hard-4367", "replies": ["I am not sure what to do."] * 20},
    ]
    replay.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cfg = RunConfig(
        backend="replay",
        replay_file=replay,
        tasks=["hotpotqa"],
        limit=3,
        output_dir=tmp_path / "runs",
        data_dir=data_dir,
    )
    store, results = run(cfg)
    eps = {e.sample_id: e for e in store.episodes("hotpotqa")}
    easy = eps["easy-0"]
    assert easy.score.value == 1.0 and easy.status.value == "completed"
    assert [s.reply for s in easy.steps[:2]] == [" Search the kick boxer.", " Search[Badr Hari]"]
    assert easy.steps[0].observation == "\nAction 1:" and easy.steps[0].action.name == "think"
    assert "kickboxer" in (easy.steps[1].observation or "")
    assert eps["medium-0"].score.value < 1.0  # gold: Arthur's Magazine
    hard = eps["hard-4367"]
    assert hard.status.value == "turn_limit" and len(hard.steps) == 20 and hard.invalid_actions == 10
    assert hard.score.value == 0.0
    r = results.tasks["hotpotqa"]
    assert r.n == 3 and r.score == pytest.approx(1 / 3) and set(r.subsets) == {"easy", "medium", "hard"}
    assert r.statuses == {"completed": 2, "turn_limit": 1}


def test_a_question_file_that_is_not_the_pinned_one_is_refused(tmp_path: Path, data_dir: Path) -> None:
    src = data_dir / "agenttuning/hotpotQA/src"
    dst = tmp_path / "agenttuning/hotpotQA/src"
    (dst / "data").mkdir(parents=True)
    (dst / "prompt.txt").write_text((src / "prompt.txt").read_text())
    for level in ("easy", "medium", "hard"):
        raw = bytearray((src / f"data/{level}.joblib").read_bytes())
        if level == "medium":
            raw[-20] ^= 1  # one flipped bit: same size, another sha256
        (dst / f"data/{level}.joblib").write_bytes(bytes(raw))
    bench = HotpotQA(RunConfig(), DataResolver(tmp_path, offline=True))
    with pytest.raises(
        DataChecksumError, match=r"src/data/medium\.joblib: sha256 .* does not match the pinned"
    ):
        bench.load_samples()
