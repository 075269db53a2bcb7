"""ScienceWorld (held-out) under AgentTuning's protocol.

Paper: Wang et al. 2022 (ScienceWorld); protocol from AgentTuning's ``eval_heldout/science-world``.
Simulator: the PyPI package ``scienceworld`` (its bundled jar, Java 17), one JVM per episode, the
``easy`` simplifications, an environment step limit of 100 and at most 200 model turns.
Test set: for each of the 30 tasks, the test variations shuffled with seed 1, the first 10 kept (task 15:
9, task 25: 5; 270 episodes), interleaved across tasks so ``--limit N`` covers N tasks.
Prompt: AgentTuning's instruction, 'Ok.', the task's few-shot trajectory from ``prompts/prompt.json``,
then the task; before each turn the prompt is trimmed as AgentTuning's ``eval.py`` l.258-270 does: while its
FastChat llama-2 rendering (AgentLM's system message) is over 4,096 - 60 cl100k tokens, turns 4-5 go (the
few-shot's second pair, then its first once it is alone, then the oldest episode turns); see ``protocol``.
Actions: ``Think: ...`` (answered 'OK.') or ``Action: ...``; an action not among the valid ones is mapped to
the valid action sharing most words with it and the simulator answers whatever it becomes. The episode
ends when the simulator says done, after 10 consecutive failed actions, or when the last 5 turns repeat.
Metric: the simulator's final score (0-100; a negative score keeps the previous one), averaged over the
tasks' means, as AgentTuning's ``metrics.py`` does; per-task means are the subsets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from agentflan_eval.benchmark import Benchmark, Environment, Observation, Sample
from agentflan_eval.benchmarks.sciworld import protocol
from agentflan_eval.benchmarks.sciworld.simulator import Simulator, missing_requirement
from agentflan_eval.data import DataFile, read_json
from agentflan_eval.errors import DataFormatError
from agentflan_eval.records import (
    Action,
    Decoding,
    Deviation,
    EpisodeStatus,
    Message,
    Overflow,
    PromptFormat,
    Score,
    Step,
)

log = logging.getLogger(__name__)

PROMPT_FILE = DataFile(
    "agenttuning/science-world/prompts/prompt.json",
    "THUDM/AgentTuning eval_heldout/science-world/prompts/prompt.json",
)
INSTRUCTION = """Interact with a household to solve a task. Each turn, you can choose from one of the following options:
1. Think: You could think step-by-step to tell your reasoning and planning to solve the task, which will help you handle the task easier.
2. Action: You could interact with the environment freely to solve the task, but remember to refer to your thought and act accordingly.
Prepend your action with "Think: " or "Action: ", e.g. "Think: Now I have picked up the object. Next, I need to move to the location of the answer box." or "Action: go to kitchen".
Exactly only one option could be chosen in a turn."""
NEW_TASK = protocol.NEW_TASK
ENV_STEP_LIMIT = 100
SIMPLIFICATIONS = "easy"
MAX_FAILED = 10  # consecutive failed actions end the episode


class SciWorldSample(Sample):
    task_idx: int
    task_name: str
    variation: int


def opening(sim: Simulator, sample: SciWorldSample, examples: list[str]) -> tuple[list[Message], str]:
    """The episode's first prompt (``eval.py`` l.249-256: instruction, 'Ok.', few-shot, task) and the first
    ``look``, after loading the sample's variation into ``sim``."""
    env = sim.env
    env.load(sample.task_name, sample.variation, SIMPLIFICATIONS)
    obs, info = env.reset()
    task = f"{NEW_TASK}\n{protocol.clean(obs)}\n{env.get_task_description()}".strip()
    turns = [Message(role="user" if i % 2 == 0 else "assistant", content=t) for i, t in enumerate(examples)]
    messages = [
        Message(role="user", content=INSTRUCTION),
        Message(role="assistant", content="Ok."),
        *turns,
        Message(role="user", content=task),
    ]
    return messages, info["look"]


