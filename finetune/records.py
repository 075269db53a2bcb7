"""Typed records of the fine-tuning pipeline: parsed trajectories in, training conversations out.

A ``Trajectory`` is what every source parser produces (typed steps: thought, action, action input,
observation, final answer), keeping the source's own turns as ``original`` so that the ReAct share
can be written exactly as the source had it. A ``Conversation`` is one training row; its turns carry
the released Agent-FLAN layout ``{role, content, loss}`` plus the capability the turn supervises.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]
# reasoning/retrieval/understanding: the decomposed agent capabilities; instruct: the ReAct format
# (instruction following); chat: general chat; negative: a plain answer where no tool call belongs.
Capability = Literal["reasoning", "retrieval", "understanding", "instruct", "chat", "negative"]
Format = Literal["react", "aligned", "chat", "negative", "release"]
NegativeKind = Literal["a", "b"]  # a: no tools listed; b: tools listed, none fits
AGENT_CAPABILITIES: tuple[str, ...] = ("reasoning", "retrieval", "understanding")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolSpec(_Model):
    """A tool as offered to the model (the OpenAI function schema ToolBench uses)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class TrajectoryStep(_Model):
    """One agent step. A step holds an action (with its observation) or the final answer, or both empty
    when it is a bare thought."""

    thought: str = ""
    action: str | None = None
    action_input: dict[str, Any] = Field(default_factory=dict)
    observation: str | None = None
    final_answer: str | None = None


class Turn(_Model):
    role: Role
    content: str
    loss: bool = False
    capability: Capability | None = None


class Trajectory(_Model):
    id: str
    source: str
    query: str
    tools: list[ToolSpec] = Field(default_factory=list)
    steps: list[TrajectoryStep]
    original: list[Turn]  # the source's own turns (ReAct text, or the ReAct text the source's trainer used)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Conversation(_Model):
    id: str
    source: str
    format: Format
    turns: list[Turn]
    negative: NegativeKind | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def content_key(self) -> str:
        """Identity for de-duplication: roles and texts, not loss flags or ids."""
        blob = json.dumps([[t.role, t.content] for t in self.turns], ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def row(self) -> dict[str, Any]:
        """The dataset/JSONL row (the released Agent-FLAN ``conversation`` layout plus our fields)."""
        return {
            "id": self.id,
            "source": self.source,
            "format": self.format,
            "negative": self.negative,
            "conversation": [t.model_dump() for t in self.turns],
            "metadata": json.dumps(self.metadata, ensure_ascii=False, sort_keys=True),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Conversation:
        meta = row.get("metadata") or "{}"
        return cls(
            id=row["id"],
            source=row["source"],
            format=row["format"],
            negative=row.get("negative"),
            turns=[Turn(**t) for t in row["conversation"]],
            metadata=json.loads(meta) if isinstance(meta, str) else meta,
        )
