"""Replies from scripted agents (a task's gold solution), one agent per sample, for ``selftest``.

Each request is answered by calling its sample's agent on the conversation so far. An agent that raises,
or a sample with no agent, fails only that episode (a model error whose message says why), as a real
backend's failed request would. Stop strings cut the reply as they cut a model's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agentflan_eval.backends.base import Backend, GenerationRequest, cut_at_stop
from agentflan_eval.benchmark import GoldAgent
from agentflan_eval.records import Completion, FinishReason, GenerationConfig


class ScriptedBackend(Backend):
    name = "scripted"
    template_name = "none (scripted agent)"

    def __init__(self, agents: Mapping[str, GoldAgent]):
        self.agents = dict(agents)  # sample id -> its agent

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        return [self._reply(req, config) for req in requests]

    def _reply(self, req: GenerationRequest, config: GenerationConfig) -> Completion:
        agent = self.agents.get(req.sample_id)
        if agent is None:
            return Completion(
                text="", finish_reason=FinishReason.ERROR, error=f"no agent for {req.sample_id}"
            )
        try:
            reply = agent(req.messages)
        except Exception as e:  # noqa: BLE001 - a scripted agent's failure is its episode's result
            return Completion(text="", finish_reason=FinishReason.ERROR, error=f"{type(e).__name__}: {e}")
        text, _ = cut_at_stop(reply, config.stop)
        return Completion(
            text=text,
            prompt_tokens=sum(len(m.content.split()) for m in req.messages),
            completion_tokens=len(text.split()),
        )

    def describe(self) -> dict[str, object]:
        return {"agents": len(self.agents)}
