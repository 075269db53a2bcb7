"""The episode loop shared by MiniWoB++ and WebArena: observe, act, stop, as WebArena's ``run.py``.

An invalid reply executes nothing and the agent sees the same page with PREVIOUS ACTION ``None``;
three invalid replies in a row, or the same action three times in a row, end the episode early
(WebArena's ``parsing_failure_th`` and ``repeating_action_failure_th``). ``stop [answer]`` ends it.
Subclasses say how a task opens, when the page itself ends it, and what the scorer needs.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from agentflan_eval.benchmark import Environment, Observation
from agentflan_eval.benchmarks.common.browser import prompt
from agentflan_eval.benchmarks.common.browser.actions import BrowserAction, parse_browser_action
from agentflan_eval.benchmarks.common.browser.driver import BrowserSession
from agentflan_eval.records import Action, EpisodeStatus, Message

PARSE_FAILURES_MAX = 3
REPEATS_MAX = 3


class BrowserEnv(Environment):
    homepage = False  # WebArena's prompt points at its homepage site
    repeats_max: int | None = REPEATS_MAX  # None: no early stop on repeated actions

    def __init__(self) -> None:
        self.session: BrowserSession | None = None
        self.objective = ""
        self.answer: str | None = None
        self.early_stop: str | None = None
        self._failures = 0
        self._recent: list[BrowserAction] = []

    # -- what a task set provides --------------------------------------------------------------
    @abstractmethod
    def open_session(self) -> BrowserSession: ...

    @abstractmethod
    def start(self, session: BrowserSession) -> str:
        """Load the task's first page; returns the objective."""

    def page_done(self) -> bool:
        """Whether the page itself ended the episode (MiniWoB++'s done flag)."""
        return False

    def display_url(self, url: str) -> str:
        return url

    def real_url(self, url: str) -> str:
        return url

    # -- the loop ------------------------------------------------------------------------------
    def reset(self) -> list[Message]:
        self.session = self.open_session()
        self.objective = self.start(self.session)
        return prompt.opening(self._turn("None"), self.homepage)

    def step(self, action: Action) -> Observation:
        assert self.session is not None
        if not action.valid:
            self._failures += 1
            if self._failures >= PARSE_FAILURES_MAX:
                self.early_stop = f"failed to parse actions for {PARSE_FAILURES_MAX} times"
                return Observation(done=True, status=EpisodeStatus.INVALID_ACTION)
            return Observation(text=self._turn("None"))
        self._failures = 0
        act = parse_browser_action(action.argument)
        if act.type == "stop":
            self.answer = act.answer
            return Observation(done=True)
        if act.type == "goto":
            act = act.model_copy(update={"url": self.real_url(act.url)})
        described = self._describe(act)
        failure = self.session.execute(act)
        if self.page_done():
            return Observation(done=True)
        if self._repeating(act):
            self.early_stop = f"same action for {self.repeats_max} times"
            return Observation(done=True)
        if failure and "no matching element" in failure:
            return Observation(text=self._turn(failure))
        return Observation(text=self._turn(described + (f" ({failure})" if failure else "")))

    def _repeating(self, act: BrowserAction) -> bool:
        """WebArena's equivalence: the same element for click/hover/type, the same action otherwise."""
        if self.repeats_max is None:
            return False
        self._recent = [*self._recent[-(self.repeats_max - 1) :], act]
        key = [(a.type, a.element_id) if a.element_id else a for a in self._recent]
        return len(key) == self.repeats_max and all(k == key[-1] for k in key)

    def _describe(self, act: BrowserAction) -> str:
        view = self.session.view if self.session else None
        node = view.nodes.get(act.element_id) if view and act.element_id else None
        if act.type == "goto":
            act = act.model_copy(update={"url": self.display_url(act.url)})
        return act.describe(node.text if node else "")

    def _turn(self, previous_action: str) -> str:
        assert self.session is not None
        view = self.session.observe()
        return prompt.turn(view.text, self.display_url(view.url), self.objective, previous_action)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "objective": self.objective,
            "answer": self.answer,
            "early_stop": self.early_stop,
        }
        if self.session is not None and not self.session.closed:
            out["final_url"] = self.session.page.url
        return out

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
