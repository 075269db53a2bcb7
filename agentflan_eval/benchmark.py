"""The benchmark interface: typed samples, an environment per episode, a parser and a scorer.

A benchmark is one package ``benchmarks/<task>/`` whose ``benchmark.py`` holds one ``Benchmark`` subclass, registered in
``benchmarks/__init__.py``. The agent loop owns the turn-taking; a benchmark only says how an
episode opens, what a reply means, how the world answers and what the episode was worth.
Scoring is a pure function of the sample, the steps and what the environment reported at the end,
so ``rescore`` can recompute every score from saved transcripts without a model.

A task's own settings (a service URL, a search backend) are fields of its ``Options`` model: the CLI
makes each a ``run`` flag, the run config carries them in ``task_options`` (so the manifest records
them) and the benchmark reads them as ``self.options``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataFile, DataResolver
from agentflan_eval.errors import DataMissingError
from agentflan_eval.records import (
    Action,
    Decoding,
    Deviation,
    EpisodeStatus,
    Message,
    Overflow,
    PromptFormat,
    Role,
    Score,
    Step,
)


class Sample(BaseModel):
    """Base of every benchmark's typed sample; ``id`` is unique within the task."""

    model_config = ConfigDict(extra="forbid")

    id: str
    subset: str | None = None


class Observation(BaseModel):
    """The environment's answer to one action. ``status`` set means the episode ends here.

    ``restart``: the model's next prompt is the episode's opening messages with ``text`` in place of the
    last one, not the conversation so far (protocols that clear the chat between rounds, e.g. Mind2Web)."""

    text: str | None = None
    role: Role = "user"
    done: bool = False
    status: EpisodeStatus | None = None
    restart: bool = False


class Environment(ABC):
    """One episode's world. ``close`` is always called, also after errors."""

    @abstractmethod
    def reset(self) -> list[Message]:
        """The messages that open the episode (instructions, few-shot examples, the task)."""

    @abstractmethod
    def step(self, action: Action) -> Observation: ...

    def parse_reply(self, reply: str) -> Action | None:
        """What ``reply`` means when the episode's state decides it (BOLAA's HotpotQA agent asks for a
        Thought, then for an Action, each a generation of its own); None leaves it to ``parse_action``."""
        return None

    def info(self) -> dict[str, Any]:
        """What the scorer needs from the environment's final state (stored with the episode)."""
        return {}

    def close(self) -> None:
        return None


GoldAgent = Callable[[Sequence[Message]], str]
"""Gives the next reply from the conversation so far (the last message is the environment's latest answer)."""


class TaskOptions(BaseModel):
    """Base of a benchmark's ``Options``; with no fields, the task has no options."""

    model_config = ConfigDict(extra="forbid")


