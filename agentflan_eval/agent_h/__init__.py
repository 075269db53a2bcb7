"""Agent-H, re-constructed: the sample generator and the response scorer (see docs/agent_h.md)."""

from agentflan_eval.agent_h.build import (
    DEFAULT_SEED,
    GENERATOR_VERSION,
    AgentHSample,
    build_samples,
    samples_hash,
    write_jsonl,
)
from agentflan_eval.agent_h.judge import H_DEFINITION, Verdict, h_score, judge

__all__ = ["DEFAULT_SEED", "GENERATOR_VERSION", "H_DEFINITION", "AgentHSample", "Verdict", "build_samples",
           "h_score", "judge", "samples_hash", "write_jsonl"]
