"""MiniWoB++ through WebArena's agent (protocol ``webarena-style``): never the AgentTuning protocol, never WebArena.

Observation and actions are WebArena's (accessibility tree with element ids, ``click [id]``,
``type [id] [text]``, ..., ``stop [answer]``) with its CoT prompt, so the same agent code is measured as
on WebArena. The task's instruction (``#query``) is left out of the tree, as MiniWoB's own DOM observation
does, and given as the OBJECTIVE. The pages are the PyPI package ``miniwob``'s; the task set is the
CPU-sized subset below with fixed seeds; a scripted agent solves all 54 of its episodes.
"""

from __future__ import annotations

from typing import Any

from agentflan_eval.benchmarks.common.browser.driver import BrowserSession
from agentflan_eval.benchmarks.common.browser.env import BrowserEnv
from agentflan_eval.benchmarks.miniwob import pages
from agentflan_eval.records import Deviation

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
MAX_TURNS = 10
_HIDE = """() => {
  for (const id of ['reward-display', 'click-canvas']) {
    const el = document.getElementById(id); if (el) el.style.display = 'none';
  }
  const query = document.getElementById('query'); if (query) query.setAttribute('aria-hidden', 'true');
}"""


def deviations(task: str) -> list[Deviation]:
    return [
        Deviation(
            task=task,
            what="protocol webarena-style: WebArena's accessibility-tree observation, id-based actions and CoT "
            "prompt instead of AgentTuning's RCI protocol (HTML, plan/critique/improve, xpath instructions)",
            why="one agent interface for both web task sets; not comparable to AgentTuning's MiniWoB++ column, "
            "and not WebArena",
        ),
        Deviation(
            task=task,
            what=f"{len(TASKS)} of AgentTuning's 46 MiniWoB++ tasks x seeds {list(SEEDS)}, PyPI miniwob pages, "
            "task timer disabled, raw reward",
            why="tasks whose state the accessibility tree hides (colours, shapes, icons) or that need long "
            "action sequences are left out, to fit CPU runs; seeds are fixed for repeatability",
        ),
    ]


class WebArenaStyleEnv(BrowserEnv):
    repeats_max = None  # RCI's harness has no early stop on repeated actions

    def __init__(self, task: str, seed: int):
        super().__init__()
        self.task, self.seed = task, seed
        self.task_page: Any = None
        self.final: dict[str, Any] = {}

    def open_session(self) -> BrowserSession:
        return BrowserSession(viewport_only=True, allowed_origins=[pages.base_url(pages.pypi_root())])

    def start(self, session: BrowserSession) -> str:
        self.task_page = session.page
        utterance = pages.open_task(session.page, pages.base_url(pages.pypi_root()), self.task, self.seed)
        session.page.evaluate(_HIDE)
        return utterance

    def _state(self) -> dict[str, Any]:
        from playwright.sync_api import Error

        if self.task_page is None or self.task_page.is_closed():
            return self.final
        try:
            self.final = pages.metadata(self.task_page)
        except Error:  # the agent navigated the task tab away: the episode is not done
            pass
        return self.final

    def page_done(self) -> bool:
        return bool(self._state().get("done"))

    def info(self) -> dict[str, Any]:
        state = self._state()
        return {
            **super().info(),
            "task": self.task,
            "seed": self.seed,
            "done": bool(state.get("done")),
            "raw_reward": float(state.get("raw_reward") or 0.0),
            "reason": state.get("reason"),
        }
