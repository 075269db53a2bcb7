"""Knowledge Graph: the tools, their SPARQL and the episode loop on a small Freebase-style graph.

The graph answers the first two questions of the standard set (an intersection and an argmax); it is
served over the SPARQL protocol by a local HTTP server, so the real HTTP client is what runs. Freebase
keeps both directions of most relations (``reverse_properties``) and so does the graph. The mids of
the questions' entities and answers are the real ones from std.json; the others are made up.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import rdflib
from rdflib import XSD, Literal, Namespace

from agentflan_eval.benchmarks.kg.benchmark import KGSample, KnowledgeGraph
from agentflan_eval.benchmarks.kg.sparql import HttpSparql, LocalSparql
from agentflan_eval.benchmarks.kg.tools import KGSession
from agentflan_eval.cli import main
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.rescore import rescore
from agentflan_eval.runner import run

NS = Namespace("http://rdf.freebase.com/ns/")

# (subject, relation, object, reverse relation)
EDGES = [
    # q1 "what is the attitude of the first dog and the german shepherds?"
    ("m.05t073s", "biology.pedigreed_animal.breed", "m.0test_pwd", "biology.animal_breed.examples"),
    ("m.0test_pwd", "biology.animal_breed.temperament", "m.04kqpjd", "biology.breed_temperament.breeds"),
    ("m.0test_pwd", "biology.animal_breed.temperament", "m.04kpkld", "biology.breed_temperament.breeds"),
    ("m.0test_pwd", "biology.animal_breed.temperament", "m.0test_brave", "biology.breed_temperament.breeds"),
    ("m.0km5c", "biology.animal_breed.temperament", "m.04kqpjd", "biology.breed_temperament.breeds"),
    ("m.0km5c", "biology.animal_breed.temperament", "m.04kpkld", "biology.breed_temperament.breeds"),
    ("m.0km5c", "biology.animal_breed.temperament", "m.0test_loyal", "biology.breed_temperament.breeds"),
    # q2 "When was the last superbowl to inlucde the team that had Rise as thier mascot?"
    ("m.0nz45zc", "sports.mascot.team", "m.0test_ravens", "sports.sports_team.team_mascot"),
    (
        "m.0test_ravens",
        "sports.sports_team.championships",
        "m.0test_sb35",
        "sports.sports_championship_event.champion",
    ),
    (
        "m.0test_ravens",
        "sports.sports_team.championships",
        "m.0642vqv",
        "sports.sports_championship_event.champion",
    ),
    (
        "m.06x5s",
        "sports.sports_championship.events",
        "m.0test_sb35",
        "sports.sports_championship_event.championship",
    ),
    (
        "m.06x5s",
        "sports.sports_championship.events",
        "m.0642vqv",
        "sports.sports_championship_event.championship",
    ),
    (
        "m.06x5s",
        "sports.sports_championship.events",
        "m.0test_sb48",
        "sports.sports_championship_event.championship",
    ),
]
NAMES = {
    "m.05t073s": "Bo",
    "m.0test_pwd": "Portuguese Water Dog",
    "m.0km5c": "German Shepherd Dog",
    "m.04kqpjd": "Obedient",
    "m.04kpkld": "Intelligent",
    "m.0test_brave": "Brave",
    "m.0test_loyal": "Loyal",
    "m.0nz45zc": "Rise",
    "m.0test_ravens": "Baltimore Ravens",
    "m.06x5s": "Super Bowl",
    "m.0test_sb35": "Super Bowl XXXV",
    "m.0642vqv": "Super Bowl XLVII",
    "m.0test_sb48": "Super Bowl XLVIII",
}
TYPES = {
    "m.0test_pwd": "biology.animal_breed",
    "m.0km5c": "biology.animal_breed",
    "m.04kqpjd": "biology.breed_temperament",
    "m.04kpkld": "biology.breed_temperament",
    "m.0test_brave": "biology.breed_temperament",
    "m.0test_loyal": "biology.breed_temperament",
    "m.0test_sb35": "sports.sports_championship_event",
    "m.0642vqv": "sports.sports_championship_event",
    "m.0test_sb48": "sports.sports_championship_event",
}
END_DATES = {"m.0test_sb35": "2001-01-28", "m.0642vqv": "2013-02-03", "m.0test_sb48": "2014-02-02"}


def build_graph() -> rdflib.Graph:
    g = rdflib.Graph()
    for s, rel, o, rev in EDGES:
        g.add((NS[s], NS[rel], NS[o]))
        g.add((NS[o], NS[rev], NS[s]))
    for mid, name in NAMES.items():
        g.add((NS[mid], NS["type.object.name"], Literal(name, lang="en")))
    for mid, typ in TYPES.items():
        g.add((NS[mid], NS["type.object.type"], NS[typ]))
    for mid, day in END_DATES.items():
        g.add((NS[mid], NS["time.event.end_date"], Literal(f"{day}T00:00:00", datatype=XSD.dateTime)))
    return g


@contextmanager
def sparql_server(graph: rdflib.Graph) -> Iterator[str]:
    """A SPARQL 1.1 protocol endpoint (GET or form POST, JSON results) on a free local port."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, params: dict[str, list[str]]) -> None:
            try:
                body = graph.query(params["query"][0]).serialize(format="json")
                status, ctype = 200, "application/sparql-results+json"
            except Exception as e:  # noqa: BLE001 - a bad query is a 400, as Virtuoso answers it
                body, status, ctype = f"Virtuoso 37000 Error SP030: {e}".encode(), 400, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query))

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", 0))
            self._answer(urllib.parse.parse_qs(self.rfile.read(n).decode()))

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sparql"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- tests -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> rdflib.Graph:
    return build_graph()


