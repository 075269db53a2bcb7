"""Parse each source's raw records into typed trajectories (thought, action, action input, observation,
final answer), keeping the source's own turns in ``Trajectory.original``.

A record that does not have the source's layout raises ``ParseError``; the pipeline skips it and
counts it in its statistics (FireAct's multimethod files, for example, hold a few rows that open with
an assistant turn).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from agentflan_eval.finetune.records import ToolSpec, Trajectory, TrajectoryStep, Turn


class ParseError(ValueError):
    """A record that is not a usable trajectory (malformed, or a trajectory that gave up)."""


def _params(**described: str) -> dict[str, Any]:
    """A JSON-schema object of required string parameters, ``name="description"``."""
    return {
        "type": "object",
        "properties": {k: {"type": "string", "description": v} for k, v in described.items()},
        "required": list(described),
    }


# The HotpotQA ReAct tools, described as in ReAct's instruction (finish becomes the final answer).
REACT_QA_TOOLS = [
    ToolSpec(
        name="search",
        description="Search the exact entity on Wikipedia and return the first paragraph "
        "if it exists; if not, return some similar entities to search.",
        parameters=_params(entity="the entity to search"),
    ),
    ToolSpec(
        name="lookup",
        description="Return the next sentence containing the keyword in the last passage "
        "successfully found by search.",
        parameters=_params(keyword="the keyword to look up"),
    ),
]
_REACT_ARG = {"search": "entity", "lookup": "keyword"}
_FIREACT_TURN = re.compile(r"Thought:\s*(.*?)\nAction:\s*(\w+)\[(.*)\]\s*\Z", re.DOTALL)


def parse_fireact(rec: dict[str, Any], rid: str) -> Trajectory:
    """FireAct ``{messages: [user question, assistant "Thought: ..\\nAction: tool[arg]", user
    "Observation: ..", ...]}``; ``finish[answer]`` is the final answer."""
    msgs = rec.get("messages")
    if not isinstance(msgs, list) or len(msgs) < 2 or msgs[0].get("role") != "user":
        raise ParseError("does not open with the user's question")
    steps: list[TrajectoryStep] = []
    for i, m in enumerate(msgs[1:], 1):
        if m.get("role") == "assistant":
            hit = _FIREACT_TURN.match(m.get("content") or "")
            if hit is None:
                raise ParseError(f"assistant turn {i} is not 'Thought: ..\\nAction: tool[arg]'")
            thought, tool, arg = hit.group(1).strip(), hit.group(2).lower(), hit.group(3).strip()
            if tool == "finish":
                steps.append(TrajectoryStep(thought=thought, final_answer=arg))
            elif tool in _REACT_ARG:
                steps.append(
                    TrajectoryStep(thought=thought, action=tool, action_input={_REACT_ARG[tool]: arg})
                )
            else:
                raise ParseError(f"unknown action {tool!r}")
        elif steps and steps[-1].action is not None and steps[-1].observation is None:
            steps[-1].observation = re.sub(r"^Observation:\s*", "", m.get("content") or "")
    if not steps or steps[-1].final_answer is None:
        raise ParseError("no finish[answer]")
    original = [
        Turn(role="user" if m["role"] != "assistant" else "assistant", content=m["content"]) for m in msgs
    ]
    return Trajectory(
        id=rid,
        source="fireact",
        query=msgs[0]["content"],
        tools=REACT_QA_TOOLS,
        steps=steps,
        original=original,
    )


# -- ToolBench -------------------------------------------------------------------------------------
def parse_toolbench(rec: dict[str, Any], rid: str) -> Trajectory:
    """A ToolBench DFSDT answer file: the last ``answer_generation.train_messages`` chain is the winning
    path (OpenAI function-call turns); ``Finish`` with ``give_answer`` is the final answer.

    Mid-trajectory user turns are DFSDT's "previous trials failed" prompts, search machinery rather
    than requests: they are dropped (and counted in ``metadata``).
    """
    gen, msgs = _toolbench_winning_chain(rec)
    tools = _toolbench_tools(gen)
    steps, dropped = _toolbench_steps(msgs[2:])
    query = re.sub(r"\s*Begin!\s*$", "", msgs[1]["content"].strip())
    system = (
        msgs[0]["content"]
        + "\nSpecifically, you have access to the following APIs: "
        + json.dumps(gen.get("function", []), ensure_ascii=False)
    )
    return Trajectory(
        id=rid,
        source="toolbench",
        query=query,
        tools=tools,
        steps=steps,
        original=[
            Turn(role="system", content=system),
            Turn(role="user", content=msgs[1]["content"]),
            *_toolllama_turns(steps),
        ],
        metadata={"dropped_user_turns": dropped},
    )


def _toolbench_winning_chain(rec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(``answer_generation``, its last message chain), checked to be a winning, valid trajectory that
    opens with the system and user turns."""
    gen = rec.get("answer_generation") or {}
    chains = gen.get("train_messages") or []
    if not rec.get("win") or not gen.get("valid_data") or not chains:
        raise ParseError("not a winning, valid trajectory")
    msgs = chains[-1]
    if len(msgs) < 3 or msgs[0]["role"] != "system" or msgs[1]["role"] != "user":
        raise ParseError("does not open with system and user turns")
    return gen, msgs


