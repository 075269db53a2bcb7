"""MiniWoB++ under the ``webarena-style`` protocol (WebArena's agent on the PyPI pages) in the real browser:
scripted solutions succeed, wrong and malformed ones fail, scoring reads the page's own reward, and no
browser outlives the module. The default AgentTuning protocol: test_miniwob_agenttuning.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_browser import assert_no_browser_left

from agentflan_eval.benchmarks.common.browser.actions import ANSWER_PHRASE
from agentflan_eval.benchmarks.common.browser.driver import hold
from agentflan_eval.benchmarks.miniwob import webarena_style
from agentflan_eval.benchmarks.miniwob.benchmark import MiniWoB, MiniWoBSample
from agentflan_eval.benchmarks.miniwob.webarena_style import SEEDS, TASKS
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import EpisodeStatus
from agentflan_eval.runner import run
from agentflan_eval.store import RunStore

OPTIONS = {"miniwob": {"miniwob_protocol": "webarena-style"}}

# -- a scripted solver that reads the observation like an agent would (not a model) ------------
_NODE = re.compile(r"\[(\d+)\] (\w+) (?:'([^']*)'|\"([^\"]*)\")(.*)")
_ORDINAL = {"1st": 0, "2nd": 1, "3rd": 2, "4th": 3, "5th": 4}


def nodes(obs: str) -> list[tuple[str, str, str, str]]:
    """(id, role, name, properties) for every line of the observation's tree."""
    out = []
    for line in obs.splitlines():
        m = _NODE.search(line)
        if m:
            out.append(
                (m.group(1), m.group(2), m.group(3) if m.group(3) is not None else m.group(4), m.group(5))
            )
    return out


def first(obs: str, role: str | None = None, name: str | None = None, n: int = 0) -> str:
    hits = [i for i, r, nm, _ in nodes(obs) if (role is None or r == role) and (name is None or nm == name)]
    return hits[n]


def _quoted(objective: str) -> list[str]:
    return re.findall(r'"([^"]+)"', objective)


def solve(task: str, objective: str, obs: str, previous: str) -> str:
    """The next action string for ``task`` given the current turn (observation and previous action)."""
    q = _quoted(objective)
    fresh = previous == "None"
    if task == "click-test":
        return f"click [{first(obs, 'button', 'Click Me!')}]"
    if task in ("click-test-2", "click-button"):
        name = q[0] if q else re.search(r"button (\S+?)\.", objective).group(1)
        return f"click [{first(obs, 'button', name)}]"
    if task == "click-button-sequence":
        a, b = re.findall(r"button (\w+)", objective)
        return f"click [{first(obs, 'button', a if fresh else b)}]"
    if task in ("click-link", "navigate-tree"):
        return f"click [{first(obs, None, q[0])}]"
    if task in ("click-option", "click-checkboxes"):
        wanted = re.search(r"Select (.*) and click Submit", objective).group(1)
        names = [] if wanted == "nothing" else [w.strip() for w in wanted.split(",")]
        for i, role, name, props in nodes(obs):
            if role in ("radio", "checkbox") and name in names and "checked: false" in props:
                return f"click [{i}]"
        return f"click [{first(obs, 'button', 'Submit')}]"
    if task == "click-dialog":
        return f"click [{first(obs, 'button', 'Close')}]"
    if task == "click-dialog-2":
        return f"click [{first(obs, 'button', 'Close' if q[0] == 'x' else q[0])}]"
    if task == "click-tab":
        tab = re.search(r"Click on (.+)\.", objective).group(1)
        return f"click [{first(obs, 'link', tab)}]"
    if task == "click-collapsible":
        return f"click [{first(obs, 'tab')}]" if fresh else f"click [{first(obs, 'button', 'Submit')}]"
    if task in ("focus-text", "focus-text-2"):
        m = re.search(r"(\d\w\w) input", objective)
        return f"click [{first(obs, 'textbox', n=_ORDINAL[m.group(1)] if m else 0)}]"
    if task in ("enter-text", "enter-text-dynamic"):
        return (
            f"type [{first(obs, 'textbox')}] [{q[0]}] [0]"
            if fresh
            else f"click [{first(obs, 'button', 'Submit')}]"
        )
    if task in ("enter-password", "login-user"):
        values = [q[0], q[0]] if task == "enter-password" else q[:2]
        boxes = [i for i, r, _, _ in nodes(obs) if r == "textbox"]
        done = (
            0
            if fresh
            else next((k + 1 for k, b in enumerate(boxes) if previous.startswith(f"type [{b}]")), 2)
        )
        if done < 2:
            return f"type [{boxes[done]}] [{values[done]}] [0]"
        return f"click [{first(obs, 'button', 'Submit' if task == 'enter-password' else 'Login')}]"
    raise KeyError(task)


def reply(action: str) -> str:
    return f"Let's think step-by-step. {ANSWER_PHRASE} ```{action}```"


@pytest.fixture(scope="module")
def bench() -> MiniWoB:
    b = MiniWoB(RunConfig(backend="replay", task_options=OPTIONS), DataResolver())
    assert b.unavailable() is None
    with hold():
        yield b
    assert_no_browser_left()


def _split(turn: str) -> tuple[str, str]:
    obs = re.search(r"OBSERVATION:\n(.*)\nURL:", turn, re.DOTALL).group(1)
    return obs, turn.rsplit("PREVIOUS ACTION: ", 1)[1]


