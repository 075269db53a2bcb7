"""MiniWoB++ (held-out, offline): web tasks in a real browser, the offline stand-in for WebArena.

Paper: Liu et al. 2018 (MiniWoB++), Shi et al. 2017 (World of Bits); AgentTuning evaluates 46 of
its tasks through RCI's harness (``eval_heldout/miniwob++``), 10 episodes each, success = reward > 0.
Data: the task pages shipped in the PyPI package ``miniwob``, served on 127.0.0.1 and opened in
headless Chromium. Observation and actions are WebArena's (accessibility tree with element ids,
``click [id]``, ``type [id] [text]``, ..., ``stop [answer]``) with its CoT prompt, so the same agent
code is measured as on WebArena. The task's instruction (``#query``) is left out of the tree, as
MiniWoB's own DOM observation does, and given as the OBJECTIVE. Metric: success rate, an episode
succeeding when the task's own reward (``WOB_RAW_REWARD_GLOBAL``, set by the page's
``core.endEpisode``) is > 0; the mean raw reward is reported beside it. The task set is the
CPU-sized subset below with fixed seeds; a scripted agent solves all 54 of its episodes.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentflan_eval.benchmark import Benchmark, Environment, Sample
from agentflan_eval.benchmarks.common.browser.actions import parse_reply
from agentflan_eval.benchmarks.common.browser.driver import BrowserSession, browser_unavailable
from agentflan_eval.benchmarks.common.browser.env import BrowserEnv
from agentflan_eval.records import Action, Decoding, Deviation, Overflow, PromptFormat, Score, Step

# AgentTuning's 46 tasks, less those whose state the accessibility tree does not show (colours and
# SVG shapes: click-color, click-shades, click-shape, count-shape, grid-coordinate; unnamed icon
# buttons: email-inbox*, social-media*) and those needing long action sequences (search-engine,
# click-checkboxes-large, terminal, ...), so that one episode fits in a few minutes on a CPU.
TASKS = (
    "click-test",
    "click-test-2",
    "click-button",
    "click-button-sequence",
    "click-link",
    "click-option",
    "click-checkboxes",
    "click-dialog",
    "click-dialog-2",
    "click-tab",
    "click-collapsible",
    "focus-text",
    "focus-text-2",
    "enter-text",
    "enter-text-dynamic",
    "enter-password",
    "login-user",
    "navigate-tree",
)
SEEDS = (0, 1, 2)
EPISODE_MS = 1_000_000_000  # the page's own timer (10-30 s) would expire while a CPU model thinks
_START = """({seed, ms}) => {
  Math.seedrandom(seed); core.EPISODE_MAX_TIME = ms; core.setDataMode('train'); core.startEpisodeReal();
  for (const id of ['reward-display', 'click-canvas']) {
    const el = document.getElementById(id); if (el) el.style.display = 'none';
  }
  const query = document.getElementById('query'); if (query) query.setAttribute('aria-hidden', 'true');
}"""
_STATE = (
    "() => ({done: WOB_DONE_GLOBAL, raw_reward: WOB_RAW_REWARD_GLOBAL,"
    " reason: WOB_REWARD_REASON == null ? null : String(WOB_REWARD_REASON)})"
)
_SERVER: dict[str, Any] = {}


class MiniWoBSample(Sample):
    task: str
    seed: int


def html_root() -> Path:
    spec = importlib.util.find_spec("miniwob")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "html"


def base_url() -> str:
    """The loopback server for the package's pages, started once per process."""
    if "server" not in _SERVER:
        from agentflan_eval.benchmarks.common.browser.server import StaticServer

        _SERVER["server"] = StaticServer(html_root())
    return _SERVER["server"].url