def _toolbench_tools(gen: dict[str, Any]) -> list[ToolSpec]:
    """The offered functions, less the ``Finish`` pseudo-function."""
    return [
        ToolSpec(name=f["name"], description=f.get("description", ""), parameters=f.get("parameters", {}))
        for f in gen.get("function", [])
        if f.get("name") != "Finish"
    ]


def _toolbench_steps(turns: list[dict[str, Any]]) -> tuple[list[TrajectoryStep], int]:
    """The steps after the opening turns, up to ``Finish(give_answer)``, and the number of user turns
    dropped. Assistant texts before a call become its thought; a function turn is the observation."""
    steps: list[TrajectoryStep] = []
    pending: list[str] = []
    dropped = 0
    for m in turns:
        if m["role"] == "assistant":
            if m.get("content"):
                pending.append(m["content"].strip())
            call = m.get("function_call")
            if not call:
                continue
            args = _json_args(call.get("arguments", "{}"))
            thought, pending = "\n".join(pending), []
            if call["name"] == "Finish":
                if args.get("return_type") != "give_answer":
                    raise ParseError("the trajectory gave up")
                steps.append(TrajectoryStep(thought=thought, final_answer=str(args.get("final_answer", ""))))
                break
            steps.append(TrajectoryStep(thought=thought, action=call["name"], action_input=args))
        elif m["role"] == "function" and steps and steps[-1].observation is None:
            steps[-1].observation = m.get("content") or ""
        elif m["role"] == "user":
            dropped += 1
    if not steps or steps[-1].final_answer is None:
        raise ParseError("no Finish(give_answer)")
    return steps, dropped


def _json_args(text: str) -> dict[str, Any]:
    try:
        args = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as e:
        raise ParseError(f"function arguments are not JSON ({e.msg})") from None
    if not isinstance(args, dict):
        raise ParseError("function arguments are not a JSON object")
    return args


def _toolllama_turns(steps: list[TrajectoryStep]) -> list[Turn]:
    """ToolLLaMA's ReAct text: "Thought: ..\\nAction: name\\nAction Input: {args}", results as tool turns."""
    out: list[Turn] = []
    for s in steps:
        if s.final_answer is not None:
            args = {"return_type": "give_answer", "final_answer": s.final_answer}
            name = "Finish"
        else:
            args, name = s.action_input, s.action or ""
        out.append(
            Turn(
                role="assistant",
                content=f"Thought: {s.thought}\nAction: {name}\nAction Input: "
                + json.dumps(args, ensure_ascii=False),
            )
        )
        if s.observation is not None:
            out.append(Turn(role="tool", content=s.observation))
    return out


