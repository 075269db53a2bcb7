"""MiniWoB++ under AgentTuning's RCI protocol, against AgentTuning's own code.

``fixtures/miniwob_agenttuning_prompts.json`` holds every prompt that AgentTuning's ``eval_heldout/miniwob++``
(@ e33a45d7: ``main.miniwob`` and ``llm_agent.LLMAgent`` with FastChat 0.2.31, Selenium and Chromium,
``--erci 1 --irci 3 --sgrounding``, seed 0) sent to TGI for four scripted episodes, with the scripted replies
and the outcome: choose-list (the first sample; solved), click-button (a wrong button after an instruction
correction; failed), enter-text (three steps with state grounding; solved) and login-user (three failed
corrections; "Action RCI failed"), and the first request of ten more tasks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser import assert_no_browser_left

from agentflan_eval.benchmarks.common.browser.driver import hold
from agentflan_eval.benchmarks.miniwob import pages, rci_prompt
from agentflan_eval.benchmarks.miniwob.benchmark import EPISODES, TASKS, MiniWoB, MiniWoBSample
from agentflan_eval.benchmarks.miniwob.rci_actions import InvalidInstruction, RciAction, convert
from agentflan_eval.cli import build_parser, config_from_args
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DATA_ENV, DataResolver
from agentflan_eval.model_zoo.chat_templates import get_template
from agentflan_eval.records import EpisodeStatus, Message
from agentflan_eval.runner import run
from agentflan_eval.store import RunStore

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "miniwob_agenttuning_prompts.json").read_text())
AGENTLM = get_template("agentlm")


def original_prompt(episode: dict[str, Any], i: int) -> str:
    """The i-th request of a fixture episode as the model saw it: TGI put BOS before the text."""
    return "<s>" + FIXTURE["prompt_head"] + episode["prompt_tails"][i]


def as_our_template_renders(original: str) -> str:
    """The one recorded deviation: our llama-2 template strips each turn, FastChat 0.2.31 did not (a turn's
    leading newline after ``[INST] ``, trailing newlines before `` [/INST]``)."""
    return re.sub(r"\n+ \[/INST\]", " [/INST]", original.replace("[INST] \n", "[INST] "))


def need_agenttunings_files(b: MiniWoB, data_dir: Path) -> None:
    """AgentTuning's MiniWoB++ prompts and pages are not in ../shared/data yet: these tests need them
    (`python -m agentflan_eval data fetch --tasks miniwob` puts them in the cache, or AGENTFLAN_DATA_DIR)."""
    if missing := b.data.missing(b.all_data_files()):
        pytest.skip(
            f"{len(missing)} of AgentTuning's MiniWoB++ files missing from {data_dir}, e.g. {missing[0].path}"
        )


@pytest.fixture(scope="module")
def bench(data_dir: Path) -> Iterator[MiniWoB]:
    b = MiniWoB(RunConfig(backend="replay", data_dir=data_dir), DataResolver(data_dir))
    need_agenttunings_files(b, data_dir)
    assert b.unavailable() is None, b.unavailable()
    with hold():
        yield b
    assert_no_browser_left()


def play(bench: MiniWoB, task: str, seed: int, replies: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Run one episode with scripted replies; returns every rendered request and the env's final info."""
    env = bench.make_env(MiniWoBSample(id=f"{task}-{seed}", subset=task, task=task, seed=seed))
    try:
        opening = env.reset()
        messages, prompts = list(opening), []
        for reply in replies:
            prompts.append(AGENTLM.render(messages))
            obs = env.step(bench.parse_action(reply))
            if obs.done:
                break
            assert obs.restart and obs.text is not None
            messages = [*opening[:-1], Message(role="user", content=obs.text)]
        return prompts, env.info()
    finally:
        env.close()


