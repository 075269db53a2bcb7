"""Agent-H (hallucination suite), re-constructed: does an agent answer in an agent format, or call a
tool, when it should simply answer, and does it still call the right tool when one fits?

Paper: Chen et al. 2024, Agent-FLAN (arXiv 2403.12881), the Agent-H benchmark. Its data was never
released (InternLM/Agent-FLAN issue #14), so this task is a documented re-construction and its
numbers are not comparable with the paper's Agent-H column; every run carries that note.
Data: 1,800 samples built deterministically by ``agentflan_eval.benchmarks.agent_h`` (generator version,
seed and sha256 in the run manifest) from files in the data dir: tool descriptions from T-Eval
(``api_descrip.json``) and ToolBench (``data_example``); general requests from MT-bench, the Vicuna
bench, OpenAssistant, Arena-hard and Self-Instruct (those that may need a tool filtered out);
knowledge questions from HotpotQA and Bamboogle. Two prompt formats (ReAct system prompt; general
chat with function definitions) × three cases (none_fits: tools listed, none fits; no_tools;
control: a listed tool fits), 300 each.
Protocol: one model reply per sample (max_turns 1), greedy; generation stops at a ReAct
``Observation:``/``Response:`` line, since no tool ever answers.
Metric: H-score 0-100, the balanced share of hallucination-free replies; per-format and per-part
figures in the task result's extras, per case/format cell in its subsets. The exact definition is
``agentflan_eval.benchmarks.agent_h.judge.H_DEFINITION`` (also in docs/agent_h.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from agentflan_eval.benchmark import Benchmark, Environment, Observation, Sample
from agentflan_eval.benchmarks.agent_h.build import (
    DEFAULT_SEED,
    GENERATOR_VERSION,
    AgentHSample,
    build_samples,
    samples_hash,
)
from agentflan_eval.benchmarks.agent_h.judge import H_DEFINITION, Verdict, find_calls, h_score, judge
from agentflan_eval.benchmarks.agent_h.queries import BAMBOOGLE, GENERAL_FILES, HOTPOTQA
from agentflan_eval.benchmarks.agent_h.tools import T_EVAL_TOOLS, TOOLBENCH_ANSWERS, TOOLBENCH_INSTRUCTIONS
from agentflan_eval.records import Action, Decoding, Deviation, Message, Overflow, PromptFormat, Score, Step

DEVIATION_NOTE = "Agent-H (re-constructed; original data unreleased)"


class AgentHEnv(Environment):
    """One reply and done: no tool ever runs, the reply itself is what is judged."""

    def __init__(self, sample: AgentHSample):
        self.sample = sample

    def reset(self) -> list[Message]:
        return self.sample.messages()

    def step(self, action: Action) -> Observation:
        return Observation(done=True)


class AgentH(Benchmark):
    name = "agent_h"
    suite = "hallucination"
    metric = "H-score"
    scale = 100.0
    max_turns = 1
    n_standard = 1800
    decoding = Decoding(
        source="no original (re-constructed task): greedy, as the paper's other held-out tasks"
    )
    overflow = Overflow.END_EPISODE
    prompt_format = PromptFormat.CHAT
    data_files = (
        T_EVAL_TOOLS,
        *TOOLBENCH_INSTRUCTIONS,
        *TOOLBENCH_ANSWERS,
        *GENERAL_FILES,
        HOTPOTQA,
        BAMBOOGLE,
    )
    stop = ("\nObservation:", "\nResponse:")
    paper = "Chen et al. 2024 (Agent-FLAN), Agent-H; re-constructed"

    @cached_property
    def samples(self) -> list[AgentHSample]:
        return build_samples(self.data, DEFAULT_SEED)

    def load_samples(self) -> list[Sample]:
        return list(self.samples)

    def deviations(self) -> list[Deviation]:
        what = (
            f"{DEVIATION_NOTE}: generator v{GENERATOR_VERSION}, seed {DEFAULT_SEED}, {len(self.samples)} "
            f"samples, sha256 {samples_hash(self.samples, DEFAULT_SEED)}; not comparable with the paper's "
            "Agent-H column"
        )
        return [
            Deviation(
                task=self.name,
                what=what,
                why="the paper's Agent-H data was never released; this set is rebuilt from public "
                f"tool descriptions and real user queries (docs/agent_h.md). {H_DEFINITION}",
            )
        ]

    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, AgentHSample)
        return AgentHEnv(sample)

    def parse_action(self, reply: str) -> Action:
        """The first tool call if there is one, else the answer; an empty reply is invalid."""
        calls = [c for c in find_calls(reply) if c.is_tool]
        if calls:
            return Action(name=calls[0].name, argument=calls[0].arguments, raw=reply)
        return Action(name="answer", argument=reply.strip(), valid=bool(reply.strip()), raw=reply)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        assert isinstance(sample, AgentHSample)
        reply = steps[0].reply if steps else ""
        v = judge(sample.case, sample.format, sample.apis, sample.gold, reply)
        return Score(
            value=100.0 if v.ok else 0.0,
            success=v.ok,
            details={**v.model_dump(), "case": sample.case, "format": sample.format},
        )

    def task_score(self, scores: Sequence[tuple[str | None, Score]]) -> tuple[float | None, dict[str, float]]:
        """H-score and its parts (see ``agentflan_eval.benchmarks.agent_h.judge``)."""
        rows = []
        for subset, s in scores:
            case, _, fmt = (subset or "").partition("/")
            try:
                verdict = Verdict.model_validate({k: s.details[k] for k in Verdict.model_fields})
            except KeyError:  # a scorer crash left no verdict: count the sample as not ok
                verdict = Verdict(
                    format_hallucination=False,
                    action_hallucination=False,
                    correct_call=None,
                    ok=False,
                    called=[],
                    unlisted=[],
                    markers=[],
                )
            rows.append((case, fmt, verdict))
        return h_score(rows)
