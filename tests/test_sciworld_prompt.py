"""SciWorld's prompt against AgentTuning's own: the trimming loop of ``eval.py`` l.258-270, counted in cl100k
tokens over FastChat's llama-2 rendering, and every test episode's first prompt as that script builds it.

The fixtures were made by running AgentTuning's ``eval.py`` prompt code (THUDM/AgentTuning e33a45d,
l.187-277, with FastChat 0.2.31, tiktoken's cl100k_base and scienceworld 1.2.3) outside the project:
``sciworld_first_prompt.txt`` is the text it sends for the first test episode (task 0, variation 26),
``sciworld_first_prompts.json`` holds, for all 270 test episodes, the sha256 of that text (and of its part
before the task turn, and of the task turn's sorted words), its cl100k count and how many turns it kept.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agentflan_eval.benchmarks.common.cl100k import count_tokens
from agentflan_eval.benchmarks.sciworld import protocol
from agentflan_eval.benchmarks.sciworld.benchmark import SIMPLIFICATIONS, SciWorld, SciWorldSample, opening
from agentflan_eval.benchmarks.sciworld.simulator import Simulator
from agentflan_eval.model_zoo.chat_templates import get_template
from agentflan_eval.records import Message
from tests import test_sciworld

FIXTURES = Path(__file__).parent / "fixtures"
AGENTLM = get_template("agentlm")


bench = test_sciworld.bench  # the same fixtures as the task's other tests
no_jvm_left = test_sciworld.no_jvm_left


def _msgs(*texts: str) -> list[Message]:
    return [Message(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(texts)]


def test_counted_text_is_fastchat_llama2_with_the_system_message() -> None:
    # FastChat 0.2.31 LLAMA2: system block, turn 0 + " ", later turns tag + " " + text + (" " | " </s><s>"),
    # an empty turn its bare tag.
    assert protocol.counted_text(_msgs("I", "Ok.", "", "x", "obs")) == (
        "[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"
        "I [/INST] Ok. </s><s>[INST][/INST] x </s><s>[INST] obs "
    )


def _three_pair_prompt() -> list[Message]:
    task = f"{protocol.NEW_TASK}\nThis room is called the kitchen.\nYour task is to boil water."
    return _msgs("instr", "Ok.", "e1 q", "e1 a", "e2 q", "e2 a", "e3 q", "e3 a", task, "a1", "o1", "a2", "o2")


def test_trim_deletes_turns_4_5_then_the_lone_first_pair() -> None:
    msgs = _three_pair_prompt()
    size = [count_tokens(protocol.counted_text(m)) for m in (msgs, msgs[:4] + msgs[6:], msgs[:4] + msgs[8:])]
    assert protocol.trim_prompt(msgs, budget=size[0]) == msgs
    # the second pair goes first; the first pair stays while another is left
    assert protocol.trim_prompt(msgs, budget=size[1]) == msgs[:4] + msgs[6:]
    # once the first pair is alone it goes at once, although instruction + pair 1 + task would have fitted
    assert protocol.trim_prompt(msgs, budget=size[2]) == msgs[:2] + msgs[8:]
    # past the few-shot, turns 4-5 again: the first reply stays, the observation after it and the next reply go
    tight = count_tokens(protocol.counted_text(msgs[:2] + msgs[8:])) - 1
    assert protocol.trim_prompt(msgs, budget=tight) == [*msgs[:2], msgs[8], msgs[9], msgs[12]]
    assert protocol.trim_prompt(msgs, budget=0) == [*msgs[:2], msgs[8], msgs[9]]  # nothing more can go


def test_trim_counts_cl100k_tokens_not_words() -> None:
    # 400 words of 4 cl100k tokens each: four such turns are 1,600 words but 6,400 tokens
    long = " ".join(["xqzj"] * 400)
    msgs = _msgs("instr", "Ok.", long, long, long, long, f"{protocol.NEW_TASK}\ntask")
    assert count_tokens(long) == 1600
    assert protocol.trim_prompt(msgs) == [*msgs[:2], msgs[6]]


def _first_prompts(bench: SciWorld, samples: list[SciWorldSample]) -> dict[str, list[Message]]:
    """First prompts of one task's samples, as ``eval.py`` makes them: one simulator for the task, loaded with
    variation 0 first (``load_variation``), then each variation in turn. The simulator lists a room's
    objects in an order that depends on what it loaded before, so the history is the original's."""
    sim = Simulator()
    try:
        sim.env.load(samples[0].task_name, 0, SIMPLIFICATIONS)
        return {s.id: opening(sim, s, bench.prompts[str(s.task_idx)])[0] for s in samples}
    finally:
        sim.close()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _fastchat(messages: list[Message]) -> str:
    """The whole prompt as AgentTuning sends it: the counted text and the reply slot's tag."""
    return protocol.counted_text(messages) + "[/INST]"


