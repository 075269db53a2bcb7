"""BOLAA's ReAct agent as AgentTuning ran it on HotpotQA: the prompt, the reply clean-up, the action parser.

Followed: THUDM/AgentTuning @ e33a45d, ``eval_heldout/hotpotQA/src/`` (BOLAA's ``hotpotqa_run`` with a new
instruction). ``React_HotPotQA_run_Agent`` is the agent: it is the only one whose prompt AgentTuning rewrote
(``pre_prompt.py`` l.22-39 comment BOLAA's wording out), and ``eval_hotpot.py``'s default ``--agent_name``
is ``React``. One step (``agent_arch.py`` l.169-222) is two generations, each cut at the first newline
(``llms.py`` l.80-86, TGI ``stop_sequences=["\\n"]``): the scratchpad gets ``\\nThought n:`` and the first
reply, then ``\\nAction n:`` and the second, then ``\\nObservation n: `` and what the action returned.
"""

from __future__ import annotations

import re

from agentflan_eval.records import Action

# pre_prompt.py l.31-39: AgentTuning's REACT_INSTRUCTION (BOLAA's own wording is the commented-out one).
INSTRUCTION = (
    "This task involves solving a question-answering exercise through a series of interleaved Thought, "
    "Action, and Observation steps. Any thought before the action is allowed, and action can be one of the "
    "following three types:\n"
    "(1) Search[entity]: This action involves searching for a specific entity on Wikipedia and returning the "
    "first paragraph of the entity's page if it exists. If the entity does not have a Wikipedia page, the "
    "assistant should suggest similar entities to search for.\n"
    "(2) Lookup[keyword]: This action involves searching for the next sentence containing the specified "
    "keyword in the most recent passage successfully found by the Search action.\n"
    "(3) Finish[answer]: This action concludes the task by providing the answer to the question.\n"
    "You can take as many steps as necessary to answer the question. The key is to ensure that each step "
    "logically follows the previous one and contributes to the final answer. The task aims to emulate a "
    "reasoning process that yields accurate and comprehensive answers.\n"
    "Here are some examples:\n"
    "{examples}\n"
    "(END OF EXAMPLES)\n"
    "Question: {question}{scratchpad}"
)
MAX_STEPS = 10  # agent_arch.py l.110; halted once step_n > max_steps
MAX_PROMPT_TOKENS = 1700  # eval_hotpot.py l.27 --max_context_len, counted in cl100k (llms.py l.26)
ACTIONS = ("Search", "Lookup", "Finish")  # agent_arch.py l.194-211 compare the type case-sensitively
INVALID = "Invalid Action. Valid Actions are Lookup[<topic>] Search[<topic>] and Finish[<answer>]."
NO_PAGE = "Could not find that page, please try again."  # l.209: the search itself raised
NO_LOOKUP = (  # l.215: Lookup before a successful Search
    "The last page Searched was not found, so you cannot Lookup a keyword in it. "
    "Please try one of the similar pages given."
)
_EXACT = re.compile(r"^(\w+)\[(.+)\]$")  # l.27
_PREFIX = re.compile(r"^(\w+)\[(.+)\]")  # l.40: the fallback, read up to the last "]"


def build_prompt(examples: str, question: str, scratchpad: str) -> str:
    """The whole prompt the model continues (``ReactAgent._build_agent_prompt``)."""
    return INSTRUCTION.format(examples=examples, question=question, scratchpad=scratchpad)


def format_step(text: str) -> str:
    """A reply or an observation as the scratchpad keeps it: trimmed, its newlines dropped (l.49-50)."""
    return text.strip("\n").strip().replace("\n", "")


def parse_action(reply: str) -> Action:
    """``Type[argument]`` as the original reads it (l.26-47): the whole cleaned reply must match, else the
    fallback drops surrounding spaces and dots and reads a leading ``Type[...]`` up to the last ``]``. Only
    ``Search``, ``Lookup`` and ``Finish`` in exactly that case are actions."""
    step = format_step(reply)
    m = _EXACT.match(step) or _PREFIX.match(step.strip(" ").strip("."))
    if m is None or m.group(1) not in ACTIONS:
        return Action(name="invalid", valid=False, raw=reply)
    return Action(name=m.group(1), argument=m.group(2), raw=reply)
