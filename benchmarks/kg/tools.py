"""The KG tools with AgentBench's semantics, and its way of running one ``Action:`` line.

Variables ``#0, #1, ...`` are programs (see ``program.py``), created by get_neighbors, intersection, union,
count, argmax and argmin and executed only when listed (get_relations / get_attributes) or given as
the final answer. get_neighbors needs the relation to have been listed for that variable by
get_relations, argmax/argmin the attribute by get_attributes; intersection and union need both variables
to have the same type (the range of the relation that made them, from Freebase's ``fb_roles``).
Observations and error texts are AgentBench's (THUDM/AgentTuning @ e33a45d,
``AgentBench.old/src/tasks/knowledgegraph/{task.py,api.py}``). Its task looked a called name up among the
globals of its module (``getattr(sys.modules[__name__], name)``, task.py l.243), so every function of
``api.py`` can be called, ``union`` and ``final_execute`` included, not only the seven the prompt lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agentflan_eval.benchmarks.kg.program import (
    Program,
    ProgramError,
    answer_query,
    entity_relations_query,
    relations_query,
)
from agentflan_eval.benchmarks.kg.sparql import QueryError, SparqlClient

# The functions of api.py, which the task module imported with ``from .api import *``.
TOOLS = (
    "get_relations",
    "get_neighbors",
    "intersection",
    "union",
    "get_attributes",
    "argmax",
    "argmin",
    "count",
    "final_execute",
)
# Every other global of AgentBench's task module (its imports, classes, constants; api.py's too). Calling one
# fails only after the arguments were read, so its error text shows this call's arguments; an unknown name
# fails before, and the text shows the last arguments read (see ``KGSession._shown``).
_MODULE_GLOBALS = frozenset(
    {
        *("Task", "Dataset", "DataPiece", "SparqlExecuter", "KnowledgeGraph", "INSTRUCTIONS", "DEMOS"),
        *("ONE_SHOT", "re", "sys", "json", "Union", "Path", "postprocess_raw_code", "lisp_to_sparql"),
        *("range_info", "path", "f", "vocab", "attributes", "relations", "variable_relations_cache"),
        *("variable_attributes_cache", "Variable", "__name__", "__doc__", "__package__", "__loader__"),
        *("__spec__", "__file__", "__cached__", "__builtins__"),
    }
)
_MID = re.compile(r"^(m|f)\.[\w_]+$")
# What a bad call can raise: AgentBench turned every one of these into "cannot be executed".
_CALL_ERRORS = (ProgramError, QueryError, KeyError, IndexError, ValueError, TypeError, AttributeError)


@dataclass(frozen=True)
class Ontology:
    relations: frozenset[str]  # vocab.json "relations": what get_relations may list
    attributes: frozenset[str]  # vocab.json "attributes": what get_attributes may list
    range_of: dict[str, str]  # relation -> type of its objects (fb_roles)

    @classmethod
    def load(cls, vocab: Path, fb_roles: Path) -> Ontology:
        v = json.loads(vocab.read_text(encoding="utf-8"))
        range_of = {}
        with open(fb_roles, encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 3:
                    range_of[parts[1]] = parts[2]
        return cls(frozenset(v["relations"]), frozenset(v["attributes"]), range_of)


@dataclass(frozen=True)
class Variable:
    type: str
    program: Program


@dataclass
class KGSession:
    """One episode's variables and listing caches."""

    client: SparqlClient
    ontology: Ontology
    entities: dict[str, str]  # name as shown to the model -> Freebase mid
    variables: list[Variable] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # calls that executed, as AgentBench logs them
    _relations: dict[str, list[str]] = field(default_factory=dict)
    _attributes: dict[str, list[str]] = field(default_factory=dict)
    # The last arguments parsed in the episode: AgentBench's error text reuses them when a later call
    # fails before its own arguments are parsed (a local that outlives its loop), so this does too.
    _shown: list[str] | None = None

    def run_line(self, line: str) -> str:
        """Execute the first tool call of an ``Action:`` line that works; the observation text."""
        tools: dict[str, Callable[..., tuple[Variable | None, str]]] = {n: getattr(self, n) for n in TOOLS}
        message = "Function is not executed!"
        for name in re.findall(r"(\w+)\(", line):
            try:
                if name not in tools and name not in _MODULE_GLOBALS:
                    raise KeyError(name)  # AgentBench's getattr failed before it read the arguments
                args = self._shown = re.split(r"\s*,\s*", re.findall(rf"{name}\((.+?)\)", line)[0])
                if name not in tools:
                    raise TypeError(f"{name} is not one of the tools")  # a class, module or constant
                var, message = tools[name](*[self._resolve(a) for a in args])
            except _CALL_ERRORS:
                message = self._call_error(name)
                continue
            self.actions.append(f"{name}({', '.join(args)})")
            if var is not None:
                message = message.replace("##", f"#{len(self.variables)}")
                self.variables.append(var)
            break
        return message

    def _call_error(self, name: str) -> str:
        if self._shown is None:
            return (
                f"I may make a syntax error when calling {name} (e.g., unmatched parenthesis). "
                "I need to fix it and reuse the tool"
            )
        call = f"{name}({', '.join(self._shown)})"
        if name == "intersection":
            return (
                f"{call} cannot be executed. The two variables are not of the same type. You may further "
                "explore them by call get_relations"
            )
        return f"{call} cannot be executed. You may make a mistake and need to fix it."

    def answer(self, index: int) -> list[str]:
        """Execute variable ``#index`` (IndexError when there is no such variable)."""
        return self.client.select(answer_query(self.variables[index].program))

    def _resolve(self, arg: str) -> Variable | str:
        bare = arg.replace("variable ", "").replace("Variable ", "")
        if bare.startswith("#"):
            return self.variables[int(bare[1:])]
        return self.entities.get(bare, arg)

    @staticmethod
    def _program(v: Variable | str) -> Program:
        if isinstance(v, Variable):
            return v.program
        if not _MID.match(v):
            raise ValueError("must be a variable or an entity")
        return Program.entity(v)

    # -- the tools: each returns (new variable or None, observation) ------------------------
    def get_relations(self, v: Variable | str) -> tuple[None, str]:
        p = self._program(v)
        query = entity_relations_query(str(p.args[0])) if p.op == "ENTITY" else relations_query(p)
        rels = sorted(set(self.client.select(query)) & self.ontology.relations)
        self._relations[str(p)] = rels
        return None, f"Observation: [{', '.join(rels)}]"

    def get_neighbors(self, v: Variable | str, relation: str) -> tuple[Variable, str]:
        p = self._program(v)
        if relation not in self._relations[str(p)]:
            raise ValueError("relation must be a relation of the variable (from get_relations)")
        rng = self.ontology.range_of[relation]
        return Variable(
            rng, Program("JOIN", (relation, p))
        ), f"Observation: variable ##, which are instances of {rng}"

    def intersection(self, a: Variable, b: Variable) -> tuple[Variable, str]:
        return self._combine("AND", a, b)

    def union(self, a: Variable, b: Variable) -> tuple[Variable, str]:
        """Callable in AgentBench though not in its prompt; its program has no SPARQL pattern (``program.py``)."""
        return self._combine("OR", a, b)

    @staticmethod
    def _combine(op: Literal["AND", "OR"], a: Variable, b: Variable) -> tuple[Variable, str]:
        if a.type != b.type:
            raise ValueError("the two variables must have the same type")
        return Variable(
            a.type, Program(op, (a.program, b.program))
        ), f"Observation: variable ##, which are instances of {a.type}"

    def final_execute(self, v: Variable) -> tuple[None, str]:
        """AgentBench unpacked the answer list into (variable, observation): it works with exactly two answers,
        and the observation is the second."""
        _first, second = self.client.select(answer_query(v.program))
        return None, second

    def get_attributes(self, v: Variable) -> tuple[None, str]:
        attrs = sorted(set(self.client.select(relations_query(v.program))) & self.ontology.attributes)
        self._attributes[str(v.program)] = attrs
        return None, f"Observation: [{', '.join(attrs)}]"

    def _superlative(
        self, op: Literal["ARGMAX", "ARGMIN"], v: Variable, attribute: str
    ) -> tuple[Variable, str]:
        if attribute not in self._attributes[str(v.program)]:
            raise ValueError("attribute must be an attribute of the variable (from get_attributes)")
        return Variable(
            v.type, Program(op, (v.program, attribute))
        ), f"Observation: variable ##, which are instances of {v.type}"

    def argmax(self, v: Variable, attribute: str) -> tuple[Variable, str]:
        return self._superlative("ARGMAX", v, attribute)

    def argmin(self, v: Variable, attribute: str) -> tuple[Variable, str]:
        return self._superlative("ARGMIN", v, attribute)

    def count(self, v: Variable) -> tuple[Variable, str]:
        return Variable(
            "type.int", Program("COUNT", (v.program,))
        ), "Observation: variable ##, which is a number"
