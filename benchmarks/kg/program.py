"""KG programs (the s-expressions AgentBench's variables stand for) and the SPARQL that executes them.

A variable made by a tool is a program over Freebase: ``(JOIN (R rel) x)`` (objects of ``x`` via ``rel``),
``(AND a b)``, ``(OR a b)``, ``(COUNT a)``, ``(ARGMAX a attr)``/``(ARGMIN a attr)``. The query is the one
AgentBench's ``lisp_to_sparql`` builds for it (THUDM/AgentTuning @ e33a45d,
``AgentBench.old/src/tasks/knowledgegraph/utils/logic_form_util.py`` l.475-700), quirks included:

- sub-programs are numbered in post-order; AND, COUNT and a superlative make their node the same variable
  as their arguments; OR makes no pattern at all, so a union's variable is unbound (its answer is empty)
  and, inside a larger program, constrains nothing;
- the answer ``?x`` keeps only English or untagged literals and leaves out every entity of the program;
- with a superlative, the extreme ``?sk0`` is chosen in a sub-select that has those filters (a topic
  entity is left out *before* the extreme is taken), and the outer query, which has none, returns every
  member with that value;
- a program with two superlatives, or a count and a superlative, gives malformed SPARQL (two ORDER BY;
  unbalanced braces) that Virtuoso rejects: ``ProgramError`` here, without asking the store.

Where AgentBench wrote Virtuoso's dialect (``OR``, ``SELECT COUNT DISTINCT ?x``) this writes standard
SPARQL 1.1 (``||``, ``(COUNT(DISTINCT ?x) AS ?value)``), which Virtuoso and rdflib both run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PREFIX = "PREFIX ns: <http://rdf.freebase.com/ns/>"
Op = Literal["ENTITY", "JOIN", "AND", "OR", "COUNT", "ARGMAX", "ARGMIN"]
_LANG = "FILTER (!isLiteral(?x) || lang(?x) = '' || langMatches(lang(?x), 'en'))"
_ENTITY_PREFIXES = (
    "m.",
    "g.",
)  # what lisp_to_sparql takes for an entity; anything else it writes as a literal


class ProgramError(ValueError):
    """A program whose query AgentBench's code could not produce or Virtuoso would reject."""


@dataclass(frozen=True)
class Program:
    op: Op
    args: tuple[Program | str, ...]

    @staticmethod
    def entity(mid: str) -> Program:
        return Program("ENTITY", (mid,))

    def __str__(self) -> str:
        if self.op == "ENTITY":
            return str(self.args[0])
        if self.op == "JOIN":
            return f"(JOIN (R {self.args[0]}) {self.args[1]})"
        return f"({self.op} {' '.join(str(a) for a in self.args)})"


Term = int | str  # a node's variable, or a term written as is


@dataclass
class _Plan:
    """lisp_to_sparql's intermediate state: triple patterns over node variables, and which nodes are one."""

    triples: list[tuple[Term, str, Term]] = field(default_factory=list)
    parent: dict[int, int] = field(default_factory=dict)
    entities: set[str] = field(default_factory=set)
    superlatives: list[str] = field(default_factory=list)
    count: bool = False
    nodes: int = 0

    def root(self, v: int) -> int:
        while v in self.parent:
            v = self.parent[v]
        return v

    def same(self, a: int, b: int) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def visit(self, p: Program) -> Term:
        """Plan ``p``'s sub-programs, then ``p`` itself; its variable (or, for an entity, its mid)."""
        if p.op == "ENTITY":
            return str(p.args[0])
        refs = [self.visit(a) for a in p.args if isinstance(a, Program)]
        i, self.nodes = self.nodes, self.nodes + 1
        if p.op == "JOIN":
            (sub,) = refs
            if isinstance(sub, str):
                if not sub.startswith(_ENTITY_PREFIXES):
                    raise ProgramError(f"{sub} is written as a literal, which is no SPARQL term")
                self.entities.add(sub)
                sub = f"ns:{sub}"
            self.triples.append((sub, str(p.args[0]), i))
        elif p.op in ("AND", "COUNT", "ARGMAX", "ARGMIN"):
            for r in refs:
                assert isinstance(r, int), "AND, COUNT and superlatives take variables"
                self.same(i, r)
            if p.op == "COUNT":
                self.count = True
            elif p.op != "AND":
                self.triples.append((i, str(p.args[1]), "?sk0"))
                self.superlatives.append(p.op)
        return i  # OR: a node with no pattern


def answer_query(p: Program) -> str:
    """The members of ``p`` (or their number, for a program with a COUNT), as AgentBench queried them."""
    plan = _Plan()
    top = plan.visit(p)
    if not isinstance(top, int):
        raise ProgramError("an entity is not a program")
    question = plan.root(top)

    def term(t: Term) -> str:
        if isinstance(t, str):
            return t
        r = plan.root(t)
        return "?x" if r == question else f"?x{r}"

    body = [f"{term(s)} ns:{rel} {term(o)} ." for s, rel, o in plan.triples]
    filters = [f"FILTER (?x != ns:{e})" for e in sorted(plan.entities)]
    if len(plan.superlatives) > 1:
        raise ProgramError("two superlatives in one program: AgentBench's query has two ORDER BY clauses")
    if plan.superlatives and plan.count:
        raise ProgramError("a count of a superlative: AgentBench's query has unbalanced braces")
    if plan.count:
        lines = ["SELECT (COUNT(DISTINCT ?x) AS ?value)", "WHERE {", _LANG, *body, *filters, "}"]
    elif plan.superlatives:
        order = "ORDER BY DESC(?sk0)" if plan.superlatives[0] == "ARGMAX" else "ORDER BY ?sk0"
        inner = ["{SELECT ?sk0", "WHERE {", _LANG, *body, *filters, "}", order, "LIMIT 1", "}"]
        lines = ["SELECT DISTINCT ?x", "WHERE {", *body, *inner, "}"]
    else:
        lines = ["SELECT DISTINCT ?x", "WHERE {", _LANG, *body, *filters, "}"]
    return "\n".join([PREFIX, *lines])


def relations_query(p: Program) -> str:
    """Outgoing relations of the members of ``p`` (get_relations / get_attributes of a variable): the answer
    query as a sub-select, as AgentBench wrapped it (of a count, whose sub-select projects no ``?x``, that
    leaves ``?x`` free: the relations of the whole graph)."""
    inner = answer_query(p).split("\n", 1)[1]
    return f"{PREFIX}\nSELECT DISTINCT ?rel\nWHERE {{\n?x ?rel ?obj .\n{{\n{inner}\n}}\n}}"


def entity_relations_query(mid: str) -> str:
    """Outgoing Freebase relations of one entity (AgentBench's ``get_out_relations``)."""
    return (
        f"{PREFIX}\nSELECT DISTINCT ?rel\nWHERE {{\nns:{mid} ?rel ?obj .\n"
        f'FILTER regex(str(?rel), "^http://rdf.freebase.com/ns/")\n}}'
    )