# -- the grammar: accept/reject pairs, each what the original's own functions return -------------------------
@pytest.mark.parametrize(
    ("instruction", "valid"),
    [
        ("clickxpath //button", True),
        ('ClickXpath //*[@id="subbtn"]', True),  # re.I
        ("clickxpath", False),
        ("click //button", False),
        ("type hello", True),
        ('type "hello"', True),  # the davinci regex also allows quotes
        ("type", False),
        ("press enter", True),
        ("press Enter", True),
        ("press space", False),
        ("press enter now", False),
        ("movemouse //div", True),
        ("clickoption //option[2]", True),
        ("clickid subbtn", False),
        (" clickxpath //a", False),
        ("1. clickxpath //a", False),
    ],
)
def test_instruction_grammar(instruction: str, valid: bool) -> None:
    assert rci_prompt.matches_grammar(instruction) is valid


@pytest.mark.parametrize(
    ("reply", "instruction"),
    [
        ("clickxpath //button`.", "clickxpath //button"),
        ("'type hi'", "type hi"),
        ("type a\\nb", "type a\nb"),  # a written \n becomes a newline (Enter)
        ("clickxpath //a\n", "clickxpath //a"),
        ("`clickxpath //a`", ""),  # cut at the first backtick
        ('clickxpath //*[@id="tt"]` and then', 'clickxpath //*[@id="tt"]'),
        ("  press enter  ", "press enter"),
    ],
)
def test_process_instruction(reply: str, instruction: str) -> None:
    assert rci_prompt.process_instruction(reply) == instruction


@pytest.mark.parametrize(("plan", "steps"), [("1. a\n2. b", 3), ("", 1), ("1. a\n3. c", 2), ("11. x", 2)])
def test_plan_steps(plan: str, steps: int) -> None:
    assert rci_prompt.plan_steps(plan) == steps


def test_convert_instruction() -> None:
    assert convert('type "Agustina"') == RciAction("type", "Agustina")
    assert convert("Type hello world") == RciAction("type", "hello world")
    assert convert("press arrowleft") == RciAction("key", "ArrowLeft")
    assert convert('clickxpath //*[@id="a b"]') == RciAction("clickxpath", '//*[@id="a b"]')
    assert convert("clickoption //option[1]") == RciAction("clickoption", "//option[1]")
    with pytest.raises(InvalidInstruction):
        convert("click //a")


# -- the task set and the prompts ---------------------------------------------------------------------------
def test_task_set_is_agenttunings(bench: MiniWoB, data_dir: Path) -> None:
    samples = bench.load_samples()
    assert len(TASKS) == 46 and len(set(TASKS)) == 46
    assert len(samples) == bench.n_standard == 46 * EPISODES
    assert [s.id for s in samples[:3]] == ["choose-list-0", "click-button-sequence-0", "click-button-0"]
    for task in TASKS:  # every page exists in AgentTuning's copy
        assert (data_dir / "agenttuning/miniwob++/html/miniwob" / f"{task}.html").is_file(), task