class Benchmark(ABC):
    name: ClassVar[str]
    suite: ClassVar[str]  # held-in | held-out | hallucination
    metric: ClassVar[str]  # e.g. "token F1", "success rate"
    scale: ClassVar[float] = 100.0  # the metric's maximum as Score.value reports it
    max_turns: ClassVar[int]
    n_standard: ClassVar[int]  # size of the standard test set
    data_files: ClassVar[tuple[DataFile, ...]] = ()
    stop: ClassVar[tuple[str, ...]] = ()  # stop strings for the model's replies
    max_new_tokens: ClassVar[int | None] = None  # the protocol's reply budget; None keeps the run's setting
    paper: ClassVar[str] = ""
    # Episodes whose environment raised that the original protocol left out of the average (AgentBench
    # v0.1 dropped a sample whose ``predict_single`` raised): "start" only those that failed to start,
    # "any" also those that failed mid-episode, "none" counts every episode (the strict figure).
    errored_left_out: ClassVar[Literal["none", "start", "any"]] = "none"
    # The original protocol's decoding, context-overflow rule and prompt rendering (docs/original_protocols.md).
    decoding: ClassVar[Decoding] = Decoding()
    overflow: ClassVar[Overflow] = Overflow.END_EPISODE
    overflow_note: ClassVar[str] = ""
    prompt_format: ClassVar[PromptFormat] = PromptFormat.CHAT
    history: ClassVar[str] = "the whole conversation"  # what ``fit_prompt`` keeps, for the manifest
    # Under Overflow.BENCHMARK: whether the original's server still cut from the left what the benchmark's
    # own trimming left over the context (TGI's ``truncate`` in AgentTuning's held-out scripts).
    server_truncates: ClassVar[bool] = True
    Options: ClassVar[type[TaskOptions]] = TaskOptions  # the task's own settings; each field is a run flag
    options: TaskOptions  # a subclass narrows this to its Options

    def __init__(self, config: RunConfig, data: DataResolver):
        self.config = config
        self.data = data
        self.options = self.Options.model_validate(config.task_options.get(self.name, {}))

    # -- what a run needs to know before it starts ------------------------------------------
    def unavailable(self) -> str | None:
        """Why this task cannot run here (missing data or service), or None when it can. A missing file that
        can be downloaded is downloaded now, with a progress bar (a checksum mismatch raises)."""
        try:
            for files in (lambda: self.data_files, self.all_data_files):  # the second may read an index
                for f in self.data.missing(files()):
                    self.data.fetch(f)
        except DataMissingError as e:
            return str(e)
        return None

    def all_data_files(self) -> tuple[DataFile, ...]:
        """Every file the task may read, for ``data fetch`` and ``data verify``: ``data_files`` and any that
        only those name (e.g. the game files an index lists); may read (and so fetch) the index."""
        return self.data_files

    def deviations(self) -> list[Deviation]:
        """How this run departs from the original protocol; written to the manifest and reports."""
        return []

    def request_overflow(self) -> Overflow:
        """What a backend does with a prompt still over the context after ``fit_prompt``: TRUNCATE_LEFT
        (cut from the left) or END_EPISODE (the episode ends as context_limit)."""
        if self.overflow is Overflow.TRUNCATE_LEFT or (
            self.overflow is Overflow.BENCHMARK and self.server_truncates
        ):
            return Overflow.TRUNCATE_LEFT
        return Overflow.END_EPISODE

    # -- the episode ------------------------------------------------------------------------
    @abstractmethod
    def load_samples(self) -> list[Sample]:
        """The standard test set in a stable order (``--limit N`` takes the first N)."""

    @abstractmethod
    def make_env(self, sample: Sample) -> Environment: ...

    @abstractmethod
    def parse_action(self, reply: str) -> Action:
        """Malformed replies return ``Action(valid=False)``, never raise."""

    def fit_prompt(self, messages: list[Message]) -> list[Message]:
        """The messages the model sees this turn; override to trim history as the original protocol did."""
        return messages

    @abstractmethod
    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score: ...

    def gold_agent(self, sample: Sample) -> GoldAgent | None:
        """A scripted agent that plays ``sample``'s own gold solution (example commands, gold SQL, expert plan),
        for ``selftest`` to replay through the real environment; None when the task ships no gold solution."""
        return None

    def subset_scores(self, scores: Sequence[tuple[str | None, Score]]) -> dict[str, float]:
        """Per-subset means on the metric's scale; override for metrics that are not plain means."""
        groups: dict[str, list[float]] = {}
        for subset, s in scores:
            if subset is not None:
                groups.setdefault(subset, []).append(s.value)
        return {k: sum(v) / len(v) for k, v in sorted(groups.items())}

    def left_out(self, status: EpisodeStatus, steps: int) -> bool:
        """Whether the protocol's headline leaves this episode out (an environment error it dropped)."""
        if status is not EpisodeStatus.ENV_ERROR or self.errored_left_out == "none":
            return False
        return self.errored_left_out == "any" or steps == 0

    def task_score(self, scores: Sequence[tuple[str | None, Score]]) -> tuple[float | None, dict[str, float]]:
        """The task's headline score and named extras; default: the mean of the episode values."""
        if not scores:
            return None, {}
        return sum(s.value for _, s in scores) / len(scores), {}


def option_models() -> dict[str, type[TaskOptions]]:
    """Each registered task's ``Options`` model, for the tasks that declare any option."""
    from agentflan_eval import benchmarks

    models = {n: benchmarks.get(n).Options for n in benchmarks.task_names()}
    return {n: m for n, m in models.items() if m.model_fields}