class SciWorldEnv(Environment):
    """One episode: its own simulator (started in ``reset``, shut down in ``close``)."""

    def __init__(self, sample: SciWorldSample, examples: list[str]):
        self.sample, self.examples = sample, examples
        self.sim: Simulator | None = None
        self.look = ""
        self.recent = ["look around"]
        self.failed = 0
        self.score = 0
        self.moves = 0
        self.ended: str | None = None
        self.actions: list[str] = []

    def reset(self) -> list[Message]:
        self.sim = Simulator(step_limit=ENV_STEP_LIMIT)
        messages, self.look = opening(self.sim, self.sample, self.examples)
        return messages

    def step(self, action: Action) -> Observation:
        assert self.sim is not None, "reset() first"
        if action.name == "think":
            obs, done, status, taken = "OK.", False, None, action.raw.strip()
        else:
            obs, done, status, taken = self._act(self.sim, action.argument)
        obs = protocol.clean(obs)
        self.recent.append(f"({taken}, {obs})")
        if not done and len(self.recent) >= 5 and len(set(self.recent[-5:])) == 2:
            done, self.ended = True, "loop"  # the last five turns alternate between two (action, observation)
        return Observation(text=obs, done=done, status=status)

    def _act(self, sim: Simulator, text: str) -> tuple[str, bool, EpisodeStatus | None, str]:
        env = sim.env
        candidates = protocol.candidate_actions(
            env.get_valid_action_object_combinations(), self.look, env.inventory().lower(), self.recent
        )
        chosen = protocol.map_action(text, candidates)
        self.actions.append(chosen)
        obs, _reward, done, info = env.step(chosen)
        self.look, self.moves = info["look"], info["moves"]
        self.failed = self.failed + 1 if protocol.is_failed(obs) else 0
        if self.failed >= MAX_FAILED:  # checked first, so this step's score is not taken (as in the original)
            self.ended = "failed_actions"
            return obs, True, EpisodeStatus.INVALID_ACTION, chosen
        if info["score"] < 0:
            done, self.ended = (
                True,
                "negative_score",
            )  # keeps the last non-negative score (AgentTuning's no_stop)
        else:
            self.score = info["score"]
        if done:
            self.ended = self.ended or "done"
            return obs, True, EpisodeStatus.COMPLETED, chosen
        return obs, False, None, chosen

    def info(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "task": self.sample.task_name,
            "variation": self.sample.variation,
            "moves": self.moves,
            "ended": self.ended,
            "actions": self.actions,
        }

    def close(self) -> None:
        if self.sim is not None:
            self.sim.close()


