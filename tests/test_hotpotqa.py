"""HotpotQA: data loading, action parsing, the offline Wikipedia stand-in, and replayed episodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA, HotpotQASample, parse_react_action
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.errors import DataChecksumError
from agentflan_eval.records import Action
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


@pytest.mark.parametrize(
    ("reply", "name", "arg"),
    [
        ("Thought 1: x\nAction 1: Search[Milhouse]", "search", "Milhouse"),
        ("Thought: x\nAction: lookup[named after]\nObservation: made up", "lookup", "named after"),
        ("Action 3: Finish[Richard Nixon]", "finish", "Richard Nixon"),
        ("I think the answer is finish[yes] now", "finish", "yes"),
        ("Action 2: SEARCH[ Leonid Levin ]", "search", "Leonid Levin"),
    ],
)
def test_parse_valid(reply: str, name: str, arg: str) -> None:
    a = parse_react_action(reply, ("search", "lookup", "finish"))
    assert (a.name, a.argument, a.valid) == (name, arg, True)


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I don't know.",
        "Action 1: Google[Milhouse]",
        "Action 1: Search Milhouse",
        "Thought 1: Search(Milhouse)",
    ],
)
def test_parse_malformed_is_invalid_not_an_error(reply: str) -> None:
    a = parse_react_action(reply, ("search", "lookup", "finish"))
    assert a.valid is False and a.raw == reply


def test_environment_search_lookup_and_invalid(bench: HotpotQA) -> None:
    sample = bench.load_samples()[0]  # easy: the Badr Hari question
    env = bench.make_env(sample)
    opening = env.reset()
    assert sample.question in opening[0].content and "Search[Milhouse]" in opening[0].content  # few-shot
    obs = env.step(Action(name="search", argument="badr hari")).text
    assert obs.startswith("Observation 1: Badr Hari") and "kickboxer" in obs
    first = env.step(Action(name="lookup", argument="K-1")).text
    assert first.startswith("Observation 2: (Result 1 / 1) He is a former K-1 Heavyweight champion")
    miss = env.step(Action(name="search", argument="Badr Hari kick boxing career")).text
    assert "Could not find [Badr Hari kick boxing career]. Similar: [" in miss and "'Badr Hari'" in miss
    assert "Invalid Action" in env.step(Action(name="invalid", valid=False)).text
    done = env.step(Action(name="finish", argument="Badr Hari"))
    assert done.done and env.info() == {"answer": "Badr Hari"}


def test_lookup_before_search_and_exhausted_results(bench: HotpotQA) -> None:
    env = bench.make_env(bench.load_samples()[0])
    env.reset()
    assert "Search for an entity first" in env.step(Action(name="lookup", argument="x")).text
    env.step(Action(name="search", argument="Badr Hari"))
    texts = [env.step(Action(name="lookup", argument="zzzz-not-there")).text for _ in range(2)]
    assert all(t.endswith("No more results.") for t in texts)


def _replay(tmp_path: Path, lines: list[dict]) -> Path:
    path = tmp_path / "replay.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def test_replayed_correct_episode_scores_1_and_wrong_below_1(tmp_path: Path, data_dir: Path) -> None:
    replay = _replay(
        tmp_path,
        [
            {
                "task": "hotpotqa",
                "sample_id": "easy-0",
                "replies": [
                    "Thought 1: Search the kick boxer.\nAction 1: Search[Badr Hari]\nObservation 1: I imagine this",
                    "Thought 2: He is the one.\nAction 2: Finish[Badr Hari]",
                ],
            },
            {
                "task": "hotpotqa",
                "sample_id": "medium-0",
                "replies": ["Thought 1: hmm\nAction 1: Finish[Harper's Bazaar]"],
            },
            {"task": "hotpotqa", "sample_id": "hard-4367", "replies": ["I am not sure what to do."] * 10},
        ],
    )
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
    assert eps["easy-0"].score.value == 1.0 and eps["easy-0"].status.value == "completed"
    assert eps["easy-0"].steps[0].reply.endswith("Search[Badr Hari]")  # cut at the stop string
    assert "kickboxer" in eps["easy-0"].steps[0].observation
    assert eps["medium-0"].score.value < 1.0  # gold: Arthur's Magazine
    hard = eps["hard-4367"]
    assert hard.status.value == "turn_limit" and len(hard.steps) == 10 and hard.invalid_actions == 10
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