# -- Knowledge Graph -------------------------------------------------------------------------------
KG_TOOLS = [
    ToolSpec(
        name="get_relations",
        description="Return the relations of an entity or variable.",
        parameters=_params(variable="an entity name or #k"),
    ),
    ToolSpec(
        name="get_neighbors",
        description="Return the entities linked to the variable by the relation, as a new variable.",
        parameters=_params(variable="an entity name or #k", relation="a relation"),
    ),
    ToolSpec(
        name="intersection",
        description="Intersect two variables of the same type into a new variable.",
        parameters=_params(variable1="#k", variable2="#k"),
    ),
    ToolSpec(
        name="get_attributes",
        description="Return the numerical attributes of a variable.",
        parameters=_params(variable="#k"),
    ),
    *(
        ToolSpec(
            name=f"arg{m}",
            description=f"The entity of the variable with the {w} value of the attribute.",
            parameters=_params(variable="#k", attribute="a numerical attribute"),
        )
        for m, w in (("max", "largest"), ("min", "smallest"))
    ),
    ToolSpec(
        name="count", description="The number of entities in the variable.", parameters=_params(variable="#k")
    ),
]
_KG_ARGS = {t.name: list(t.parameters["properties"]) for t in KG_TOOLS}
_KG_CALL = re.compile(r"(\w+)\((.*)\)\s*\Z", re.DOTALL)


@dataclass
class KGOntology:
    """Freebase relation domains and ranges (``fb_roles``) and numeric attributes (``vocab.json``)."""

    roles: dict[str, tuple[str, str]] = field(default_factory=dict)  # relation -> (domain, range)
    attributes: set[str] = field(default_factory=set)

    @classmethod
    def from_text(cls, fb_roles: str, vocab: dict[str, Any]) -> KGOntology:
        roles = {}
        for line in fb_roles.splitlines():
            parts = line.split()
            if len(parts) == 3:
                roles[parts[1]] = (parts[0], parts[2])
        return cls(roles, set(vocab.get("attributes", [])))

    @cached_property
    def _by_domain(self) -> dict[tuple[str, bool], list[str]]:
        index: dict[tuple[str, bool], list[str]] = {}
        for r, (d, _) in sorted(self.roles.items()):
            index.setdefault((d, r in self.attributes), []).append(r)
        return index

    def by_domain(self, domain: str, numeric: bool) -> list[str]:
        """Relations (or numeric attributes) whose domain is ``domain``, sorted."""
        return self._by_domain.get((domain, numeric), [])


def parse_kg(rec: dict[str, Any], rid: str, onto: KGOntology, distractors: int = 4) -> Trajectory:
    """A KG question with its gold action sequence (AgentBench ``kg_rl_all.json``).

    The data has no observations (they come from a live Freebase server), so they are reconstructed
    from the ontology in AgentBench's wording: a new variable's type is its relation's range, and a
    relation list holds the relations the gold program uses there plus up to ``distractors`` other
    relations of the same domain (chosen with a seed derived from the question id). There are no
    thoughts: KG rows supervise tool choice and arguments only.
    """
    names = {mid: name for name, mid in (rec.get("entities") or {}).items()}
    actions = rec.get("actions") or []
    if not actions:
        raise ParseError("no actions")
    rng = random.Random(int(hashlib.sha256(rid.encode()).hexdigest()[:8], 16))
    calls = []
    for a in actions:
        hit = _KG_CALL.match(a.strip())
        if hit is None or hit.group(1) not in _KG_ARGS:
            raise ParseError(f"unparsable action {a!r}")
        calls.append((hit.group(1), [x.strip() for x in hit.group(2).split(",")]))
    var_type: dict[str, str] = {}
    steps: list[TrajectoryStep] = []
    for i, (tool, args) in enumerate(calls):
        shown = [names.get(x, x) for x in args]
        obs = _kg_observation(tool, args, i, calls, var_type, onto, rng, distractors)
        steps.append(
            TrajectoryStep(action=tool, action_input=dict(zip(_KG_ARGS[tool], shown)), observation=obs)
        )
    steps.append(TrajectoryStep(final_answer=f"#{len(var_type) - 1}"))
    entities = ", ".join(names.values())
    query = f"Question: {rec['question']}\nEntities: [{entities}]"
    original = [Turn(role="user", content=query)]
    for s in steps[:-1]:
        original += [
            Turn(role="assistant", content=f"Action: {s.action}({', '.join(s.action_input.values())})"),
            Turn(role="user", content=f"Observation: {s.observation}"),
        ]
    original.append(Turn(role="assistant", content=f"Final Answer: {steps[-1].final_answer}"))
    return Trajectory(
        id=rid,
        source="kg",
        query=query,
        tools=KG_TOOLS,
        steps=steps,
        original=original,
        metadata={"reconstructed_observations": True},
    )


