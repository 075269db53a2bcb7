"""ALFWorld: the standard games under AgentBench's logic, its prompts, action mapping and episode rules."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.alfworld.benchmark import (
    ALFWorld,
    AlfworldEnv,
    AlfworldSample,
    closest_command,
)
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import Action
from agentflan_eval.rescore import rescore
from agentflan_eval.runner import run


@pytest.fixture(scope="module")
def bench(data_dir: Path) -> ALFWorld:
    return ALFWorld(RunConfig(data_dir=data_dir), DataResolver(data_dir, offline=True))


def walkthrough(data_dir: Path, sample: AlfworldSample) -> list[str]:
    """The game's own solution, in AgentBench's grammar ("put X in/on Y" where the file says "move X to Y")."""
    steps = json.loads((data_dir / "alfworld" / sample.game).read_text())["walkthrough"]
    return [re.sub(r"^move (.+) to (.+)$", r"put \1 in/on \2", a) for a in steps]


def _children() -> set[str]:
    return {
        c for t in Path(f"/proc/{os.getpid()}/task").iterdir() for c in (t / "children").read_text().split()
    }


def test_loads_the_50_standard_games(bench: ALFWorld) -> None:
    samples = bench.load_samples()
    assert len(samples) == 50 and len({s.id for s in samples}) == 50
    assert Counter(s.subset for s in samples) == {
        "pick_and_place": 9,
        "pick_clean_then_place": 9,
        "pick_heat_then_place": 8,
        "pick_cool_then_place": 8,
        "look_at_obj": 8,
        "pick_two_obj": 8,
    }
    assert {s.subset: s.prompt_key for s in samples}["look_at_obj"] == "examine"  # type: ignore[attr-defined]
    assert bench.unavailable() is None


def test_few_shot_turns_are_agentbench_text(bench: ALFWorld) -> None:
    put = bench.examples["put"]
    assert len(put) == 14 and put[0].endswith("Your task is to: put some spraybottle on toilet.\n")
    assert put[1] == (
        "THOUGHT: The task is to put some spraybottle on toilet, so first i need to search the room "
        "for some spraybottle. After finding the spraybottle, i need to take it to the toilet. I wil "
        "start my search on cabinets.\n ACTION: go to cabinet 1\n"
    )
    assert put[2:4] == [
        "On the cabinet 1, you see a cloth 1, a soapbar 1, a soapbottle 1.\n",
        "ACTION: go to cabinet 2\n",
    ]
    assert put[-1] == "ACTION: Task succeeded.\n"


def test_parse_action(bench: ALFWorld) -> None:
    a = bench.parse_action("THOUGHT: the pencil may be on a desk.\n ACTION: Go to desk 2\nmore text")
    assert (a.argument, a.valid) == ("go to desk 2", True)
    a = bench.parse_action("  Go to desk 2\nthen take the pencil")  # AgentBench plays the first line
    assert (a.argument, a.valid) == ("go to desk 2", False)
    assert bench.parse_action("").valid is False


def test_closest_command_is_agentbench_bleu_mapping() -> None:
    choices = ["go to desk 1", "go to desk 2", "take pencil 2 from desk 2", "look"]
    assert closest_command("go to desk 2", choices) == "go to desk 2"
    assert closest_command("take pencil 2 from the desk 2", choices) == "take pencil 2 from desk 2"
    assert closest_command("fly away", choices) == "fly away"  # no overlap: sent as it is
    assert closest_command("anything", []) == "anything"


def test_environment_opening_and_observations(bench: ALFWorld, data_dir: Path) -> None:
    sample = bench.load_samples()[0]
    env = bench.make_env(sample)
    try:
        opening = env.reset()
        assert [m.role for m in opening[:3]] == ["user", "assistant", "user"]
        assert opening[2].content.startswith("Here is one example.\nYou are in the middle of a room.")
        assert opening[-1].content.startswith("Here is your task. You are in the middle of a room.")
        assert opening[-1].content.endswith("\nYour task is to: put a pencil in shelf.")
        obs = env.step(Action(name="act", argument="go to desk 2"))
        assert obs.text.startswith("On the desk 2, you see") and not obs.done  # "You arrive at loc N. " cut
        assert env.step(Action(name="act", argument="fly away")).text == "Nothing happens."
    finally:
        env.close()
    assert isinstance(env, AlfworldEnv) and env.env is None


def test_replayed_episodes_win_fail_and_close(
    bench: ALFWorld, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = bench.load_samples()[:2]
    right = [
        "I am not sure.",
        *[f"THOUGHT: next step.\n ACTION: {a}\n" for a in walkthrough(data_dir, first)],
    ]
    looping = ["ACTION: look"] * 5  # the same reply three times in a row ends the episode (failure)
    replay = tmp_path / "replay.jsonl"
    replay.write_text(
        "".join(
            json.dumps({"task": "alfworld", "sample_id": s.id, "replies": r}) + "\n"
            for s, r in ((first, right), (second, looping))
        )
    )
    closed: list[str] = []
    original_close = AlfworldEnv.close
    monkeypatch.setattr(
        AlfworldEnv, "close", lambda self: (closed.append(self.sample.id), original_close(self))
    )
    before = _children()
    config = RunConfig(
        backend="replay",
        replay_file=replay,
        tasks=["alfworld"],
        limit=2,
        output_dir=tmp_path / "runs",
        data_dir=data_dir,
        report=False,
    )
    store, results = run(config)
    episodes = {e.sample_id: e for e in store.episodes("alfworld")}
    won, looped = episodes[first.id], episodes[second.id]
    assert won.score.success is True and won.status.value == "completed" and len(won.steps) == len(right)
    assert won.steps[0].action.valid is False and won.steps[0].observation == "Nothing happens."
    assert won.env_info["commands"][-1].startswith("put ") and won.env_info["won"] is True
    assert looped.score.value == 0.0 and looped.status.value == "invalid_action" and len(looped.steps) == 4
    task = results.tasks["alfworld"]
    assert task.score == 0.5 and task.subsets == {"pick_and_place": 0.5} and bench.max_turns == 35
    assert sorted(closed) == sorted(episodes) and _children() <= before  # every env closed, nothing left
    assert rescore(store.root).changed == 0


def test_agentbench_history_window(bench: ALFWorld) -> None:
    """AgentBench's Session keeps the instruction and the newest turns within 3500 segments."""
    from agentflan_eval.benchmarks.common.agentbench import agentbench_window, segments
    from agentflan_eval.records import Message

    assert segments("abcdefghij k.") == 4 and segments("") == 0
    sample = bench.load_samples()[0]
    env = bench.make_env(sample)
    try:
        opening = env.reset()
    finally:
        env.close()
    assert bench.fit_prompt(opening) == opening  # the opening fits: nothing left out
    turns = [
        Message(role="assistant" if i % 2 == 0 else "user", content=f"ACTION: go to desk {i}\n" * 20)
        for i in range(60)
    ]
    window = bench.fit_prompt([*opening, *turns])
    assert window[0].content.startswith(opening[0].content) and window[1].role == "assistant"
    omitted = len(opening) + len(turns) - len(window)
    assert window[0].content.endswith(f"\n\n[NOTICE] {omitted} messages are omitted.") and omitted > len(
        opening
    )
    assert window[-1] == turns[-1] and sum(segments(m.content) for m in window[1:]) < 3500
    assert agentbench_window(window[:1]) == window[:1]