def test_first_sample_prompt_is_agenttunings_character_for_character(bench: SciWorld) -> None:
    first = bench.load_samples()[0]
    assert isinstance(first, SciWorldSample) and first.id == "0-boil-26"
    prompt = bench.fit_prompt(_first_prompts(bench, [first])[first.id])
    expected = (FIXTURES / "sciworld_first_prompt.txt").read_text(encoding="utf-8")
    assert _fastchat(prompt) == expected
    # What the model receives through the agentlm template (TGI adds the BOS token upstream) differs only in
    # the template stripping each turn: few-shot turn 81 of task 0 ends in a space FastChat keeps (a recorded
    # deviation).
    stripped = [m.model_copy(update={"content": m.content.strip()}) for m in prompt]
    assert AGENTLM.adds_bos and AGENTLM.render(prompt) == "<s>" + _fastchat(stripped)
    assert AGENTLM.render(prompt) != "<s>" + expected
    assert any("strip each turn" in d.what for d in bench.deviations())


def test_all_270_first_prompts_match_agenttuning_and_fit_4096(bench: SciWorld) -> None:
    """Every test episode's first prompt is the original's and within its cl100k budget (the
    words-and-punctuation count let 30 of tasks 16, 23 and 24 through over it). The task turn is compared as
    a multiset of words: the simulator lists a room's objects in an order that depends on what its JVM
    loaded before, and the fixtures' JVM history is not quite this test's."""
    samples = [s for s in bench.load_samples() if isinstance(s, SciWorldSample)]
    expected = json.loads((FIXTURES / "sciworld_first_prompts.json").read_text(encoding="utf-8"))
    assert len(samples) == len(expected) == 270
    tasks = [[s for s in samples if s.task_idx == i] for i in range(30)]
    with ThreadPoolExecutor(3) as pool:  # three simulators side by side
        prompts = {
            k: v for part in pool.map(lambda t: _first_prompts(bench, t), tasks) for k, v in part.items()
        }
    trimmed, reordered = set(), []
    for sample_id, want in expected.items():
        fitted = bench.fit_prompt(prompts[sample_id])
        text = _fastchat(fitted)
        assert count_tokens(protocol.counted_text(fitted)) <= protocol.TOKEN_BUDGET, sample_id
        assert count_tokens(text) == want["cl100k"], sample_id
        assert len(fitted) + 1 == want["turns"], sample_id
        head, task = text.split("[INST] " + protocol.NEW_TASK)
        task = "[INST] " + protocol.NEW_TASK + task.removesuffix(" [/INST]")
        assert _sha(head) == want["before_task_sha256"], sample_id  # instruction and kept few-shot, exactly
        assert _sha(" ".join(sorted(task.split(" ")))) == want["task_words_sha256"], sample_id
        if _sha(text) != want["sha256"]:  # the same words: the room's objects listed in another order
            reordered.append(sample_id)
        if len(fitted) < len(prompts[sample_id]):
            trimmed.add(sample_id.split("-")[0])
    assert len(reordered) < 60, reordered
    assert trimmed == {"16", "23", "24"}
