"""Typed records: the only things that cross module boundaries.

Every record is a pydantic model so that the run store can write and read it as JSON without
hand-written (de)serialisers, and so that a stored run carries a schema version.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Role = Literal["system", "user", "assistant", "tool"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(Record):
    role: Role
    content: str


class GenerationConfig(Record):
    """Decoding settings shared by every backend; greedy by default, as the papers evaluate."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    stop: list[str] = Field(default_factory=list)
    seed: int = 0
    top_p: float = 1.0  # nucleus sampling; only matters when temperature > 0


class Decoding(Record):
    """How a protocol decoded replies: greedy (temperature 0) or sampled at ``temperature`` with nucleus
    ``top_p``. ``source`` says where the original set it (see docs/original_protocols.md)."""

    temperature: float = 0.0
    top_p: float = 1.0
    source: str = ""

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def short(self) -> str:
        """For summaries and reports: greedy, or e.g. T=0.7, top-p 1."""
        return "greedy" if self.greedy else f"T={self.temperature:g}, top-p {self.top_p:g}"


class Overflow(str, enum.Enum):
    """What the original did with a prompt longer than the model's context."""

    # keep the newest tokens that fit the context minus the reply budget (TGI's truncate)
    TRUNCATE_LEFT = "truncate_left"
    # the benchmark trims its own prompt as its original did (few-shot turns, the observation)
    BENCHMARK = "benchmark"
    END_EPISODE = "end_episode"  # no rule in the original: the episode ends as context_limit


class PromptFormat(str, enum.Enum):
    """How the original rendered the messages for the model."""

    CHAT = "chat"  # the model's chat template with its default system prompt (AgentLM's fixed one)
    # the chat template with no system block (AgentBench.old's FastChat llama-2)
    CHAT_NO_SYSTEM = "chat_no_system"
    COMPLETION = "completion"  # one raw completion prompt, no chat template (BOLAA's HotpotQA)


class TaskProtocol(Record):
    """A task's protocol as this run applied it: written per task into the manifest and the report."""

    decoding: Decoding
    overflow: Overflow
    overflow_note: str = ""
    prompt_format: PromptFormat
    max_new_tokens: int
    first_prompt: str | None = None  # the rendered first prompt of the task's first sample
    template: str = ""  # the chat template the prompts went through ("none" for a raw completion)
    history: str = ""  # what of the conversation each prompt keeps (e.g. AgentBench.old's segment window)


class FinishReason(str, enum.Enum):
    """Why a reply ended. A str enum: records stored with the plain strings load unchanged."""

    STOP = "stop"  # end of turn: EOS or a stop string
    LENGTH = "length"  # max_new_tokens (or the context) ran out
    CONTEXT_LIMIT = "context_limit"  # the prompt left no room: nothing was generated
    ERROR = "error"  # the backend failed this request; Completion.error says why


class Completion(Record):
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: FinishReason = FinishReason.STOP
    seconds: float = 0.0  # this reply's latency (a lock-step batch: its time divided by its rows)
    error: str | None = None
    truncated_tokens: int = 0  # prompt tokens cut from the left to fit the context (Overflow.TRUNCATE_LEFT)


class EpisodeStatus(str, enum.Enum):
    """Why an episode ended. Not its score: a turn-limit episode can still have partial credit."""

    COMPLETED = "completed"
    TURN_LIMIT = "turn_limit"
    CONTEXT_LIMIT = "context_limit"
    INVALID_ACTION = "invalid_action"
    ENV_ERROR = "env_error"
    MODEL_ERROR = "model_error"


class Action(Record):
    """A model reply parsed by the benchmark. ``valid=False`` keeps the raw text as data."""

    name: str
    argument: str = ""
    valid: bool = True
    raw: str = ""


class Step(Record):
    """One turn: the model's reply, the parsed action, and what the environment answered."""

    reply: str
    action: Action
    observation: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    truncated_tokens: int = 0  # prompt tokens cut from the left this turn to fit the context


class Score(Record):
    """A benchmark's verdict on one episode. ``value`` is on the metric's own scale (0-1 or 0-100)."""

    value: float
    success: bool | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorInfo(Record):
    type: str
    message: str