@pytest.mark.slow
def test_embedded_model_plays_an_episode(
    data_dir: Path, tmp_path: Path, embedded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real embedded model through the whole pipeline; two short turns keep it cheap on a CPU."""
    monkeypatch.setattr(ALFWorld, "max_turns", 2)
    monkeypatch.setattr(ALFWorld, "max_new_tokens", 32)
    config = RunConfig(tasks=["alfworld"], limit=1, output_dir=tmp_path, data_dir=data_dir, report=False)
    store, results = run(config)
    (episode,) = store.episodes("alfworld")
    assert episode.status.value in ("turn_limit", "completed", "invalid_action") and len(episode.steps) <= 2
    assert episode.prompt_tokens > 1000 and all(s.completion_tokens > 0 for s in episode.steps)
    assert all(s.observation for s in episode.steps) and episode.env_info["commands"]
    assert results.tasks["alfworld"].n == 1 and results.tasks["alfworld"].score in (0.0, 1.0)


@pytest.mark.parametrize("task", ["os", "db", "webshop", "mind2web", "alfworld", "kg"])
def test_every_held_in_task_cuts_its_history_with_agentbenchs_window_and_replies_in_128(task: str) -> None:
    """AgentBench.old's Session applied its window to every task, and every held-in launch script passed
    --max_new_tokens 128: a long episode keeps the instruction and the newest turns within 3500 segments."""
    from agentflan_eval import benchmarks
    from agentflan_eval.benchmarks.common.agentbench import agentbench_window, segments
    from agentflan_eval.data import DataResolver
    from agentflan_eval.records import Message

    bench = benchmarks.get(task)(RunConfig(), DataResolver(None))
    turns = [Message(role="user", content="Instruction: do the task.")]
    for i in range(40):
        turns += [
            Message(role="assistant", content=f"Act: step {i} " + "lookup " * 60),
            Message(role="user", content=f"Observation {i}: " + "result " * 60),
        ]
    fitted = bench.fit_prompt(turns)
    assert fitted == agentbench_window(turns) and len(fitted) < len(turns)
    assert (
        fitted[0].content.startswith("Instruction: do the task.")
        and "messages are omitted" in fitted[0].content
    )
    assert sum(segments(m.content) for m in fitted[1:]) < 3500 and fitted[-1] == turns[-1]
    assert bench.max_new_tokens == 128


FIRST_PROMPTS = json.loads((Path(__file__).parent / "fixtures" / "alfworld_first_prompts.json").read_text())


def _first_difference(ours: str, theirs: str) -> str:
    i = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), min(len(ours), len(theirs)))
    return f"first difference at char {i}: ours {ours[i : i + 60]!r}, original {theirs[i : i + 60]!r}"


@pytest.mark.parametrize("original", FIRST_PROMPTS["prompts"], ids=lambda o: o["game"].split("/")[2][:24])
def test_first_prompt_is_agentbench_olds_character_for_character(bench: ALFWorld, original: dict) -> None:
    """The messages AgentBench.old's Session handed its agent for the first game of each task type, and the
    text its TGIAgent sent (FastChat 0.2.31 llama-2, no system message), both derived by running the
    original code (fixture's ``derived_from``): ours match to the character, "mivrowave" included."""
    from agentflan_eval.model_zoo.chat_templates import get_template
    from agentflan_eval.model_zoo.prompt_formats import render

    sample = next(s for s in bench.load_samples() if s.game == original["game"])  # type: ignore[attr-defined]
    env = bench.make_env(sample)
    try:
        messages = bench.fit_prompt(env.reset())
    finally:
        env.close()
    roles = ["agent" if m.role == "assistant" else m.role for m in messages]
    assert roles == [m["role"] for m in original["messages"]]
    for ours, theirs in zip(messages, original["messages"]):
        assert ours.content == theirs["content"], _first_difference(ours.content, theirs["content"])
    text = render(get_template("agentlm"), messages, bench.prompt_format)
    assert text.startswith("<s>")  # the BOS token TGI's tokenizer put before the text it was sent
    assert text[3:] == original["agentlm_prompt"], _first_difference(text[3:], original["agentlm_prompt"])
    if sample.prompt_key == "heat":  # type: ignore[attr-defined]
        assert "there is a mivrowave 1 in the room" in text