@pytest.fixture(scope="module")
def endpoint(graph: rdflib.Graph) -> Iterator[str]:
    with sparql_server(graph) as url:
        yield url


@pytest.fixture(scope="module")
def bench(data_dir: Path) -> KnowledgeGraph:
    return KnowledgeGraph(RunConfig(data_dir=data_dir), DataResolver(data_dir, offline=True))


def _session(bench: KnowledgeGraph, client: object, sample: KGSample) -> KGSession:
    return KGSession(client, bench.ontology, dict(sample.entities))  # type: ignore[arg-type]


def test_loads_the_150_standard_questions(bench: KnowledgeGraph) -> None:
    samples = bench.load_samples()
    assert len(samples) == 150 and len({s.id for s in samples}) == 150
    first = samples[0]
    assert isinstance(first, KGSample) and first.entities == {
        "first dog": "m.05t073s",
        "german shepherds": "m.0km5c",
    }
    assert first.answers == ["m.04kqpjd", "m.04kpkld"] and first.subset == "grailqa"


@pytest.mark.parametrize("index", [0, 1])
def test_gold_actions_reach_the_gold_answer_locally_and_over_http(
    bench: KnowledgeGraph, graph: rdflib.Graph, endpoint: str, index: int
) -> None:
    """std.json's own action sequences (intersection; argmax) executed by the tools give its answers."""
    sample = bench.load_samples()[index]
    raw = json.loads((Path(bench.data.path(bench.data_files[0]))).read_text())[index]
    for client in (LocalSparql(graph), HttpSparql(endpoint)):
        s = _session(bench, client, sample)  # type: ignore[arg-type]
        observations = [s.run_line(f"Action: {a}") for a in raw["actions"]]
        assert all("cannot be executed" not in o for o in observations), observations
        assert sorted(s.answer(len(s.variables) - 1)) == sorted(sample.answers)  # type: ignore[attr-defined]
    assert observations[0] == "Observation: [sports.mascot.team]" if index else True
    if index == 1:
        assert observations[-2] == "Observation: [time.event.end_date]"
        assert str(s.variables[-1].program).startswith(
            "(ARGMAX (AND (JOIN (R sports.sports_team.championships)"
        )