class EpisodeRecord(Record):
    """Everything about one finished episode: written once, appended to the task's JSONL."""

    schema_version: int = SCHEMA_VERSION
    task: str
    sample_id: str
    subset: str | None = None  # e.g. HotpotQA level, ALFWorld task type
    prompt: list[Message]  # the messages that opened the episode
    steps: list[Step] = Field(default_factory=list)
    status: EpisodeStatus
    score: Score
    error: ErrorInfo | None = None
    env_info: dict[str, Any] = Field(default_factory=dict)  # the environment's final report, for rescoring
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    metadata: dict[str, Any] = Field(default_factory=dict)
    repeat: int = 0  # which of --repeats runs of the sample (records before repeats existed load as 0)

    @property
    def key(self) -> tuple[str, int]:
        """What the run store keys an episode by: a sample may be run several times (--repeats)."""
        return self.sample_id, self.repeat

    @property
    def invalid_actions(self) -> int:
        return sum(1 for s in self.steps if not s.action.valid)


class Deviation(Record):
    """A way in which this run differs from the original protocol; shown in every report."""

    task: str
    what: str
    why: str = ""


class RepeatSpread(Record):
    """How much the task score moved between repeats of the whole sample set (sampled decoding): the
    headline is their mean; this is beside the bootstrap interval, which only resamples samples."""

    scores: list[float]  # the task score of each repeat, in repeat order, on the metric's scale
    sd: float  # sample standard deviation of ``scores``
    low: float
    high: float


class TaskResult(Record):
    task: str
    suite: str
    metric: str
    scale: float = 100.0  # the metric's maximum, so reports can put it on 0-100
    score: float | None  # None when nothing was scored
    n: int
    n_standard: int  # size of the standard test set; n < n_standard marks a partial run
    subsets: dict[str, float] = Field(default_factory=dict)
    extra: dict[str, float] = Field(default_factory=dict)
    statuses: dict[str, int] = Field(default_factory=dict)
    invalid_action_rate: float = 0.0
    errors: int = 0
    # Episodes the protocol's headline leaves out (environment errors AgentBench v0.1 dropped), and the
    # strict score that counts them as failures; None when nothing was left out.
    left_out: int = 0
    strict_score: float | None = None
    wall_seconds: float | None = (
        None  # wall-clock time spent on the task, summed over every (resumed) invocation
    )
    truncated_prompts: int = 0  # steps whose prompt was cut from the left to fit the context
    repeats: int = 1  # runs of each sample; n counts samples, not episodes
    repeat_spread: RepeatSpread | None = None  # None with a single repeat


class NotRun(Record):
    task: str
    reason: str


class RunResults(Record):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    model: str
    tasks: dict[str, TaskResult] = Field(default_factory=dict)
    suites: dict[str, float | None] = Field(default_factory=dict)
    not_run: list[NotRun] = Field(default_factory=list)
    wall_seconds: float | None = None  # the tasks' wall times plus model loading, over every invocation


class WallTime(Record):
    """Wall-clock seconds one invocation of ``run`` (one process of it) has spent on one task so far.

    Kept per invocation because a long run is usually finished over several resumed ones: their sum is
    what the run cost, and a killed invocation keeps what it measured up to its last finished episode."""

    invocation: str  # when that ``run`` started (UTC, ISO 8601)
    rank: int = 0  # the process, in a sharded run: ranks run at once, so a task costs its slowest rank's time
    task: str  # a task name, or MODEL_LOAD
    seconds: float
    episodes: int = 0  # finished by this invocation


MODEL_LOAD = "(model load)"


def duration_text(seconds: float | None) -> str:
    """A wall time as summaries and reports show it: 7m05s, 2h13m; "-" when unknown."""
    if seconds is None:
        return "-"
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{s:02d}s"


class FileHash(Record):
    path: str
    sha256: str


class RunManifest(Record):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())  # model_path, model_hash are ours

    schema_version: int = SCHEMA_VERSION
    run_id: str
    created: str
    model: str
    model_path: str | None = None
    model_hash: str | None = None
    backend: str
    backend_info: dict[str, Any] = Field(
        default_factory=dict
    )  # what the backend resolved: dtype, device, engine
    chat_template: str
    rendered_example: str = ""
    generation: GenerationConfig
    config: dict[str, Any]
    tasks: list[str]
    command_line: list[str]
    package_versions: dict[str, str]
    git_commit: str | None = None
    data_files: list[FileHash] = Field(default_factory=list)
    deviations: list[Deviation] = Field(default_factory=list)
    protocols: dict[str, TaskProtocol] = Field(default_factory=dict)  # per task: decoding, overflow, template
