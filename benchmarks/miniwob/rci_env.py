"""One MiniWoB++ episode under AgentTuning's RCI loop (``main.py`` ``miniwob`` with ``--erci 1 --irci 3
--sgrounding``), one model request per harness turn.

Followed: THUDM/AgentTuning @ e33a45d7, ``eval_heldout/miniwob++/main.py`` l.132-190 and ``llm_agent.py``.
Every request is a fresh chat (the opening turns, then ``NEW_TASK`` + the growing completion-style text
``pt``), so each observation restarts the chat. An episode:

1. plan: ask for a plan, then critique it and ask again (``rci_plan``, once); the last plan counts.
2. ``plan_steps(plan)`` times: ask for the next instruction; with the task's ``update_action`` prompt,
   ask once more to ground it in the page; while it matches none of the instruction regexes, ask for a
   corrected one (at most 3 times, then the episode fails with reward 0); act; stop once the page's reward
   is non-zero or the page says done.
Success is a final reward > 0 (``main.py`` l.181). The observation is the HTML of ``#wrap`` (after
``core.getDOMInfo()`` has stamped its ``data-wob_ref``s), plus the body's other children for the tasks
in ``EXTRA_HTML_TASKS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from agentflan_eval.benchmark import Environment, Observation
from agentflan_eval.benchmarks.miniwob import pages
from agentflan_eval.benchmarks.miniwob import rci_prompt as rp
from agentflan_eval.benchmarks.miniwob.rci_actions import ActionFailed, InvalidInstruction, convert, perform
from agentflan_eval.records import Action, EpisodeStatus, Message

RCI_PLAN_LOOPS = 1  # --erci 1 (eval-tgi.sh)
RCI_LIMIT = 3  # --irci 3
STATE_GROUNDING = True  # --sgrounding
EXTRA_HTML_TASKS = ("click-dialog", "click-dialog-2", "use-autocomplete", "choose-date")  # main.py l.194-199
_HTML_JS = """() => {
  core.getDOMInfo();
  let extra = '';
  for (const c of document.body.children) {
    if (!['reward-display', 'click-canvas', 'sync-task-cover', 'wrap'].includes(c.getAttribute('id'))) {
      extra += c.outerHTML;
    }
  }
  return {body: document.getElementById('wrap').outerHTML, extra};
}"""
Phase = Literal["plan", "critique", "improve", "action", "ground", "rci"]


class RciEnv(Environment):
    def __init__(
        self, task: str, seed: int, prompts: rp.TaskPrompts, opening: list[Message], html_root: Path
    ):
        self.task, self.seed, self.prompts, self.opening = task, seed, prompts, opening
        self.url = pages.base_url(html_root)
        self.session: Any = None
        self.goal = self.html = self.pt = self.plan = ""
        self.phase: Phase = "plan"
        self.instructions: list[str] = []
        self.outcomes: list[str] = []
        self.steps_allowed = 0
        self.rci_loops = 0
        self.reward = 0.0
        self.meta: dict[str, Any] = {}
        self.end: str | None = None

    # -- the loop ------------------------------------------------------------------------------
    def reset(self) -> list[Message]:
        from agentflan_eval.benchmarks.common.browser.driver import BrowserSession

        self.session = BrowserSession(viewport_only=True, allowed_origins=[self.url])
        self.goal = pages.open_task(self.session.page, self.url, self.task, self.seed, episode=self.seed)
        self.html = self._html()
        if self.prompts.initialize_plan:
            self.pt = rp.plan_prompt(self.prompts, self.html, self.goal)
        else:  # no planning: one action (``get_plan_step`` of an empty plan)
            self.steps_allowed = rp.plan_steps("")
            self.pt = self._action_prompt()
            self.phase = "action"
        return [*self.opening, rp.request(self.pt)]

    def step(self, action: Action) -> Observation:
        msg = action.argument
        if not msg:  # upstream re-asks forever with the same greedy prompt
            return self._finish("empty reply", EpisodeStatus.INVALID_ACTION)
        match self.phase:
            case "plan":
                self.pt += "\n" + msg + rp.CRITIQUE
                return self._ask("critique")
            case "critique":
                self.pt += msg + rp.IMPROVE
                return self._ask("improve")
            case "improve":
                self.pt += msg
                self.plan = msg
                self.steps_allowed = rp.plan_steps(msg)
                return self._next_action()
            case "action":
                self.pt += rp.process_instruction(msg) + "`."
                if self.prompts.update_action and STATE_GROUNDING:
                    self.pt += self.prompts.update_action
                    return self._ask("ground")
                return self._check(msg)
            case "ground":
                self.pt += msg
                return self._check(msg)
            case "rci":
                self.pt += msg
                self.rci_loops += 1
                return self._check(msg)
        raise AssertionError(self.phase)

    def _ask(self, phase: Phase) -> Observation:
        self.phase = phase
        return Observation(text=rp.request(self.pt).content, restart=True)

    def _check(self, reply: str) -> Observation:
        """``rci_action``: a valid instruction is acted on; else ask again, at most ``RCI_LIMIT`` times."""
        instruction = rp.process_instruction(reply)
        if rp.matches_grammar(instruction):
            return self._act(instruction)
        if self.rci_loops >= RCI_LIMIT:
            return self._finish("Action RCI failed", EpisodeStatus.INVALID_ACTION)
        self.pt += self.prompts.rci_action
        return self._ask("rci")

    def _act(self, instruction: str) -> Observation:
        self.instructions.append(instruction)
        try:
            self.outcomes.append(perform(self.session.page, convert(instruction)))
        except InvalidInstruction as e:
            return self._finish(f"invalid instruction: {e}", EpisodeStatus.INVALID_ACTION)
        except ActionFailed as e:
            self.reward = -1.0
            return self._finish(f"action failed: {e}", EpisodeStatus.INVALID_ACTION)
        self.meta = pages.metadata(self.session.page)
        self.reward = float(self.meta.get("env_reward") or 0.0)
        if self.reward != 0 or self.meta.get("done"):
            return self._finish("page done", EpisodeStatus.COMPLETED)
        if len(self.instructions) >= self.steps_allowed:
            return self._finish("plan steps used", EpisodeStatus.TURN_LIMIT)
        self.html = self._html()
        return self._next_action()

    def _next_action(self) -> Observation:
        self.rci_loops = 0
        self.pt = self._action_prompt()
        return self._ask("action")

    def _action_prompt(self) -> str:
        return rp.action_prompt(self.prompts, self.html, self.goal, self.plan, self.instructions)

    def _finish(self, why: str, status: EpisodeStatus) -> Observation:
        self.end = why
        return Observation(done=True, status=status)

    def _html(self) -> str:
        pages.images_loaded(self.session.page)
        got = self.session.page.evaluate(_HTML_JS)
        return str(got["body"]) + (str(got["extra"]) if self.task in EXTRA_HTML_TASKS else "")

    # -- the record ----------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "seed": self.seed,
            "goal": self.goal,
            "plan": self.plan,
            "plan_steps": self.steps_allowed,
            "instructions": self.instructions,
            "outcomes": self.outcomes,
            "end": self.end,
            "reward": self.reward,
            "done": bool(self.meta.get("done")),
            "raw_reward": float(self.meta.get("raw_reward") or 0.0),
            "reason": self.meta.get("reason"),
        }

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
