"""One HotpotQA episode as BOLAA's ReAct agent ran it: a scratchpad the model continues, two replies a step.

The environment keeps the original's scratchpad (AgentTuning ``agent_arch.py`` l.160-222). Each reply is a
turn of the agent loop; what the environment answers is exactly the text the original appended after it:
``\\nAction n:`` after a Thought, ``\\nObservation n: ...`` then ``\\nThought n+1:`` after an Action. Before each
step the original checks ``is_halted`` (l.155-158): more than ten steps, or a prompt over 1,700 cl100k tokens,
ends the episode unfinished.
"""

from __future__ import annotations

from typing import Any, Literal

from agentflan_eval.benchmark import Environment, Observation
from agentflan_eval.benchmarks.common.cl100k import count_tokens
from agentflan_eval.benchmarks.common.qa_metrics import exact_match
from agentflan_eval.benchmarks.hotpotqa import bolaa
from agentflan_eval.benchmarks.hotpotqa.corpus import SearchBackend
from agentflan_eval.benchmarks.hotpotqa.explorer import Explorer
from agentflan_eval.records import Action, EpisodeStatus, Message

THINK = "think"  # the Action name a Thought reply is recorded under


class HotpotQAEnv(Environment):
    def __init__(self, question: str, gold: str, examples: str, search: SearchBackend):
        self.question, self.gold, self.examples = question, gold, examples
        self.explorer = Explorer(search)
        self.scratchpad = ""
        self.step_n = 1
        self.phase: Literal["thought", "action"] = "thought"
        self.answer: str | None = None

    def prompt(self) -> str:
        return bolaa.build_prompt(self.examples, self.question, self.scratchpad)

    def reset(self) -> list[Message]:
        self.scratchpad = f"\nThought {self.step_n}:"
        return [Message(role="user", content=self.prompt())]

    def parse_reply(self, reply: str) -> Action | None:
        """A reply in the Thought phase is a thought, whatever it says; an Action reply goes to the parser."""
        if self.phase == "thought":
            return Action(name=THINK, argument=bolaa.format_step(reply), raw=reply)
        return None

    def step(self, action: Action) -> Observation:
        self.scratchpad += " " + bolaa.format_step(action.raw)
        if self.phase == "thought":
            self.phase = "action"
            return self._cue(f"\nAction {self.step_n}:")
        obs = f"\nObservation {self.step_n}: " + self._act(action)
        self.scratchpad += obs
        self.step_n += 1
        self.phase = "thought"
        if self.answer is not None:
            return Observation(text=obs, done=True)
        if self.step_n > bolaa.MAX_STEPS:
            return Observation(text=obs, done=True, status=EpisodeStatus.TURN_LIMIT)
        if count_tokens(self.prompt()) > bolaa.MAX_PROMPT_TOKENS:
            return Observation(text=obs, done=True, status=EpisodeStatus.CONTEXT_LIMIT)
        return self._cue(f"\nThought {self.step_n}:", before=obs)

    def _cue(self, cue: str, before: str = "") -> Observation:
        """Ask for the next generation: ``cue`` joins the scratchpad, and the model sees ``before + cue``."""
        self.scratchpad += cue
        return Observation(text=before + cue)

    def _act(self, action: Action) -> str:
        if action.name == "Finish":
            self.answer = action.argument
            return "Answer is CORRECT" if exact_match(self.answer, self.gold) else "Answer is INCORRECT"
        if action.name == "Search":
            return bolaa.format_step(self.explorer.search(action.argument))
        if action.name == "Lookup":
            return bolaa.format_step(self.explorer.lookup(action.argument))
        return bolaa.INVALID

    def info(self) -> dict[str, Any]:
        return {"answer": self.answer, "steps": self.step_n - 1}