def _kg_observation(
    tool: str,
    args: list[str],
    i: int,
    calls: list[tuple[str, list[str]]],
    var_type: dict[str, str],
    onto: KGOntology,
    rng: random.Random,
    k: int,
) -> str:
    def new_var(typ: str) -> str:
        var = f"#{len(var_type)}"
        var_type[var] = typ
        return (
            f"variable {var}, which are instances of {typ}"
            if typ != "type.int"
            else f"variable {var}, which is a number"
        )

    if tool in ("get_relations", "get_attributes"):
        numeric = tool == "get_attributes"
        used = [
            a[1]
            for t, a in calls[i + 1 :]
            if len(a) > 1
            and a[0] == args[0]
            and t in (("argmax", "argmin") if numeric else ("get_neighbors",))
        ]
        domain = onto.roles.get(used[0], ("", ""))[0] if used else var_type.get(args[0], "")
        pool = [r for r in onto.by_domain(domain, numeric) if r not in used]
        shown = sorted(set(used) | set(rng.sample(pool, min(k, len(pool)))))
        return "[" + ", ".join(shown) + "]"
    if tool == "get_neighbors":
        return new_var(onto.roles.get(args[1], ("", "unknown"))[1])
    if tool == "count":
        return new_var("type.int")
    return new_var(var_type.get(args[0], "unknown"))  # intersection, argmax, argmin keep the type


# -- ALFWorld --------------------------------------------------------------------------------------
ALFWORLD_TOOLS = [
    ToolSpec(
        name="take_action",
        description="Perform one text action in the household, e.g. "
        "'go to cabinet 1', 'open fridge 1', 'take apple 1 from table 1', 'put apple 1 in/on "
        "sidetable 1', 'clean/heat/cool apple 1 with sinkbasin 1/microwave 1/fridge 1'.",
        parameters=_params(action="the action text"),
    )
]


def parse_alfworld(text: str, rid: str) -> Trajectory:
    """A ReAct ALFWorld prompt trajectory: the room and task, then ``> action`` lines each followed by
    the observation; ``> think: ..`` lines are thoughts (answered "OK.")."""
    head, _, body = text.partition("\n> ")
    if not body or "Your task is to:" not in head:
        raise ParseError("not an ALFWorld transcript")
    original = [Turn(role="user", content=head.strip())]
    steps: list[TrajectoryStep] = []
    thoughts: list[str] = []
    for chunk in ("> " + body).split("\n> "):
        action, _, obs = chunk.removeprefix("> ").partition("\n")
        action, obs = action.strip(), obs.strip()
        original += [Turn(role="assistant", content=action), Turn(role="user", content=obs)]
        if action.startswith("think:"):
            thoughts.append(action.removeprefix("think:").strip())
        else:
            steps.append(
                TrajectoryStep(
                    thought=" ".join(thoughts),
                    action="take_action",
                    action_input={"action": action},
                    observation=obs,
                )
            )
            thoughts = []
    return Trajectory(
        id=rid, source="alfworld", query=head.strip(), tools=ALFWORLD_TOOLS, steps=steps, original=original
    )


# -- OS interaction --------------------------------------------------------------------------------
OS_TOOLS = [
    ToolSpec(
        name="bash",
        description="Run a bash script in the Linux machine and return its output.",
        parameters=_params(script="the bash script"),
    )
]
_CODE = re.compile(r"```(?:bash|sh)?\n(.*?)```", re.DOTALL)