def test_without_agenttunings_pages_the_pypi_pages_are_a_recorded_deviation(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = data_dir / "agenttuning/miniwob++"
    monkeypatch.delenv(DATA_ENV)  # the resolver would look there too
    monkeypatch.setenv("AGENTFLAN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "agenttuning/miniwob++").mkdir(parents=True)
    (tmp_path / "agenttuning/miniwob++/prompt").symlink_to(own / "prompt")
    with_pages = MiniWoB(RunConfig(backend="replay"), DataResolver(data_dir))
    need_agenttunings_files(with_pages, data_dir)
    without = MiniWoB(RunConfig(backend="replay"), DataResolver(tmp_path))
    assert with_pages.html_root() == own / "html"
    assert not any("PyPI" in d.what for d in with_pages.deviations())
    assert without.unavailable() is None and without.html_root() == pages.pypi_root()
    assert any(d.what.startswith("PyPI miniwob pages") for d in without.deviations())


def test_first_prompt_matches_the_original(bench: MiniWoB) -> None:
    """Item 6: the full first prompt of the first sample, character by character, against the original's."""
    first = bench.load_samples()[0]
    episode = FIXTURE["episodes"][0]
    assert (episode["task"], episode["seed"]) == (first.task, first.seed)  # type: ignore[attr-defined]
    env = bench.make_env(first)
    try:
        ours = AGENTLM.render(env.reset())
    finally:
        env.close()
    original = original_prompt(episode, 0)
    assert ours != original and len(original) - len(ours) == 1  # the template's strip: one newline
    assert ours == as_our_template_renders(original)


@pytest.mark.parametrize("task", sorted(FIXTURE["first_prompt_tails"]))
def test_first_prompt_of_more_tasks_matches_the_original(bench: MiniWoB, task: str) -> None:
    """The HTML observation (with the body's other children for the dialog tasks) and each task's prompt files."""
    env = bench.make_env(MiniWoBSample(id=f"{task}-0", subset=task, task=task, seed=0))
    try:
        ours = AGENTLM.render(env.reset())
    finally:
        env.close()
    original = "<s>" + FIXTURE["prompt_head"] + FIXTURE["first_prompt_tails"][task]
    assert ours == as_our_template_renders(original)


@pytest.mark.parametrize("episode", FIXTURE["episodes"], ids=[e["task"] for e in FIXTURE["episodes"]])
def test_episode_replays_as_the_original(bench: MiniWoB, episode: dict[str, Any]) -> None:
    """Every request of the episode equals the original's, and the real browser gives the original's outcome."""
    prompts, info = play(bench, episode["task"], episode["seed"], episode["replies"])
    assert len(prompts) == len(episode["prompt_tails"])
    for i, ours in enumerate(prompts):
        assert ours == as_our_template_renders(original_prompt(episode, i)), f"request {i}"
    score = bench.score(MiniWoBSample(id="x", task=episode["task"], seed=episode["seed"]), [], info)
    assert score.success is episode["success"], info


def test_runner_scores_success_failure_and_rci_failure(
    bench: MiniWoB, tmp_path: Path, data_dir: Path
) -> None:
    """Through the CLI's runner with the replay backend: --limit 3 plays the first three samples."""
    by_task = {e["task"]: e["replies"] for e in FIXTURE["episodes"]}
    garbage = [
        "1. do it",
        "fine",
        "1. do it",
        "do it",
        "really",
        "now",
        "again",
        "stop",
    ]  # never an instruction
    script = tmp_path / "replay.jsonl"
    rows = [
        {"task": "miniwob", "sample_id": "choose-list-0", "replies": by_task["choose-list"]},
        {"task": "miniwob", "sample_id": "click-button-sequence-0", "replies": garbage},
        {"task": "miniwob", "sample_id": "click-button-0", "replies": by_task["click-button"]},
    ]
    script.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    args = ["run", "--tasks", "miniwob", "--limit", "3", "--backend", "replay", "--replay-file", str(script)]
    args += ["--output-dir", str(tmp_path), "--run-id", "r", "--data-dir", str(data_dir), "--no-report"]
    config = config_from_args(build_parser().parse_args(args))  # as `agentflan_eval run` builds it
    store, results = run(config)
    eps = {r.sample_id: r for r in store.episodes("miniwob")}
    solved, rci_failed, wrong = eps["choose-list-0"], eps["click-button-sequence-0"], eps["click-button-0"]
    assert solved.score.success and solved.status is EpisodeStatus.COMPLETED and len(solved.steps) == 5
    assert (
        rci_failed.status is EpisodeStatus.INVALID_ACTION
        and rci_failed.env_info["end"] == "Action RCI failed"
    )
    assert (
        not rci_failed.score.success and len(rci_failed.steps) == 8
    )  # plan x3, action, grounding, 3 corrections
    assert not wrong.score.success and wrong.env_info["raw_reward"] == -1.0
    assert results.tasks["miniwob"].score == pytest.approx(1 / 3)
    manifest = RunStore(tmp_path / "r").read_manifest()
    assert manifest.config["task_options"]["miniwob"]["miniwob_protocol"] == "agenttuning"
    assert any("random.random()" in d.what for d in manifest.deviations)
    assert not any("WebArena" in d.what for d in manifest.deviations)
