"""Format alignment: ReAct trajectories become natural multi-turn chat (Agent-FLAN §3.1).

The paper's observation is that ReAct's rigid "Thought:/Action:/Action Input:" text entangles format
following with reasoning and sits far from the chat data the model was pre-trained on. Aligned, a
thought is plain assistant text, a tool call is an explicit function-call turn
(``{"name": .., "arguments": {..}}``), an observation is a tool turn, and the final answer is plain
assistant text. A configurable share of trajectories keeps the source's own ReAct turns (default
10 %, as the released ``*_react_10p`` split suggests) so the format itself is still learned.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

from agentflan_eval.finetune.records import Conversation, ToolSpec, Trajectory, Turn

DEFAULT_REACT_SHARE = 0.1


def tools_system_prompt(tools: Sequence[ToolSpec]) -> str:
    """The system turn that offers the tools (an empty list says so: negative sample (a))."""
    if not tools:
        return "You are a helpful assistant. No tools are available in this conversation: answer directly."
    listed = json.dumps([t.model_dump() for t in tools], ensure_ascii=False)
    return (
        "You are a helpful assistant that can use tools. Available tools:\n" + listed + "\nTo use a tool, "
        "reply with a function call; its result comes back as a tool message. If no tool is needed, "
        "or once you know the answer, reply in plain text."
    )


def function_call(name: str, arguments: dict) -> str:
    return json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)


def aligned_conversation(traj: Trajectory) -> Conversation:
    """System (tools), user (query), then per step: thought → assistant text, action → function-call
    turn, observation → tool turn, final answer → assistant text. Every assistant turn has loss on;
    ``metadata.function_call_turns`` lists the function-call turns for decomposition."""
    turns = [
        Turn(role="system", content=tools_system_prompt(traj.tools)),
        Turn(role="user", content=traj.query),
    ]
    calls: list[int] = []
    for step in traj.steps:
        if step.thought:
            turns.append(Turn(role="assistant", content=step.thought, loss=True, capability="reasoning"))
        if step.action is not None:
            calls.append(len(turns))
            turns.append(
                Turn(
                    role="assistant",
                    content=function_call(step.action, step.action_input),
                    loss=True,
                    capability="retrieval",
                )
            )
            if step.observation is not None:
                turns.append(Turn(role="tool", content=step.observation))
        if step.final_answer is not None:
            turns.append(Turn(role="assistant", content=step.final_answer, loss=True, capability="reasoning"))
    return Conversation(
        id=f"{traj.id}/aligned",
        source=traj.source,
        format="aligned",
        turns=trim(turns),
        metadata={**traj.metadata, "function_call_turns": calls},
    )


def react_conversation(traj: Trajectory) -> Conversation:
    """The source's own ReAct turns, every assistant turn supervised as format following."""
    turns = [
        t.model_copy(update={"loss": True, "capability": "instruct"})
        if t.role == "assistant"
        else t.model_copy(update={"loss": False, "capability": None})
        for t in traj.original
    ]
    return Conversation(
        id=f"{traj.id}/react",
        source=traj.source,
        format="react",
        turns=trim(turns),
        metadata=dict(traj.metadata),
    )


def trim(turns: list[Turn]) -> list[Turn]:
    """Drop trailing non-assistant turns: nothing after the last reply is supervised."""
    end = max((i for i, t in enumerate(turns) if t.role == "assistant"), default=-1)
    return turns[: end + 1]


def split_react(
    trajs: Sequence[Trajectory], share: float, seed: int
) -> tuple[list[Trajectory], list[Trajectory]]:
    """(kept in ReAct format, to align): exactly round(share × n) per source, chosen with the seed."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"react share must be in [0, 1], got {share}")
    by_source: dict[str, list[Trajectory]] = {}
    for t in trajs:
        by_source.setdefault(t.source, []).append(t)
    react_ids: set[str] = set()
    for source, group in sorted(by_source.items()):
        rng = random.Random(f"{seed}/react/{source}")
        react_ids |= {t.id for t in rng.sample(group, round(share * len(group)))}
    return [t for t in trajs if t.id in react_ids], [t for t in trajs if t.id not in react_ids]
