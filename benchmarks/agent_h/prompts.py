"""The two Agent-H prompt formats, as in the Agent-FLAN paper.

``react``: a system prompt listing the tools and the Thought / Action / Action Input protocol,
worded after Lagent's ReAct protocol (the one InternLM and Agent-FLAN use), including its
direct-answer path (Thought / Final Answer). With no tools the same protocol says none exist.
``chat``: the general conversation format, tools given as JSON function definitions in a system
message with a JSON function-call convention; with no tools there is no system message at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from agentflan_eval.benchmarks.agent_h.tools import ApiSpec
from agentflan_eval.records import Message

REACT_SYSTEM = """You are an assistant that can use external tools.
{tool_section}
To use a tool, reply in this format:
Thought: think about what you need to do and whether a tool is needed
Action: the tool name, one of [{tool_names}]
Action Input: the input to the tool, as a JSON object
The result of the tool will then be given to you in this format:
Response: the result of the tool call
If you already know the answer, or you do not need a tool, reply in this format:
Thought: your reasoning
Final Answer: your answer to the user
Begin!"""

CHAT_SYSTEM = """You are a helpful assistant. You can call the following functions:
{functions}
To call a function, reply with only a JSON object of the form {{"name": "<function name>", "arguments": {{"<argument>": <value>}}}}.
If no function is needed, answer the user directly."""


def _api_lines(apis: Sequence[ApiSpec]) -> str:
    return "\n".join(json.dumps(a.function_def(), ensure_ascii=False) for a in apis)


def render(fmt: str, query: str, apis: Sequence[ApiSpec]) -> list[Message]:
    """The opening messages of one sample."""
    if fmt == "react":
        section = (
            f"You have access to the following tools:\n{_api_lines(apis)}"
            if apis
            else "No tools are available to you."
        )
        system = REACT_SYSTEM.format(tool_section=section, tool_names=", ".join(a.name for a in apis))
        return [Message(role="system", content=system), Message(role="user", content=query)]
    if fmt == "chat":
        if not apis:
            return [Message(role="user", content=query)]
        return [
            Message(role="system", content=CHAT_SYSTEM.format(functions=_api_lines(apis))),
            Message(role="user", content=query),
        ]
    raise ValueError(f"unknown Agent-H format {fmt!r}")
