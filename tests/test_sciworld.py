"""SciWorld: AgentTuning's selection and agent-side rules, replayed episodes on the real simulator, and
that no JVM outlives a test."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.base import Backend, GenerationRequest
from agentflan_eval.backends.replay import ReplayBackend
from agentflan_eval.benchmarks.common.cl100k import count_tokens
from agentflan_eval.benchmarks.sciworld import protocol
from agentflan_eval.benchmarks.sciworld.benchmark import SciWorld, SciWorldSample
from agentflan_eval.benchmarks.sciworld.simulator import Simulator, child_jvms
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import Completion, EpisodeRecord, GenerationConfig, Message
from agentflan_eval.runner import run

# The simulator's own gold path for lifespan-longest-lived, test variation 119 (AgentTuning's first pick).
GOLD_119 = [
    "open door to hallway",
    "go to hallway",
    "open door to kitchen",
    "go to kitchen",
    "open door to outside",
    "go to outside",
    "focus on baby baby elephant",
    "wait1",
]
LIFESPAN_119 = SciWorldSample(
    id="17-lifespan-longest-lived-119",
    subset="lifespan-longest-lived",
    task_idx=17,
    task_name="lifespan-longest-lived",
    variation=119,
)


@pytest.fixture(autouse=True)
def no_jvm_left() -> Iterator[None]:
    yield
    assert child_jvms() == set(), "a ScienceWorld JVM outlived its test"


@pytest.fixture(scope="module")
def bench(data_dir: Path) -> SciWorld:
    return SciWorld(RunConfig(data_dir=data_dir), DataResolver(data_dir, offline=True))


def _collect(
    bench: SciWorld, samples: Sequence[SciWorldSample], backend: Backend
) -> dict[str, EpisodeRecord]:
    out: dict[str, EpisodeRecord] = {}
    run_episodes(bench, samples, backend, GenerationConfig(), 4, lambda r: out.__setitem__(r.sample_id, r))
    return out


def _replay(tmp_path: Path, scripts: dict[str, list[str]]) -> ReplayBackend:
    path = tmp_path / "replay.jsonl"
    path.write_text(
        "".join(
            json.dumps({"task": "sciworld", "sample_id": k, "replies": v}) + "\n" for k, v in scripts.items()
        )
    )
    return ReplayBackend(path)


# -- AgentTuning's rules, no simulator ---------------------------------------------------------------
def test_variation_selection_is_agenttuning_seeded_shuffle() -> None:
    # boil's 9 test variations as the simulator lists them, and the order AgentTuning's eval picked
    assert protocol.select_test_variations(0, list(range(21, 30))) == [26, 27, 28, 25, 24, 21, 29, 22, 23]
    assert len(protocol.select_test_variations(15, list(range(1000, 1348)))) == 9
    assert len(protocol.select_test_variations(25, [15, 16, 17, 18, 19])) == 5
    assert len(protocol.select_test_variations(5, list(range(75)))) == 10


@pytest.mark.parametrize(
    ("reply", "name", "argument", "valid"),
    [
        ("Action: go to kitchen", "act", "go to kitchen", True),
        ("  Think: I need water first.\n", "think", "I need water first.", True),
        ("go to kitchen", "act", "go to kitchen", False),  # no prefix: still sent, as AgentTuning does
        ("Action:", "act", "", False),
        ("", "act", "", False),
        ("think: lower case is not a thought", "act", "think: lower case is not a thought", False),
    ],
)
def test_parse_action(bench: SciWorld, reply: str, name: str, argument: str, valid: bool) -> None:
    a = bench.parse_action(reply)
    assert (a.name, a.argument, a.valid, a.raw) == (name, argument, valid, reply)


def test_candidates_and_mapping() -> None:
    valid = [
        "go to kitchen",
        "close door to kitchen",
        "focus on agent",
        "focus on apple",
        "focus on banana",
        "look around",
        "pick up apple",
        "teleport to kitchen",
    ]
    look = "This room is called the hallway. In it, you see: an apple"
    cands = protocol.candidate_actions(valid, look, "in your inventory, you see: nothing", ["look around"])
    # closed-door and unseen/forbidden focus actions go, the most recent actions are excluded, rooms' doors added
    assert (
        "close door to kitchen" not in cands
        and "focus on banana" not in cands
        and "focus on agent" not in cands
    )
    assert "look around" not in cands and "focus on apple" in cands and "open door to living room" in cands
    assert protocol.map_action("pick up apple", cands) == "pick up apple"
    assert protocol.map_action("go to green house", cands | {"go to greenhouse"}) == "go to greenhouse"
    assert protocol.map_action("please pick the apple!", cands) == "pick up apple"  # most shared words
    assert protocol.map_action("go to the kitchen", cands) == "go to kitchen"  # shortest of the best
    assert protocol.map_action("fly!!", cands) == "fly"  # nothing shared: sent as is, sanitised
    assert protocol.is_failed("No known action matches that input.") and protocol.is_failed(
        "The door is not open."
    )
    assert not protocol.is_failed("You move to the kitchen.")


def test_prompt_trimmed_like_agenttuning(bench: SciWorld) -> None:
    examples = bench.prompts[
        "16"
    ]  # inclined-plane-friction-unnamed-surfaces: the longest few-shot trajectory
    task = Message(
        role="user", content="The preceding task has ended. Now, I will start a new task.\nx\nYour task"
    )
    msgs = [
        Message(role="user", content="instr"),
        Message(role="assistant", content="Ok."),
        *[Message(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(examples)],
        task,
        Message(role="assistant", content="Action: look around"),
        Message(role="user", content="obs"),
    ]
    fitted = bench.fit_prompt(msgs)
    assert count_tokens(protocol.counted_text(fitted)) <= protocol.TOKEN_BUDGET
    assert count_tokens(protocol.counted_text(msgs)) > protocol.TOKEN_BUDGET
    assert fitted[:4] == msgs[:4] and fitted[-3:] == msgs[-3:]  # the first example pair goes last
    assert len(fitted) < len(msgs) and (len(msgs) - len(fitted)) % 2 == 0
    short = msgs[:4] + msgs[-3:]
    assert bench.fit_prompt(short) == short


# -- the real simulator ------------------------------------------------------------------------------
def test_test_set_is_270_episodes_interleaved_by_task(bench: SciWorld) -> None:
    samples = bench.load_samples()
    assert len(samples) == 270 and len({s.id for s in samples}) == 270
    assert [s.id for s in samples[:3]] == [
        "0-boil-26",
        "1-change-the-state-of-matter-of-26",
        "2-chemistry-mix-27",
    ]
    assert len({s.subset for s in samples[:30]}) == 30
    counts = {name: sum(s.subset == name for s in samples) for name in {s.subset for s in samples}}
    assert counts["boil"] == 9 and counts["chemistry-mix"] == 8 and counts["identify-life-stages-2"] == 4
    assert counts["inclined-plane-friction-named-surfaces"] == 9 and counts["power-component"] == 5
    assert counts["find-animal"] == 10
    assert LIFESPAN_119 in samples


def test_gold_trajectory_scores_100_beside_a_failing_one(bench: SciWorld, tmp_path: Path) -> None:
    replies = ["Think: The longest-lived animal must be found outside.", *(f"Action: {a}" for a in GOLD_119)]
    failing = SciWorldSample(id="0-boil-26", subset="boil", task_idx=0, task_name="boil", variation=26)
    looping = LIFESPAN_119.model_copy(update={"id": "17-lifespan-longest-lived-104", "variation": 104})
    words = [
        "xyzzy",
        "plugh",
        "frotz",
        "blorb",
        "gnusto",
        "rezrov",
        "yomin",
        "nitfol",
        "aimfiz",
        "zifmia",
        "bozbar",
    ]
    scripts = {
        LIFESPAN_119.id: replies,
        failing.id: [f"Action: {w}" for w in words],
        looping.id: ["Action: xyzzy"] * 6,
    }
    recs = _collect(
        bench, [LIFESPAN_119, failing, looping], _replay(tmp_path, scripts)
    )  # three simulators at once
    fail = recs[failing.id]  # 10 consecutive actions the simulator cannot parse end the episode
    assert fail.status.value == "invalid_action" and len(fail.steps) == 10
    assert fail.env_info["ended"] == "failed_actions" and fail.score.value == 0.0
    assert {s.observation for s in fail.steps} == {"No known action matches that input."}
    loop = recs[looping.id]  # 'look around' + 4 identical turns: only two distinct, AgentTuning's loop stop
    assert loop.status.value == "completed" and len(loop.steps) == 4 and loop.env_info["ended"] == "loop"
    rec = recs[LIFESPAN_119.id]
    assert rec.status.value == "completed" and rec.error is None
    assert rec.score.value == 100.0 and rec.score.success and rec.env_info["ended"] == "done"
    assert rec.steps[0].observation == "OK." and rec.env_info["actions"] == GOLD_119[:-1]  # done at the focus
    assert len(rec.steps) == len(GOLD_119)
    assert rec.prompt[0].content.startswith("Interact with a household") and rec.prompt[1].content == "Ok."
    assert (
        rec.prompt[-1].content.startswith("The preceding task has ended.")
        and "longest" in rec.prompt[-1].content
    )
    assert rec.invalid_actions == 0


def test_wrong_and_malformed_replies_fail_without_crashing(tmp_path: Path, data_dir: Path) -> None:
    replies = ["", "I don't know what to do", "Action:", "Think: hmm", "Action: focus on sink"]
    path = tmp_path / "replay.jsonl"
    path.write_text(json.dumps({"task": "sciworld", "sample_id": "0-boil-26", "replies": replies}) + "\n")
    cfg = RunConfig(
        backend="replay",
        replay_file=path,
        tasks=["sciworld"],
        limit=1,
        output_dir=tmp_path / "runs",
        data_dir=data_dir,
        report=False,
    )
    store, results = run(cfg)
    (rec,) = store.episodes("sciworld")
    assert rec.sample_id == "0-boil-26" and rec.status.value == "completed" and rec.error is None
    assert [s.action.valid for s in rec.steps] == [False, False, False, True, True]
    assert rec.steps[0].observation == "No known action matches that input."  # the simulator's own answer
    assert rec.env_info["actions"][1] == "go to outside"  # free text mapped onto a valid action
    assert rec.env_info["ended"] == "negative_score" and rec.score.value == 0.0 and not rec.score.success
    r = results.tasks["sciworld"]
    assert r.score == 0.0 and r.subsets == {"boil": 0.0} and r.invalid_action_rate == pytest.approx(3 / 5)


class _Interrupting(Backend):
    """Answers once, then the user presses Ctrl-C."""

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        self.calls += 1
        if self.calls > 1:
            raise KeyboardInterrupt
        return [Completion(text="Action: open door to hallway") for _ in requests]


def test_interrupt_and_dead_jvm_leave_no_process(bench: SciWorld, tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        _collect(bench, [LIFESPAN_119], _Interrupting())
    assert child_jvms() == set()
    # a JVM that dies mid-episode fails that episode only
    env = bench.make_env(LIFESPAN_119)
    env.reset()
    env.sim.proc.kill()  # type: ignore[attr-defined]
    with pytest.raises(Exception):  # noqa: B017 - py4j's error for a vanished gateway
        env.step(bench.parse_action("Action: go to hallway"))
    env.close()
    env.close()  # twice is fine


@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)  # the package's __del__ on a half-built env
def test_failed_start_raises_and_leaves_no_process() -> None:
    with pytest.raises(RuntimeError, match="simulator failed to start"):
        Simulator(java_opts="-XX:+NoSuchOptionForThisTest")  # the JVM refuses to start, twice
    gc.collect()  # let the half-built env's __del__ complain here, under the filter above
