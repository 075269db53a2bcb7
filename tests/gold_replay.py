"""Play a benchmark's ``gold_agent`` through the real agent loop, environment and scorer (no selftest command).

The backend answers each request with the sample's gold agent given the request's messages, that is the
conversation after the benchmark's ``fit_prompt`` (AgentBench's history window), as a model would see it.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.base import Backend, GenerationRequest
from agentflan_eval.benchmark import Benchmark, GoldAgent, Sample
from agentflan_eval.records import Completion, EpisodeRecord, GenerationConfig


class GoldBackend(Backend):
    name = "gold"
    template_name = "none (gold agent)"

    def __init__(self, agents: dict[str, GoldAgent]):
        self.agents = agents

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        return [Completion(text=self.agents[r.sample_id](r.messages)) for r in requests]


def replay_gold(bench: Benchmark, samples: Sequence[Sample], concurrency: int = 8) -> list[EpisodeRecord]:
    agents = {}
    for s in samples:
        agent = bench.gold_agent(s)
        assert agent is not None, f"{bench.name} has no gold agent for {s.id}"
        agents[s.id] = agent
    done: list[EpisodeRecord] = []
    run_episodes(bench, samples, GoldBackend(agents), GenerationConfig(), concurrency, done.append)
    assert len(done) == len(samples)
    return done