def test_task_set_is_documented(bench: MiniWoB) -> None:
    samples = bench.load_samples()
    assert len(samples) == bench.n_standard == len(TASKS) * len(SEEDS)
    assert [s.id for s in samples[:3]] == ["click-test-0", "click-test-2-0", "click-button-0"]
    assert {s.subset for s in samples[: len(TASKS)]} == set(TASKS)  # --limit len(TASKS): every task once
    assert any(d.what.startswith("protocol webarena-style") for d in bench.deviations())


@pytest.mark.parametrize("task", TASKS)
def test_scripted_policy_solves_every_task(bench: MiniWoB, task: str) -> None:
    """Every task of the subset is solvable through the accessibility tree and WebArena's actions."""
    sample = MiniWoBSample(id=f"{task}-0", subset=task, task=task, seed=0)
    env = bench.make_env(sample)
    try:
        turn = env.reset()[-1].content
        for _ in range(6):
            obs, previous = _split(turn)
            out = env.step(bench.parse_action(reply(solve(task, env.objective, obs, previous))))
            if out.done:
                break
            turn = out.text
        info = env.info()
    finally:
        env.close()
    score = bench.score(sample, [], info)
    assert info["done"] and score.success and score.value == 1.0, info


def test_replay_run_success_failure_and_malformed(bench: MiniWoB, tmp_path: Path, data_dir: Path) -> None:
    """Through the CLI's runner: a correct click succeeds, a wrong one fails, garbage is INVALID_ACTION."""
    env = bench.make_env(bench.load_samples()[1])  # click-test-2: "Click button ONE."
    try:
        obs, _ = _split(env.reset()[-1].content)
        wrong = next(n for n in ("ONE", "TWO") if n not in env.objective)
        right_id, wrong_id = (
            first(obs, "button", "ONE" if wrong == "TWO" else "TWO"),
            first(obs, "button", wrong),
        )
    finally:
        env.close()
    env = bench.make_env(bench.load_samples()[0])  # click-test
    try:
        ok_id = first(_split(env.reset()[-1].content)[0], "button", "Click Me!")
    finally:
        env.close()
    script = tmp_path / "replay.jsonl"
    script.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"task": "miniwob", "sample_id": "click-test-0", "replies": [reply(f"click [{ok_id}]")]},
                {"task": "miniwob", "sample_id": "click-test-2-0", "replies": [reply(f"click [{wrong_id}]")]},
                {
                    "task": "miniwob",
                    "sample_id": "click-button-0",
                    "replies": ["I click it.", "```", "click [4]"],
                },
            ]
        ),
        encoding="utf-8",
    )
    assert right_id != wrong_id
    config = RunConfig(
        tasks=["miniwob"],
        limit=3,
        backend="replay",
        replay_file=script,
        output_dir=tmp_path,
        run_id="r",
        data_dir=data_dir,
        report=False,
        task_options=OPTIONS,
    )
    store, results = run(config)
    eps = {r.sample_id: r for r in store.episodes("miniwob")}
    assert eps["click-test-0"].score.success and eps["click-test-0"].env_info["raw_reward"] == 1.0
    assert not eps["click-test-2-0"].score.success and eps["click-test-2-0"].env_info["raw_reward"] == -1.0
    bad = eps["click-button-0"]
    assert bad.status == EpisodeStatus.INVALID_ACTION and bad.invalid_actions == 3 and bad.score.value == 0.0
    assert "PREVIOUS ACTION: None" in bad.steps[0].observation  # the env answered, nothing crashed
    assert results.tasks["miniwob"].score == pytest.approx(1 / 3)
    assert results.tasks["miniwob"].extra["mean_raw_reward"] == pytest.approx(0.0)
    manifest = RunStore(tmp_path / "r").read_manifest()
    assert any(d.what.startswith("protocol webarena-style") for d in manifest.deviations)
    rescored = bench.score(bench.load_samples()[0], eps["click-test-0"].steps, eps["click-test-0"].env_info)
    assert rescored == eps["click-test-0"].score


def test_missing_element_and_stop_before_done(bench: MiniWoB) -> None:
    sample = MiniWoBSample(id="click-test-0", subset="click-test", task="click-test", seed=0)
    env = bench.make_env(sample)
    try:
        env.reset()
        out = env.step(bench.parse_action(reply("click [987654]")))
        assert not out.done and "no matching element found" in out.text
        out = env.step(bench.parse_action(reply("stop [done]")))
        assert out.done
        info = env.info()
    finally:
        env.close()
    assert info["answer"] == "done" and not info["done"]
    assert bench.score(sample, [], info).value == 0.0


@pytest.mark.slow
def test_embedded_model_plays_one_episode(
    bench: MiniWoB, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded model, end to end through the CLI's runner; one short turn keeps it cheap on a CPU."""
    monkeypatch.setattr(webarena_style, "MAX_TURNS", 1)
    config = RunConfig(
        tasks=["miniwob"],
        limit=1,
        max_new_tokens=32,
        data_dir=data_dir,
        output_dir=tmp_path,
        report=False,
        task_options=OPTIONS,
    )
    store, results = run(config)
    (rec,) = store.episodes("miniwob")
    assert rec.steps and rec.completion_tokens > 0 and rec.prompt_tokens > 1000  # the two-shot CoT prompt
    assert (
        rec.prompt[0].role == "system"
        and "In summary, the next action I will perform is" in rec.prompt[0].content
    )
    assert rec.status in (EpisodeStatus.COMPLETED, EpisodeStatus.TURN_LIMIT, EpisodeStatus.CONTEXT_LIMIT)
    assert len(rec.steps) == 1 and rec.steps[0].completion_tokens > 0
    assert rec.env_info["task"] == "click-test" and results.tasks["miniwob"].n == 1
    assert rec.score.value in (0.0, 1.0)
