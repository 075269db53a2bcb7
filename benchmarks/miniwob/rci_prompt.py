"""AgentTuning's MiniWoB++ prompts and instruction grammar (RCI's, as ``eval_heldout/miniwob++`` ran them).

Followed: THUDM/AgentTuning @ e33a45d7, ``eval_heldout/miniwob++/prompt.py`` (regexes, per-task prompt
files, ``replace_regex`` with ``llm = "davinci"``), ``llm_agent.py`` (``BIG_PROMPT`` l.36-38, the chat of
``get_response`` l.407-417, ``webpage_state_prompt`` l.247-260, ``instruction_history_prompt`` l.233-245,
``rci_plan`` l.267-276, ``process_instruction`` l.308-319, ``get_plan_step`` l.321-326,
``generate_action`` l.520-569, ``check_regex`` l.298-306). The prompt texts themselves are read from the
data dir (``agenttuning/miniwob++/prompt/``, byte for byte the original's files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agentflan_eval.data import read_json
from agentflan_eval.records import Message

BIG_PROMPT = (
    "You are an agent embarking on a computer task. Each turn, you will be provided a task and an accessibility "
    "tree describing what is on the screen now, and you should either devise a overall plan to solve this task "
    "or to provide an instruction to execute. The plan could be multi-step, and each step should strictly "
    "corresponds to one instruction to execute. When devising a plan to execute, list the steps in order and "
    'precede each step with a numerical index starting from 1, e.g. "1." or "2.", and when executing, follow the '
    "plan strictly. When asked to provide an action to execute, refer strictly to the regular expression to "
    "ensure that your action is valid to execute."
)
NEW_TASK = "The previous task has ended, and I'll start a new task now.\n\n"
FEW_SHOT_EXAMPLES = (0, 5)  # the entries of prompt/few-shot.json shown before every request
CRITIQUE = "\n\nFind problems with this plan for the given task compared to the example plans.\n\n"
IMPROVE = "\n\nBased on this, what is the plan for the agent to complete the task?\n\n"
ACTION_LEAD = "Based on the plan and the history of instructions executed so far, "

REGEX = {
    "davinci_type": r"^type\s.{1,}$",
    "chatgpt_type": r'^type\s[^"]{1,}$',
    "press": r"^press\s(enter|arrowleft|arrowright|arrowup|arrowdown|backspace)$",
    "clickxpath": r"^clickxpath\s.{1,}$",
    "clickoption": r"^clickoption\s.{1,}$",
    "movemouse": r"^movemouse\s.{1,}$",
}
PROMPT_FILES = ("example", "first_action", "base", "initialize_plan", "action", "rci_action", "update_action")


@dataclass(frozen=True)
class TaskPrompts:
    """One task's prompt files (``prompt/<task>/`` when that folder exists, else ``prompt/``)."""

    example: str
    first_action: str
    base: str
    initialize_plan: str
    action: str
    rci_action: str
    update_action: str

    @classmethod
    def load(cls, prompt_dir: Path, task: str) -> TaskPrompts:
        folder = prompt_dir / task if (prompt_dir / task).is_dir() else prompt_dir
        text = {name: (folder / f"{name}.txt").read_text(encoding="utf-8") for name in PROMPT_FILES}
        text["base"] = fill_regex(text["base"])
        text["rci_action"] = fill_regex(text["rci_action"])
        return cls(**text)


def fill_regex(template: str) -> str:
    """``Prompt.replace_regex`` with ``llm = "davinci"`` (hard-coded upstream)."""
    for key, name in (
        ("{type}", "davinci_type"),
        ("{press}", "press"),
        ("{clickxpath}", "clickxpath"),
        ("{clickoption}", "clickoption"),
        ("{movemouse}", "movemouse"),
    ):
        template = template.replace(key, REGEX[name])
    return template


def opening(few_shot_file: Path) -> list[Message]:
    """The turns before every request: BIG_PROMPT, 'Ok.', two solved examples (the system prompt is the chat
    template's: AgentLM's llama-2 one, as ``get_conversation_template('llama-2')`` set it)."""
    examples = read_json(few_shot_file)
    msgs = [Message(role="user", content=BIG_PROMPT), Message(role="assistant", content="Ok.")]
    for n, i in enumerate(FEW_SHOT_EXAMPLES):
        human, gpt = (c["value"] for c in examples[i]["conversations"][:2])
        msgs += [
            Message(role="user", content=(NEW_TASK if n else "") + human),
            Message(role="assistant", content=gpt),
        ]
    return msgs


def request(pt: str) -> Message:
    return Message(role="user", content=NEW_TASK + pt)


def clean_reply(text: str) -> str:
    """TGI path of ``get_response``: the text before any ``[INST]``, stripped."""
    return text.split("[INST]")[0].strip()


def process_instruction(text: str) -> str:
    cut = text.find("`")
    if cut != -1:
        text = text[:cut]
    text = text.replace("`", "").replace("\n", "").replace("\\n", "\n").strip()
    return text.strip("'")


def matches_grammar(instruction: str) -> bool:
    """The negation of upstream ``check_regex`` (which is True when the instruction matches nothing)."""
    return any(re.search(p, instruction, flags=re.IGNORECASE) for p in REGEX.values())


def plan_steps(plan: str) -> int:
    """``get_plan_step``: one more than the first missing "N." — the number of actions the episode may take."""
    idx = 1
    while f"{idx}." in plan:
        idx += 1
    return idx


def webpage_state(prompts: TaskPrompts, html: str, task: str, init_plan: bool) -> str:
    pt = "\n\nBelow is the HTML code of the webpage where the agent should solve a task.\n" + html + "\n\n"
    if prompts.example and init_plan:
        pt += prompts.example + "\n\n"
    return pt + "Current task: " + task + "\n"


def plan_prompt(prompts: TaskPrompts, html: str, task: str) -> str:
    return prompts.base + webpage_state(prompts, html, task, init_plan=True) + prompts.initialize_plan


def history(past: list[str]) -> str:
    pt = "\n\nWe have a history of instructions that have been already executed by the autonomous agent so far.\n"
    if not past:
        pt += "No instruction has been executed yet."
    for i, inst in enumerate(past):
        pt += f"{i + 1}: {inst}\n"
    return pt + "\n\n"


def action_prompt(prompts: TaskPrompts, html: str, task: str, plan: str, past: list[str]) -> str:
    """``generate_action``'s prompt. Upstream's ``{prev_inst}`` substitution is overwritten by the ``{order}``
    one that follows it, so only ``{order}`` is ever filled; kept so."""
    pt = prompts.base + webpage_state(prompts, html, task, init_plan=False)
    if prompts.initialize_plan:
        pt += "\n\nHere is a plan you are following now.\n" + plan + "\n\n"
    pt += history(past)
    if not past:
        ask = prompts.first_action
    else:
        n = len(past)
        ask = prompts.action.replace("{order}", {1: "2nd", 2: "3rd"}.get(n, f"{n + 1}th"))
    return pt + ACTION_LEAD + ask
