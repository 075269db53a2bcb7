"""MiniWoB++ (held-out, offline): web tasks in a real browser, by default as AgentTuning ran them.

Paper: Liu et al. 2018 (MiniWoB++), Shi et al. 2017 (World of Bits); AgentTuning's held-out MiniWoB++ column.
Protocol ``agenttuning`` (default): THUDM/AgentTuning @ e33a45d7 ``eval_heldout/miniwob++`` (RCI's harness,
run by ``eval-tgi.sh``: ``--num-episodes 10 --erci 1 --irci 3 --sgrounding``): its 46 tasks
(``available_tasks.txt``), its task pages, prompts and few-shot chat, the HTML observation, xpath
instructions with RCI's plan/critique/improve and instruction-correction loops (``rci_env``), greedy
replies of up to 512 tokens, success = final reward > 0, the score the share of successful episodes.
Data: ``agenttuning/miniwob++/{prompt,html}/`` in the data dir (the original's files, byte for byte); without
``html/`` the PyPI ``miniwob`` pages serve instead, a recorded deviation (several tasks differ).
Protocol ``webarena-style``: the earlier offline stand-in, WebArena's agent on a subset of the PyPI pages
(``webarena_style``); comparable neither to AgentTuning's MiniWoB++ nor to WebArena.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from agentflan_eval.benchmark import Benchmark, Environment, Sample, TaskOptions
from agentflan_eval.benchmarks.common.browser.actions import parse_reply
from agentflan_eval.benchmarks.common.browser.driver import browser_unavailable
from agentflan_eval.benchmarks.miniwob import pages, rci_prompt, webarena_style
from agentflan_eval.benchmarks.miniwob.rci_env import RciEnv
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataFile, DataResolver, lock
from agentflan_eval.errors import DataMissingError
from agentflan_eval.records import Action, Decoding, Deviation, Message, Overflow, PromptFormat, Score, Step

_SRC = "THUDM/AgentTuning@e33a45d7 eval_heldout/miniwob++/"
FEW_SHOT = DataFile("agenttuning/miniwob++/prompt/few-shot.json", _SRC + "prompt/few-shot.json")
PROMPT_DIR = DataFile("agenttuning/miniwob++/prompt", _SRC + "prompt/")
HTML_DIR = DataFile(
    "agenttuning/miniwob++/html", _SRC + "computergym/computergym/miniwob/miniwob_interface/html/"
)
# available_tasks.txt, in its order (eval-tgi.sh runs each)
TASKS = (
    "choose-list",
    "click-button-sequence",
    "click-button",
    "click-checkboxes-large",
    "click-checkboxes-soft",
    "click-checkboxes-transfer",
    "click-checkboxes",
    "click-collapsible-2",
    "click-collapsible",
    "click-color",
    "click-dialog-2",
    "click-dialog",
    "click-link",
    "click-menu",
    "click-option",
    "click-scroll-list",
    "click-shades",
    "click-shape",
    "click-tab-2-hard",
    "click-tab-2",
    "click-tab",
    "click-test-2",
    "click-test",
    "click-widget",
    "count-shape",
    "email-inbox-forward-nl-turk",
    "email-inbox-forward-nl",
    "email-inbox-nl-turk",
    "email-inbox",
    "enter-date",
    "enter-password",
    "enter-text-dynamic",
    "enter-text",
    "enter-time",
    "focus-text-2",
    "focus-text",
    "grid-coordinate",
    "login-user",
    "navigate-tree",
    "search-engine",
    "simple-algebra",
    "social-media-all",
    "social-media-some",
    "social-media",
    "terminal",
    "use-spinner",
)
EPISODES = 10  # --num-episodes 10; upstream seeds each with random.random(), here seeds 0..9
Protocol = Literal["agenttuning", "webarena-style"]


class MiniWoBOptions(TaskOptions):
    miniwob_protocol: Protocol = Field(
        default="agenttuning",
        description="agenttuning: AgentTuning's RCI protocol on its 46 tasks (comparable to its MiniWoB++ "
        "column); webarena-style: WebArena's agent on an 18-task subset (an offline stand-in, not WebArena)",
    )


class MiniWoBSample(Sample):
    task: str
    seed: int


class MiniWoB(Benchmark):
    name = "miniwob"
    suite = "held-out"
    metric = "success rate"
    scale = 1.0
    max_turns = 1000  # the protocol bounds an episode itself: plan steps x (1-5 requests each)
    n_standard = len(TASKS) * EPISODES
    max_new_tokens = 512  # llm_agent.py l.423
    decoding = Decoding(source="AgentTuning eval_heldout/miniwob++ llm_agent.py l.419-427: do_sample false")
    overflow = Overflow.TRUNCATE_LEFT
    overflow_note = "prompt cut from the left to the context minus the reply budget (TGI truncate 4000)"
    prompt_format = PromptFormat.CHAT
    history = (
        "each request a fresh chat: the opening, the few-shot, then the page, plan and steps so far (RCI)"
    )
    data_files = (FEW_SHOT,)  # and the rest of AgentTuning's files: all_data_files
    paper = "Liu et al. 2018 (MiniWoB++); protocol: AgentTuning (Zeng et al. 2023) via RCI (Kim et al. 2023)"
    Options = MiniWoBOptions
    options: MiniWoBOptions

    def __init__(self, config: RunConfig, data: DataResolver):
        super().__init__(config, data)
        # The class says what the default protocol needs; the other one keeps its earlier settings. (The run
        # reads these from the instance; vars() because they are class-level settings everywhere else.)
        if self.options.miniwob_protocol == "webarena-style":
            vars(self).update(
                max_turns=webarena_style.MAX_TURNS,
                max_new_tokens=None,
                stop=("\nOBSERVATION",),
                n_standard=len(webarena_style.TASKS) * len(webarena_style.SEEDS),
                data_files=(),
            )

    def all_data_files(self) -> tuple[DataFile, ...]:
        """AgentTuning's prompt files and task pages, each pinned in the data lock (fetched on first use)."""
        if self.options.miniwob_protocol == "webarena-style":
            return ()
        return self._pinned(PROMPT_DIR) + self._pinned(HTML_DIR)

    @staticmethod
    def _pinned(folder: DataFile) -> tuple[DataFile, ...]:
        return tuple(DataFile(p, url) for p, (url, _pin) in lock().items() if p.startswith(folder.path + "/"))

    def unavailable(self) -> str | None:
        if self.options.miniwob_protocol == "agenttuning":
            try:  # the prompts are required; without the pages, PyPI's stand in (a recorded deviation)
                for f in self.data.missing((*self.data_files, *self._pinned(PROMPT_DIR))):
                    self.data.fetch(f)
                for f in self.data.missing(self._pinned(HTML_DIR)):
                    self.data.fetch(f)
            except DataMissingError as e:
                if self.data.missing((*self.data_files, *self._pinned(PROMPT_DIR))):
                    return str(e)
        if self.html_root() is None:
            return "needs the MiniWoB++ pages: pip install 'agentflan-eval[heldout]' (package miniwob)"
        return browser_unavailable()

    def html_root(self) -> Path | None:
        """AgentTuning's own pages when the data dir has them (agenttuning protocol), else PyPI ``miniwob``'s."""
        if self.options.miniwob_protocol == "agenttuning":
            found = self.data.find(HTML_DIR)
            if found is not None:
                return Path(found)
        return pages.pypi_root() if importlib.util.find_spec("miniwob") is not None else None

    def deviations(self) -> list[Deviation]:
        if self.options.miniwob_protocol == "webarena-style":
            return webarena_style.deviations(self.name)
        return [*self._page_deviations(), *self._protocol_deviations()]

    def _page_deviations(self) -> list[Deviation]:
        if self.data.find(HTML_DIR) is not None:
            return []
        return [
            Deviation(
                task=self.name,
                what=f"PyPI miniwob pages instead of AgentTuning's copy ({HTML_DIR.path} not in the data dir)",
                why="they differ in generation or scoring for choose-list, click-checkboxes*, email-inbox*, "
                "simple-algebra, social-media*, terminal and use-spinner (and in jQuery UI element ids): "
                "not comparable on those tasks",
            )
        ]

    def _protocol_deviations(self) -> list[Deviation]:
        return [
            Deviation(
                task=self.name,
                what=f"seeds 0-{EPISODES - 1} for each task's {EPISODES} episodes instead of random.random()",
                why="upstream's seeds are unrecorded draws; fixed seeds make runs repeatable",
            ),
            Deviation(
                task=self.name,
                what="the pages' episode timers stopped (upstream: 200-1500 s per task, reward scaled by time)",
                why="a CPU model is far slower than AgentTuning's TGI server; success (reward > 0) is unchanged "
                "unless upstream's timer ran out",
            ),
            Deviation(
                task=self.name,
                what="the llama-2 chat template strips each turn (as AgentBench.old's client did); FastChat 0.2.31, "
                "which this runner called with the turns as they were, does not: the first few-shot turn loses its "
                "leading newline and the critique/re-plan requests their trailing two",
                why="one llama-2 template for every task (model_zoo/chat_templates.py); tests pin the difference",
            ),
            Deviation(
                task=self.name,
                what="Playwright and Debian Chromium instead of Selenium and Chrome; an empty reply ends the "
                "episode (upstream asks again forever with the same greedy prompt)",
                why="the harness's one browser driver; a retry of a greedy request returns the same reply",
            ),
        ]

    @cached_property
    def _opening(self) -> list[Message]:
        return rci_prompt.opening(self.data.path(FEW_SHOT))

    def load_samples(self) -> list[Sample]:
        """Seed-major, so that --limit N takes N different tasks first."""
        tasks: Sequence[str] = TASKS
        seeds: Sequence[int] = range(EPISODES)
        if self.options.miniwob_protocol == "webarena-style":
            tasks, seeds = webarena_style.TASKS, webarena_style.SEEDS
        return [MiniWoBSample(id=f"{t}-{s}", subset=t, task=t, seed=s) for s in seeds for t in tasks]

    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, MiniWoBSample)
        if self.options.miniwob_protocol == "webarena-style":
            return webarena_style.WebArenaStyleEnv(sample.task, sample.seed)
        prompts = rci_prompt.TaskPrompts.load(Path(self.data.path(PROMPT_DIR)), sample.task)
        root = self.html_root()
        assert root is not None, "unavailable() said why"
        return RciEnv(sample.task, sample.seed, prompts, self._opening, root)

    def parse_action(self, reply: str) -> Action:
        if self.options.miniwob_protocol == "webarena-style":
            return parse_reply(reply)
        # Every reply is data for the RCI loop (a plan, a critique, an instruction); the loop judges it.
        return Action(name="reply", argument=rci_prompt.clean_reply(reply), raw=reply)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        raw = float(env_info.get("raw_reward") or 0.0)
        if self.options.miniwob_protocol == "webarena-style":
            ok = bool(env_info.get("done")) and raw > 0
        else:
            ok = float(env_info.get("reward") or 0.0) > 0  # main.py l.181: rewards[0] > 0
        details = {"raw_reward": raw, "done": bool(env_info.get("done")), "reason": env_info.get("reason")}
        return Score(value=1.0 if ok else 0.0, success=ok, details=details)

    def task_score(self, scores: Sequence[tuple[str | None, Score]]) -> tuple[float | None, dict[str, float]]:
        if not scores:
            return None, {}
        rewards = [float(s.details.get("raw_reward", 0.0)) for _, s in scores]
        return sum(s.value for _, s in scores) / len(scores), {"mean_raw_reward": sum(rewards) / len(rewards)}
