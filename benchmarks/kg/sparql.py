"""SPARQL clients: a real HTTP client for a Freebase endpoint (Virtuoso) and an in-process rdflib graph.

Both answer a SELECT of one variable with the bound values as strings, the Freebase namespace cut
off and Virtuoso's ``-08:00`` time-zone suffix removed, as AgentBench's ``SparqlExecuter`` returns them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from agentflan_eval.errors import MissingDependencyError

if TYPE_CHECKING:
    import rdflib

FREEBASE_NS = "http://rdf.freebase.com/ns/"


class QueryError(Exception):
    """The store rejected a query (malformed or failed inside the store); not a connection failure."""


def clean_value(value: str) -> str:
    return value.replace(FREEBASE_NS, "").replace("-08:00", "")


class SparqlClient(Protocol):
    def select(self, query: str) -> list[str]:
        """Values of the single projected variable, in result order."""
        ...


class HttpSparql:
    """SPARQL protocol over HTTP (SPARQLWrapper), JSON results. Connection failures propagate: a dead
    endpoint must fail the episode, not read to the model as a tool error."""

    def __init__(self, endpoint: str, timeout: float = 60.0):
        try:
            from SPARQLWrapper import JSON, POST, SPARQLWrapper
        except ImportError as e:
            raise MissingDependencyError("SPARQLWrapper", "heldin", "Knowledge Graph task") from e
        self.endpoint = endpoint
        self._client = SPARQLWrapper(endpoint)
        self._client.setReturnFormat(JSON)
        self._client.setMethod(POST)
        self._client.setTimeout(int(timeout))

    def select(self, query: str) -> list[str]:
        from SPARQLWrapper.SPARQLExceptions import EndPointInternalError, QueryBadFormed

        self._client.setQuery(query)
        try:
            result: Any = self._client.query().convert()
        except (QueryBadFormed, EndPointInternalError) as e:
            raise QueryError(str(e)) from e
        return [clean_value(b[v]["value"]) for b in result["results"]["bindings"] for v in b]


class LocalSparql:
    """The same queries on an rdflib graph in memory (a small Freebase-style graph, e.g. in tests)."""

    def __init__(self, graph: rdflib.Graph):
        self.graph = graph

    def select(self, query: str) -> list[str]:
        from pyparsing import ParseException
        from rdflib.query import ResultRow

        try:
            rows = self.graph.query(query)
        except ParseException as e:
            raise QueryError(str(e)) from e
        # a SELECT yields ResultRows; ASK (a bool) and CONSTRUCT (triples) have no bindings to return
        return [
            clean_value(str(v)) for row in rows if isinstance(row, ResultRow) for v in row if v is not None
        ]