def test_count_and_argmin(bench: KnowledgeGraph, graph: rdflib.Graph) -> None:
    s = _session(bench, LocalSparql(graph), bench.load_samples()[1])  # type: ignore[arg-type]
    s.run_line("Action: get_relations(superbowl)")
    assert (
        s.run_line("Action: get_neighbors(superbowl, sports.sports_championship.events)")
        == "Observation: variable #0, which are instances of sports.sports_championship_event"
    )
    assert s.run_line("Action: count(#0)") == "Observation: variable #1, which is a number"
    assert s.answer(1) == ["3"]
    s.run_line("Action: get_attributes(#0)")
    s.run_line("Action: argmin(#0, time.event.end_date)")
    assert s.answer(2) == ["m.0test_sb35"]


def test_tool_errors_use_agentbench_messages(bench: KnowledgeGraph, graph: rdflib.Graph) -> None:
    s = _session(bench, LocalSparql(graph), bench.load_samples()[0])  # type: ignore[arg-type]
    # get_neighbors needs get_relations first; an unknown entity name is not a mid
    assert s.run_line("Action: get_neighbors(first dog, biology.pedigreed_animal.breed)") == (
        "get_neighbors(first dog, biology.pedigreed_animal.breed) cannot be executed. You may make a mistake "
        "and need to fix it."
    )
    assert "cannot be executed" in s.run_line("Action: get_relations(Barack Obama)")
    assert s.run_line("Action: look around") == "Function is not executed!"
    fresh = _session(bench, LocalSparql(graph), bench.load_samples()[0])  # type: ignore[arg-type]
    assert fresh.run_line(
        "Action: get_relations(first dog"
    ).startswith(  # no "(...)" pair, nothing parsed yet
        "I may make a syntax error when calling get_relations (e.g., unmatched parenthesis)."
    )
    assert s.run_line("Action: search(first dog)") == (  # AgentBench shows the last parsed arguments
        "search(Barack Obama) cannot be executed. You may make a mistake and need to fix it."
    )
    s.run_line("Action: get_relations(first dog)")
    s.run_line("Action: get_neighbors(first dog, biology.pedigreed_animal.breed)")  # #0: breeds
    s.run_line("Action: get_relations(german shepherds)")
    s.run_line(
        "Action: get_neighbors(german shepherds, biology.animal_breed.temperament)"
    )  # #1: temperaments
    assert s.run_line("Action: intersection(#0, #1)").endswith(
        "cannot be executed. The two variables are not of the same type. You may further explore them by call "
        "get_relations"
    )
    assert "cannot be executed" in s.run_line("Action: argmax(#0, time.event.end_date)")  # no get_attributes
    assert "cannot be executed" in s.run_line("Action: get_relations(#7)")
    assert (
        len(s.variables) == 2
        and s.actions[-1] == "get_neighbors(german shepherds, biology.animal_breed.temperament)"
    )


def test_parse_action(bench: KnowledgeGraph) -> None:
    a = bench.parse_action("Thought: done.\nFinal Answer: #3\nObservation: made up")
    assert (a.name, a.argument, a.valid) == ("final_answer", "3", True)
    a = bench.parse_action("Thought: x\nAction: get\\_relations(#0)\nObservation: [a.b]\nAction: count(#0)")
    assert (a.name, a.argument, a.valid) == ("call", "Action: get_relations(#0)", True)
    for reply in ("", "I think the answer is Obama.", "Action: look around"):
        a = bench.parse_action(reply)
        assert a.valid is False and a.raw == reply


