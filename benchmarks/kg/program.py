"""KG programs (the s-expressions AgentBench's variables stand for) and the SPARQL that executes them.

A variable made by a tool is a program over Freebase: ``(JOIN (R rel) x)`` (objects of ``x`` via
``rel``), ``(AND a b)``, ``(COUNT a)``, ``(ARGMAX a attr)``/``(ARGMIN a attr)``. The SPARQL follows
AgentBench's ``lisp_to_sparql`` (GrailQA): ``SELECT DISTINCT ?x`` with the English-literal filter and
the program's entities excluded from the answer; superlatives keep every tie through a sub-select of
the extreme value. Where AgentBench wrote Virtuoso's dialect (``OR``, ``SELECT COUNT DISTINCT ?x``)
this writes standard SPARQL 1.1 (``||``, ``COUNT(DISTINCT ?x)``), which Virtuoso and rdflib both run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PREFIX = "PREFIX ns: <http://rdf.freebase.com/ns/>"
Op = Literal["ENTITY", "JOIN", "AND", "COUNT", "ARGMAX", "ARGMIN"]
_LANG = "FILTER (!isLiteral(?x) || lang(?x) = '' || langMatches(lang(?x), 'en'))"


class ProgramError(ValueError):
    """A program that has no SPARQL form (e.g. a count used as a set)."""


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

    def entities(self) -> set[str]:
        if self.op == "ENTITY":
            return {str(self.args[0])}
        return set().union(*(a.entities() for a in self.args if isinstance(a, Program)))


class _Compiler:
    def __init__(self) -> None:
        self.n = 0

    def fresh(self, stem: str) -> str:
        self.n += 1
        return f"?{stem}{self.n}"

    def patterns(self, p: Program, var: str) -> list[str]:
        """Graph patterns that bind ``var`` to each member of the set ``p`` denotes."""
        if p.op == "JOIN":
            rel, sub = p.args
            assert isinstance(sub, Program)
            if sub.op == "ENTITY":
                return [f"ns:{sub.args[0]} ns:{rel} {var} ."]
            inner = self.fresh("v")
            return [*self.patterns(sub, inner), f"{inner} ns:{rel} {var} ."]
        if p.op == "AND":
            a, b = p.args
            assert isinstance(a, Program) and isinstance(b, Program)
            return [*self.patterns(a, var), *self.patterns(b, var)]
        if p.op in ("ARGMAX", "ARGMIN"):
            sub, attr = p.args
            assert isinstance(sub, Program)
            sk, inner = self.fresh("sk"), self.fresh("v")
            order = f"DESC({sk})" if p.op == "ARGMAX" else sk
            best = " ".join([*self.patterns(sub, inner), f"{inner} ns:{attr} {sk} ."])
            return [
                *self.patterns(sub, var),
                f"{var} ns:{attr} {sk} .",
                f"{{ SELECT {sk} WHERE {{ {best} }} ORDER BY {order} LIMIT 1 }}",
            ]
        raise ProgramError(f"{p.op} cannot be used as a set of entities")


def answer_query(p: Program) -> str:
    """The members of ``p`` (or their number, for a COUNT program)."""
    count = p.op == "COUNT"
    body = p.args[0] if count else p
    assert isinstance(body, Program)
    where = [*_Compiler().patterns(body, "?x"), _LANG]
    where += [f"FILTER (?x != ns:{e})" for e in sorted(p.entities())]
    select = "SELECT (COUNT(DISTINCT ?x) AS ?value)" if count else "SELECT DISTINCT ?x"
    return "\n".join([PREFIX, select, "WHERE {", *where, "}"])


def relations_query(p: Program) -> str:
    """Outgoing relations of the members of ``p`` (get_relations / get_attributes of a variable)."""
    if p.op == "COUNT":
        raise ProgramError("a count has no relations")
    inner = answer_query(p).split("\n", 1)[1]
    return f"{PREFIX}\nSELECT DISTINCT ?rel\nWHERE {{\n?x ?rel ?obj .\n{{\n{inner}\n}}\n}}"


def entity_relations_query(mid: str) -> str:
    """Outgoing Freebase relations of one entity (AgentBench's ``get_out_relations``)."""
    return (
        f"{PREFIX}\nSELECT DISTINCT ?rel\nWHERE {{\nns:{mid} ?rel ?obj .\n"
        f'FILTER regex(str(?rel), "^http://rdf.freebase.com/ns/")\n}}'
    )