def parse_os(rec: dict[str, Any], rid: str) -> Trajectory:
    """An AgentBench OS training problem (``description``, ``explanation`` with one bash block).

    Only the first step exists offline: the command's output needs the problem's container, so the
    trajectory ends at the bash action (``metadata.first_step_only``)."""
    code = _CODE.search(rec.get("explanation") or "")
    if not rec.get("description") or code is None:
        raise ParseError("no description or no bash block in the explanation")
    thought = rec["explanation"][: code.start()]
    thought = re.sub(r"\s*You can use this command pattern[^\n]*\s*$", "", thought).strip()
    script = code.group(1).strip()
    step = TrajectoryStep(thought=thought, action="bash", action_input={"script": script})
    return Trajectory(
        id=rid,
        source="os",
        query=rec["description"],
        tools=OS_TOOLS,
        steps=[step],
        original=[
            Turn(role="user", content=rec["description"]),
            Turn(role="assistant", content=f"Think: {thought}\n\nAct: bash\n\n```bash\n{script}\n```"),
        ],
        metadata={"first_step_only": True},
    )


# -- AgentInstruct (Hub) ---------------------------------------------------------------------------
_THOUGHT = re.compile(
    r"^\s*(?:Thought|THOUGHT|Think)\s*:\s*(.*?)(?=\n\s*(?:Action|ACTION|Act|Final Answer)\s*:|\Z)", re.DOTALL
)
_ACT = re.compile(r"(?:Action|ACTION|Act)\s*:\s*(.*)\Z", re.DOTALL)
_FINAL = re.compile(r"Final Answer\s*:\s*(.*)\Z", re.DOTALL)
_CALL = re.compile(r"^\s*([\w.]+)\s*[\[(](.*)[\])]\s*\Z", re.DOTALL)
_BLOCK = re.compile(r"^\s*([\w.]+)\s*\n+```\w*\n(.*?)```", re.DOTALL)


def split_react_reply(text: str) -> TrajectoryStep:
    """One ReAct-style assistant reply in any of AgentInstruct's layouts (``Thought:``/``THOUGHT:``/
    ``Think:`` then ``Action:``/``ACTION:``/``Act:``; ``tool[arg]``, ``tool(arg)``, or a tool name and a
    fenced block; ``Final Answer:``/``answer(..)``/``finish[..]`` end the episode)."""
    t = _THOUGHT.search(text)
    thought = t.group(1).strip() if t else ""
    final = _FINAL.search(text)
    if final:
        return TrajectoryStep(thought=thought, final_answer=final.group(1).strip())
    act = _ACT.search(text)
    if act is None:
        return TrajectoryStep(thought=thought or text.strip())
    body = act.group(1).strip()
    hit = _CALL.match(body) or _BLOCK.match(body)
    name, arg = (hit.group(1), hit.group(2).strip()) if hit else (body.split("\n", 1)[0].strip(), body)
    if name.lower() in ("answer", "finish"):
        return TrajectoryStep(thought=thought, final_answer=arg)
    return TrajectoryStep(thought=thought, action=name, action_input={"input": arg})


def parse_agentinstruct(rec: dict[str, Any], rid: str, source: str) -> Trajectory:
    """A THUDM/AgentInstruct row ``{conversations: [{from: human|gpt, value, loss}], id}``.

    The human turns before the first reply with an action are the task prompt (instructions, few-shot
    exchange, task); later human turns are observations."""
    conv = rec.get("conversations") or []
    if len(conv) < 2:
        raise ParseError("fewer than two turns")
    original = [
        Turn(
            role="assistant" if c["from"] == "gpt" else "user",
            content=c["value"],
            loss=bool(c.get("loss", c["from"] == "gpt")),
        )
        for c in conv
    ]
    first = next((i for i, c in enumerate(conv) if c["from"] == "gpt" and _ACT.search(c["value"])), None)
    if first is None:
        raise ParseError("no reply with an action")
    query = "\n\n".join(c["value"] for c in conv[:first] if c["from"] != "gpt")
    steps: list[TrajectoryStep] = []
    for c in conv[first:]:
        if c["from"] == "gpt":
            steps.append(split_react_reply(c["value"]))
        elif steps and steps[-1].action is not None and steps[-1].observation is None:
            steps[-1].observation = c["value"]
    return Trajectory(id=rid, source=source, query=query, steps=steps, original=original)
