"""Scripted replies from a JSONL file, for tests and for replaying a run without a model.

Each line: ``{"task": "hotpotqa", "sample_id": "easy-0", "replies": ["...", "..."]}``; the n-th
reply answers the n-th turn. ``"sample_id": "*"`` scripts every sample of a task that has no
script of its own. A turn beyond the script fails that episode with a model error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agentflan_eval.backends.base import Backend, GenerationRequest, cut_at_stop
from agentflan_eval.data import read_jsonl
from agentflan_eval.errors import DataFormatError, ModelLoadError
from agentflan_eval.records import Completion, FinishReason, GenerationConfig


class ReplayBackend(Backend):
    name = "replay"
    template_name = "none (replay)"

    def __init__(self, path: Path):
        if not Path(path).is_file():
            raise ModelLoadError(f"replay file {path} does not exist")
        self.path = Path(path)
        self.scripts: dict[tuple[str, str], list[str]] = {}
        for line, rec in read_jsonl(self.path):
            replies = rec.get("replies")
            if not isinstance(replies, list) or not all(isinstance(r, str) for r in replies):
                raise DataFormatError(self.path, line, "'replies' must be a list of strings")
            self.scripts[(str(rec.get("task", "*")), str(rec.get("sample_id", "*")))] = replies

    def _script(self, req: GenerationRequest) -> list[str] | None:
        for key in ((req.task, req.sample_id), (req.task, "*"), ("*", "*")):
            if key in self.scripts:
                return self.scripts[key]
        return None

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        out = []
        for req in requests:
            script = self._script(req)
            if script is None or req.turn >= len(script):
                out.append(
                    Completion(
                        text="",
                        finish_reason=FinishReason.ERROR,
                        error=f"no scripted reply for {req.task}/{req.sample_id} turn {req.turn}",
                    )
                )
                continue
            text, _ = cut_at_stop(script[req.turn], config.stop)
            out.append(
                Completion(
                    text=text,
                    prompt_tokens=sum(len(m.content.split()) for m in req.messages),
                    completion_tokens=len(text.split()),
                )
            )
        return out

    def describe(self) -> dict[str, object]:
        return {"model_path": str(self.path)}