def test_f1_is_agentbench_answer_set_f1(bench: KnowledgeGraph) -> None:
    sample = bench.load_samples()[0]  # gold {m.04kqpjd, m.04kpkld}
    assert bench.score(sample, [], {"predict": ["m.04kqpjd", "m.04kpkld"]}).value == 1.0
    partial = bench.score(sample, [], {"predict": ["m.04kqpjd", "m.0test_brave"]})
    assert partial.value == pytest.approx(0.5) and partial.success is False
    assert bench.score(sample, [], {"predict": None}).value == 0.0
    assert bench.score(sample, [], {"predict": ["m.0test_loyal"]}).value == 0.0


def _write_replay(path: Path, scripts: dict[str, list[str]]) -> Path:
    path.write_text(
        "".join(json.dumps({"task": "kg", "sample_id": k, "replies": v}) + "\n" for k, v in scripts.items())
    )
    return path


def test_replayed_episodes_right_and_wrong_over_http(
    bench: KnowledgeGraph, endpoint: str, data_dir: Path, tmp_path: Path
) -> None:
    q1, q2 = (s.id for s in bench.load_samples()[:2])
    right = [
        "I should look at the dog first.",  # no Action line: invalid, answered as AgentBench did
        "Thought: relations of the first dog.\nAction: get_relations(first dog)",
        "Action: get_neighbors(first dog, biology.pedigreed_animal.breed)\nObservation: hallucinated",
        "Action: get_relations(#0)",
        "Action: get_neighbors(#0, biology.animal_breed.temperament)",
        "Action: get_relations(german shepherds)",
        "Action: get_neighbors(german shepherds, biology.animal_breed.temperament)",
        "Final Answer: #9",  # no such variable: the episode goes on
        "Action: intersection(#1, #2)",
        "Thought: #3 is the answer.\nFinal Answer: #3",
    ]
    wrong = [
        "Action: get_relations(Rise)",
        "Action: get_neighbors(Rise, sports.mascot.team)",
        "Final Answer: #0",
    ]
    replay = _write_replay(tmp_path / "replay.jsonl", {q1: right, q2: wrong})
    config = RunConfig(
        backend="replay",
        replay_file=replay,
        tasks=["kg"],
        limit=2,
        output_dir=tmp_path / "runs",
        data_dir=data_dir,
        kg_endpoint=endpoint,
        report=False,
    )
    store, results = run(config)
    episodes = {e.sample_id: e for e in store.episodes("kg")}
    good, bad = episodes[q1], episodes[q2]
    assert good.score.value == 1.0 and good.status.value == "completed" and len(good.steps) == len(right)
    assert good.steps[0].action.valid is False
    assert good.steps[0].observation == "No executable function found! Need to recheck the action."
    assert good.steps[7].observation == "Invalid variable id! Need to recheck the action."
    assert (
        good.steps[8].observation
        == "Observation: variable #3, which are instances of biology.breed_temperament"
    )
    assert "hallucinated" not in good.steps[2].reply  # cut at the "Observation:" stop string
    assert bad.score.value == 0.0 and bad.env_info["predict"] == ["m.0test_ravens"]
    task = results.tasks["kg"]
    assert task.score == pytest.approx(0.5) and task.extra == {"exact_match": 0.5, "executability": 1.0}
    assert task.subsets == {"cwq": 0.0, "grailqa": 1.0}
    outcome = rescore(store.root)  # from the stored transcripts alone
    assert outcome.changed == 0 and outcome.results.tasks["kg"].score == pytest.approx(0.5)


def test_without_endpoint_the_task_is_not_run(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(
        ["run", "--tasks", "kg", "--limit", "1", "--data-dir", str(data_dir), "--output-dir", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "kg: needs a Freebase SPARQL endpoint (--kg-endpoint)" in err


def test_dead_endpoint_fails_the_episode_not_the_tool(bench: KnowledgeGraph) -> None:
    """A connection failure must not read to the model as 'cannot be executed' (a silent zero)."""
    s = _session(bench, HttpSparql("http://127.0.0.1:9/sparql", timeout=5), bench.load_samples()[0])
    with pytest.raises(OSError):
        s.run_line("Action: get_relations(first dog)")