class SciWorld(Benchmark):
    name = "sciworld"
    suite = "held-out"
    metric = "final score (mean over tasks)"
    scale = 100.0
    max_turns = 2 * ENV_STEP_LIMIT
    n_standard = 270
    decoding = Decoding(
        source="AgentTuning eval_heldout/science-world eval.py: do_sample false, no temperature"
    )
    overflow = Overflow.BENCHMARK
    overflow_note = (
        "few-shot turns, then the oldest episode turns, dropped until the llama-2 rendering fits 4,096 - 60 "
        "cl100k tokens"
    )
    prompt_format = PromptFormat.CHAT
    history = (
        "the whole conversation, few-shot turns dropped while over 4,036 cl100k tokens (eval.py l.258-270)"
    )
    data_files = (PROMPT_FILE,)
    paper = "Wang et al. 2022 (ScienceWorld); protocol: AgentTuning (Zeng et al. 2023) / SwiftSage"

    def unavailable(self) -> str | None:
        return missing_requirement() or super().unavailable()

    @cached_property
    def prompts(self) -> dict[str, list[str]]:
        path = self.data.path(PROMPT_FILE)
        data = read_json(path)
        if not isinstance(data, dict) or not all(
            isinstance(v, list) and len(v) % 2 == 0 for v in data.values()
        ):
            raise DataFormatError(path, None, "expected {task_idx: [user, assistant, ...]} with paired turns")
        return data

    def load_samples(self) -> list[Sample]:
        per_task = [
            [
                SciWorldSample(id=f"{idx}-{name}-{v}", subset=name, task_idx=idx, task_name=name, variation=v)
                for v in protocol.select_test_variations(idx, variations)
            ]
            for idx, (name, variations) in enumerate(_test_sets())
        ]
        rounds = max(len(t) for t in per_task)
        return [t[i] for i in range(rounds) for t in per_task if i < len(t)]

    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, SciWorldSample)
        return SciWorldEnv(sample, self.prompts[str(sample.task_idx)])

    def parse_action(self, reply: str) -> Action:
        """``Think: ...`` or ``Action: ...``; other replies are still sent (as AgentTuning does) but marked invalid."""
        text = reply.strip()
        if text.startswith("Think:"):
            return Action(name="think", argument=text[len("Think:") :].strip(), raw=reply)
        act = text.replace("Action:", "").strip()
        return Action(name="act", argument=act, valid=text.startswith("Action:") and bool(act), raw=reply)

    def fit_prompt(self, messages: list[Message]) -> list[Message]:
        """Trimmed from the whole conversation each turn: the original trims one growing list in place, and
        its deletions are positional, so both keep the same turns."""
        return protocol.trim_prompt(messages)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        value = float(env_info.get("score", 0.0))
        return Score(
            value=value,
            success=value >= 100.0,
            details={"ended": env_info.get("ended"), "moves": env_info.get("moves")},
        )

    def task_score(self, scores: Sequence[tuple[str | None, Score]]) -> tuple[float | None, dict[str, float]]:
        """AgentTuning's number: the mean over tasks of each task's mean score; the plain mean is an extra."""
        if not scores:
            return None, {}
        per_task = self.subset_scores(scores)
        micro = sum(s.value for _, s in scores) / len(scores)
        return sum(per_task.values()) / len(per_task), {"episode_mean": micro, "tasks": float(len(per_task))}

    def deviations(self) -> list[Deviation]:
        return [
            Deviation(
                task=self.name,
                what="the llama2 and agentlm chat templates strip each turn; AgentTuning's FastChat prompt "
                "keeps surrounding spaces (58 of the 2,594 few-shot turns, in all 30 tasks, end in one)",
                why="the harness's llama-2 template strips as AgentBench's client does; the trimming counts the "
                "unstripped text, so the same turns are kept",
            ),
            Deviation(
                task=self.name,
                what="one simulator per episode: the first observation lists a room's objects in the order a "
                "fresh JVM gives, where AgentTuning's one simulator per task (variation 0, then each test "
                "variation in turn) lists some in another order",
                why="episodes run side by side and never share a JVM; the words are the same",
            ),
            Deviation(
                task=self.name,
                what="ties in mapping free text to a valid action broken by length, then alphabetically",
                why="the original iterated a Python set, so its ties were arbitrary",
            ),
            Deviation(
                task=self.name,
                what="scienceworld 1.2.x simulator instead of AgentTuning's 1.1.3",
                why="1.2.x hands back the JVM process so it can always be killed; both jars give the same "
                "270 test variations (checked), simulator fixes in between may shift scores",
            ),
        ]


def _test_sets() -> list[tuple[str, list[int]]]:
    """(task name, test variations) in the simulator's task order, read once from a short-lived JVM."""
    global _TEST_SETS
    if _TEST_SETS is None:
        sim = Simulator(step_limit=ENV_STEP_LIMIT)
        try:
            out = []
            for name in sim.env.get_task_names():
                sim.env.load(name, 0, SIMPLIFICATIONS)
                out.append((name, list(sim.env.get_variations_test())))
        finally:
            sim.close()
        _TEST_SETS = out
    return _TEST_SETS


_TEST_SETS: list[tuple[str, list[int]]] | None = None
