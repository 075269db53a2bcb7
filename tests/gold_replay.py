"""Play a benchmark's ``gold_agent`` through the real agent loop, environment and scorer, with the package's
``ScriptedBackend`` (the backend of the ``selftest`` command).

Unlike ``selftest``, which lets the gold agent read the whole conversation, the tests keep the benchmark's
``fit_prompt`` (AgentBench's history window): the agent answers from what a model would be shown, which proves
the gold solutions still work under the window. A sample without a gold agent fails the test at once, rather
than being counted as ``selftest`` counts it.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.scripted import ScriptedBackend
from agentflan_eval.benchmark import Benchmark, Sample
from agentflan_eval.records import EpisodeRecord, GenerationConfig


def replay_gold(bench: Benchmark, samples: Sequence[Sample], concurrency: int = 8) -> list[EpisodeRecord]:
    agents = {}
    for s in samples:
        agent = bench.gold_agent(s)
        assert agent is not None, f"{bench.name} has no gold agent for {s.id}"
        agents[s.id] = agent
    done: list[EpisodeRecord] = []
    run_episodes(bench, samples, ScriptedBackend(agents), GenerationConfig(), concurrency, done.append)
    assert len(done) == len(samples)
    return done