class MiniWoBEnv(BrowserEnv):
    repeats_max = None  # RCI's harness has no early stop on repeated actions

    def __init__(self, sample: MiniWoBSample):
        super().__init__()
        self.sample = sample
        self.task_page: Any = None
        self.final: dict[str, Any] = {}

    def open_session(self) -> BrowserSession:
        return BrowserSession(viewport_only=True, allowed_origins=[base_url()])  # the task's own server

    def start(self, session: BrowserSession) -> str:
        page = self.task_page = session.page
        page.goto(f"{base_url()}miniwob/{self.sample.task}.html")
        page.wait_for_selector("#sync-task-cover")
        page.evaluate(_START, {"seed": self.sample.seed, "ms": EPISODE_MS})
        page.wait_for_function("() => WOB_TASK_READY === true")
        utterance = page.evaluate("() => core.getUtterance()")
        return utterance["utterance"] if isinstance(utterance, dict) else str(utterance)

    def _state(self) -> dict[str, Any]:
        from playwright.sync_api import Error

        if self.task_page is None or self.task_page.is_closed():
            return self.final
        try:
            self.final = self.task_page.evaluate(_STATE)
        except Error:  # the agent navigated the task tab away: the episode is not done
            pass
        return self.final

    def page_done(self) -> bool:
        return bool(self._state().get("done"))

    def info(self) -> dict[str, Any]:
        state = self._state()
        return {
            **super().info(),
            "task": self.sample.task,
            "seed": self.sample.seed,
            "done": bool(state.get("done")),
            "raw_reward": float(state.get("raw_reward") or 0.0),
            "reason": state.get("reason"),
        }


class MiniWoB(Benchmark):
    name = "miniwob"
    suite = "held-out"
    metric = "success rate"
    scale = 1.0
    max_turns = 10
    n_standard = len(TASKS) * len(SEEDS)
    decoding = Decoding(source="AgentTuning eval_heldout/miniwob++ llm_agent.py: do_sample false")
    overflow = Overflow.TRUNCATE_LEFT
    overflow_note = "prompt cut from the left to the context minus the reply budget (TGI truncate)"
    prompt_format = PromptFormat.CHAT
    stop = ("\nOBSERVATION",)
    paper = "Liu et al. 2018 (MiniWoB++); protocol: AgentTuning (Zeng et al. 2023) via RCI; WebArena's agent"

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("miniwob") is None:
            return "needs the MiniWoB++ pages: pip install 'agentflan-eval[heldout]' (package miniwob)"
        return browser_unavailable()

    def deviations(self) -> list[Deviation]:
        return [
            Deviation(
                task=self.name,
                what="MiniWoB++ instead of hosted WebArena",
                why="WebArena needs its self-hosted websites; MiniWoB++ runs offline in the same browser, "
                "observation and action space. Not comparable to the paper's WebArena column",
            ),
            Deviation(
                task=self.name,
                what=f"{len(TASKS)} of AgentTuning's 46 MiniWoB++ tasks x seeds {list(SEEDS)} "
                "instead of 46 tasks x 10 random seeds",
                why="tasks whose state the accessibility tree hides (colours, shapes, icons) or that need "
                "long action sequences are left out, to fit CPU runs; seeds are fixed for repeatability",
            ),
            Deviation(
                task=self.name,
                what="WebArena's accessibility-tree observation, id-based actions and CoT prompt "
                "instead of RCI's HTML prompt with plan/critique loops; task timer disabled, raw reward",
                why="one agent interface for both web task sets; a CPU model is slower than the pages' 10-30 s "
                "timers",
            ),
        ]

    def load_samples(self) -> list[Sample]:
        """Seed-major, so that --limit len(TASKS) runs every task once."""
        return [MiniWoBSample(id=f"{t}-{s}", subset=t, task=t, seed=s) for s in SEEDS for t in TASKS]

    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, MiniWoBSample)
        return MiniWoBEnv(sample)

    def parse_action(self, reply: str) -> Action:
        return parse_reply(reply)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        reward = float(env_info.get("raw_reward") or 0.0)
        ok = bool(env_info.get("done")) and reward > 0
        return Score(
            value=1.0 if ok else 0.0,
            success=ok,
            details={
                "raw_reward": reward,
                "done": bool(env_info.get("done")),
                "reason": env_info.get("reason"),
            },
        )

    def task_score(self, scores: Sequence[tuple[str | None, Score]]) -> tuple[float | None, dict[str, float]]:
        if not scores:
            return None, {}
        rewards = [float(s.details.get("raw_reward", 0.0)) for _, s in scores]
        return sum(s.value for _, s in scores) / len(scores), {"mean_raw_reward": sum(rewards) / len(rewards)}
