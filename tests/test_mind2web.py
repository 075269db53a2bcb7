"""Mind2Web: DOM pruning/rendering, the multiple-choice tournament, metrics, replayed episodes.

The official test set is password-protected and not in shared/data, so the tests build task records
in its format (``annotation_id``, ``confirmed_task``, ``action_reprs``, ``actions`` with
``cleaned_html``, ``operation`` and ``pos/neg_candidates``) and a ``scores_all_data.pkl`` with the
candidate generator's ranks; the CoT prompt is AgentBench's real one from shared/data.
"""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pytest
from gold_replay import replay_gold
from lxml import etree

from agentflan_eval.benchmarks.mind2web.benchmark import (
    Mind2Web,
    Mind2WebSample,
    final_prediction,
    parse_answer,
)
from agentflan_eval.benchmarks.mind2web.dom import multichoice, operation_f1, prune, render
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.errors import AgentFlanError
from agentflan_eval.records import Action, EpisodeStatus, Message, Score, Step
from agentflan_eval.rescore import rescore
from agentflan_eval.runner import run

PAGE = """<html backend_node_id="1">
 <body backend_node_id="2">
  <div backend_node_id="3">
   <nav backend_node_id="4" aria_label="main menu">
    <ul backend_node_id="5">
     <li backend_node_id="6"> <div backend_node_id="7" role="button"> <text>Car Sales</text> </div> </li>
     <li backend_node_id="8"> <a backend_node_id="9" href="https://www.enterprise.com/en/fleet.html">
      <text>Enterprise Fleet Management</text> </a> </li>
    </ul>
   </nav>
   <form backend_node_id="10" name="reservation">
    <input backend_node_id="11" type="text" aria_label="Pick-up &amp; Return Location (ZIP, City or Airport)"
     placeholder="Enter a location" />
    <ul backend_node_id="12" role="listbox">
     <li backend_node_id="13" role="option"> <text>Brooklyn, NY, US</text> <span backend_node_id="14"> <text>Select</text> </span> </li>
     <li backend_node_id="15" role="option"> <text>Brooklyn Park, MN, US</text> </li>
    </ul>
    <button backend_node_id="16" type="button" aria_label="selected pick-up date 03/19/2023">
     <span backend_node_id="17"> <text>19</text> </span> <span backend_node_id="18"> <text>Mar</text> </span>
    </button>
    <select backend_node_id="19" name="age" type="select-one">
     <option backend_node_id="20" value="25+" option_selected="true"> <text>25+</text> </option>
     <option backend_node_id="21" value="22"> <text>22</text> </option>
    </select>
    <button backend_node_id="22" type="submit"> <text>Browse Vehicles</text> </button>
   </form>
   <footer backend_node_id="23"> <p backend_node_id="24"> <text>Copyright 2023 Enterprise</text> </p> </footer>
  </div>
 </body>
</html>"""


def _cand(bid: str, tag: str) -> dict:
    return {
        "tag": tag,
        "attributes": json.dumps({"backend_node_id": bid}),
        "backend_node_id": bid,
        "is_original_target": False,
        "is_top_level_target": True,
    }


def _action(uid: str, op: str, value: str, pos: list[str], neg: list[str]) -> dict:
    tags = {
        b: t
        for b, t in [
            ("7", "div"),
            ("9", "a"),
            ("11", "input"),
            ("13", "li"),
            ("15", "li"),
            ("16", "button"),
            ("19", "select"),
            ("22", "button"),
            ("24", "p"),
            ("12", "ul"),
        ]
    }
    return {
        "action_uid": uid,
        "raw_html": "<html>...</html>",
        "cleaned_html": PAGE,
        "operation": {"op": op, "original_op": op, "value": value},
        "pos_candidates": [_cand(b, tags[b]) for b in pos],
        "neg_candidates": [_cand(b, tags[b]) for b in neg],
    }


TASK = {
    "annotation_id": "7c3b1d0e-5b1a-4d8e-9f0e-2f6a5a1c9b01",
    "website": "enterprise",
    "domain": "Travel",
    "subdomain": "Car rental",
    "confirmed_task": "Find a mini van at Brooklyn City from April 5th to April 8th "
    "for a 22 year old renter.",
    "action_reprs": [
        "[textbox]  Pick-up & Return Location (ZIP, City or Airport) (... -> TYPE: Brooklyn",
        "[option]  Brooklyn, NY, US Select -> CLICK",
        "[combobox]  age -> SELECT: 22",
    ],
    "actions": [
        _action("a1", "TYPE", "Brooklyn", ["11"], ["7", "9", "22"]),  # 4 candidates: one round
        _action("a2", "CLICK", "", ["13"], ["15", "7", "9", "16", "22", "24"]),  # 7 candidates: two rounds
        _action("a3", "SELECT", "22", ["19"], ["16", "22"]),  # gold ranked 12th: not in the top 10
    ],
}
RANKS = {
    "a1": {"11": 0, "7": 3, "9": 5, "22": 1},
    "a2": {"13": 2, "15": 0, "7": 4, "9": 9, "16": 1, "22": 3, "24": 6, "11": 30},
    "a3": {"19": 12, "16": 0, "22": 1},
}


def write_records(root: Path, data_dir: Path, task: dict = TASK) -> Path:
    """Make ``root`` a data dir with the test task (official format), its ranks and the real CoT prompt."""
    (root / "mind2web/test_domain").mkdir(parents=True)
    (root / "mind2web/test_domain/test_domain_0.json").write_text(json.dumps([task]))
    sid = task["annotation_id"]
    ranks = {f"{sid}_{uid}": r for uid, r in RANKS.items()}
    scores = {k: {c: 1.0 / (1 + r) for c, r in v.items()} for k, v in ranks.items()}
    (root / "mind2web/scores_all_data.pkl").write_bytes(pickle.dumps({"scores": scores, "ranks": ranks}))
    prompt = root / "agentbench/mind2web/prompt"
    prompt.mkdir(parents=True)
    (prompt / "llm_prompt_cot.json").write_bytes(
        (data_dir / "agentbench/mind2web/prompt/llm_prompt_cot.json").read_bytes()
    )
    return root


@pytest.fixture(scope="module")
def m2w_dir(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return write_records(tmp_path_factory.mktemp("m2w_data"), data_dir)


@pytest.fixture(scope="module")
def bench(m2w_dir: Path) -> Mind2Web:
    return Mind2Web(RunConfig(data_dir=m2w_dir), DataResolver(m2w_dir))


def test_prune_and_render_in_mindact_format() -> None:
    root = etree.fromstring(PAGE)
    tree = prune(root, ["16", "19"])
    kept = {n.get("backend_node_id") for n in tree.iter() if n.get("backend_node_id")}
    assert kept == {"16", "19"}  # only candidates keep their id
    text = render(tree, {})
    # body and the outer div are left with one child and no attributes: dissolved; meta keeps 5 words a value
    assert text.startswith(
        "<html> <form reservation> <input text pick-up & return location (zip, enter a location /> "
        "<ul listbox> </ul> <button id=0"
    )
    assert (
        "<button id=0 button selected pick-up date 03/19/2023> <span> 19 </span> <span> Mar </span> </button> "
        "<select id=1 select-one age> <option 25+ true> 25+ </option> <option 22> 22 </option> </select>"
    ) in text
    assert "Copyright" not in text and "Car Sales" not in text  # outside every candidate's neighbourhood
    assert "https" not in text


def test_multichoice_question_format() -> None:
    context, question, choices = multichoice(
        PAGE, "Rent a van", ["[link] Cars -> CLICK"] * 7, ["22", "11", "9"]
    )
    assert [c for c, _ in choices] == ["9", "11", "22"]  # document order, not candidate order
    assert "<a id=0>" in context and "<input id=1 text" in context and "<button id=2 submit>" in context
    lines = question.split("\n")
    assert lines[:3] == [
        "Based on the HTML webpage above, try to complete the following task:",
        "Task: Rent a van",
        "Previous actions:",
    ]
    assert lines[3:8] == ["[link] Cars -> CLICK"] * 5 and lines[8].startswith(
        "What should be the next action?"
    )
    assert lines[-4:] == [
        "A. None of the above",
        "B. <a id=0> Enterprise Fleet Management </a>",
        "C. <input id=1 text pick-up & return location (zip, enter a",
        "D. <button id=2 submit> Browse Vehicles </button>",
    ]
    assert "Previous actions:\nNone\nWhat should" in multichoice(PAGE, "t", [], ["9"])[1]


def test_operation_f1_and_answer_parsing_by_hand() -> None:
    assert operation_f1("TYPE new york", "TYPE new york") == 1.0
    assert operation_f1("TYPE new", "TYPE new york") == pytest.approx(0.8)  # P 1, R 2/3
    assert (
        operation_f1("CLICK", "TYPE x") == 0.0
        and operation_f1("", "") == 1.0
        and operation_f1("", "CLICK") == 0.0
    )
    assert parse_answer("Thought: pick.\nAnswer: C.\nAction: SELECT\nValue: Pickup") == ("C", "SELECT Pickup")
    assert parse_answer("Answer: D.\nAction: CLICK") == ("D", "CLICK")
    assert parse_answer("I would click the button") == (None, "")


def test_tournament_replay_by_hand() -> None:
    rounds = [["a", "b", "c", "d", "e"], ["f", "g", "h", "i", "j"], ["k", "c"]]
    # 11 candidates: round 1 picks c (pool 6+1=7) ... pool after round 2: 2-... checked step by step
    assert final_prediction(
        11, rounds, ["Answer: D.\nAction: CLICK", "Answer: A.", "Answer: C.\nAction: CLICK"]
    ) == ("c", "CLICK")
    assert final_prediction(11, rounds[:2], ["Answer: B.\nAction: TYPE\nValue: x", "Answer: A."]) == (
        "a",
        "TYPE x",
    )
    assert final_prediction(4, [["a", "b", "c", "d"]], ["Answer: A."]) == ("", "")  # nothing picked
    assert final_prediction(4, [["a", "b", "c", "d"]], ["Answer: F."]) == ("", "")  # no choice F: no pick


def test_samples_from_official_records(bench: Mind2Web) -> None:
    samples = bench.load_samples()
    assert [s.action_uid for s in samples] == ["a1", "a2", "a3"]
    a1, a2, a3 = samples
    assert a1.id == f"{TASK['annotation_id']}_a1" and a1.subset == "test_domain" and a1.previous_actions == []
    assert a2.previous_actions == TASK["action_reprs"][:1] and a2.target_operation == "CLICK"
    assert a1.target_operation == "TYPE Brooklyn" and a3.target_operation == "SELECT 22"
    assert sorted(a2.neg_ids) == ["15", "16", "22", "24", "7", "9"] and a3.pos_ids == []
    assert bench.unavailable() is None
    assert any("test_domain" in d.what for d in bench.deviations())


def _oracle(bench: Mind2Web, sample: Mind2WebSample, wrong: bool = False) -> list[str]:
    """Replies of an agent that always picks the gold element (or always a wrong one) in each round."""
    env = bench.make_env(sample)
    env.reset()
    op = sample.target_operation.split(" ", 1)
    tail = f"\nAction: {op[0]}" + (f"\nValue: {op[1]}" if len(op) > 1 else "")
    replies = []
    while True:
        choices = env.rounds[-1]
        picks = [c for c in choices if (c in sample.pos_ids) != wrong]
        letter = chr(66 + choices.index(picks[0])) if picks else "A"
        replies.append(f"Thought: the element to use.\nAnswer: {letter}.{tail if picks else ''}")
        obs = env.step(bench.parse_action(replies[-1]))
        if obs.done:
            return replies


def test_replay_correct_wrong_and_malformed(bench: Mind2Web, m2w_dir: Path, tmp_path: Path) -> None:
    a1, a2, a3 = bench.load_samples()
    scripts = {
        a1.id: _oracle(bench, a1),
        a2.id: _oracle(bench, a2),
        a3.id: ["Answer: B.\nAction: SELECT\nValue: 22"],
    }
    assert len(scripts[a2.id]) == 2  # 7 candidates: two rounds
    replay = tmp_path / "good.jsonl"
    replay.write_text(
        "".join(
            json.dumps({"task": "mind2web", "sample_id": k, "replies": v}) + "\n" for k, v in scripts.items()
        )
    )
    config = RunConfig(
        tasks=["mind2web"],
        backend="replay",
        replay_file=replay,
        data_dir=m2w_dir,
        output_dir=tmp_path / "good",
        report=False,
    )
    store, results = run(config)
    eps = {r.sample_id: r for r in store.episodes("mind2web")}
    assert eps[a1.id].score.success and eps[a2.id].score.success and not eps[a3.id].score.success
    first = eps[a1.id].prompt
    assert first[1].role == "assistant" and first[-1].content.startswith("'''\n<html>")
    r = results.tasks["mind2web"]
    assert r.score == pytest.approx(2 / 3) and r.extra["element_accuracy"] == pytest.approx(2 / 3)
    assert r.extra["operation_f1"] == pytest.approx(2 / 3)
    assert rescore(store.root).changed == 0  # the tournament is replayed from the stored replies

    wrong = tmp_path / "bad.jsonl"
    wrong.write_text(
        json.dumps({"task": "mind2web", "sample_id": a1.id, "replies": _oracle(bench, a1, wrong=True)})
        + "\n"
        + json.dumps(
            {"task": "mind2web", "sample_id": a2.id, "replies": ["I am not sure which one.", "no idea"]}
        )
        + "\n"
    )
    config = config.model_copy(update={"replay_file": wrong, "output_dir": tmp_path / "bad", "limit": 2})
    store, results = run(config)
    eps = {r.sample_id: r for r in store.episodes("mind2web")}
    assert not eps[a1.id].score.success and eps[a1.id].score.details["element_correct"] is False
    bad = eps[a2.id]
    assert bad.status == EpisodeStatus.COMPLETED and bad.invalid_actions == 2 and bad.score.value == 0.0


def test_each_round_starts_a_fresh_chat(bench: Mind2Web, tmp_path: Path) -> None:
    """As in AgentBench, round 2 of a step's tournament is asked in a new chat: the examples, then the question."""
    from agentflan_eval.agent_loop import run_episodes
    from agentflan_eval.backends.replay import ReplayBackend
    from agentflan_eval.records import GenerationConfig

    class Recording(ReplayBackend):
        def __init__(self, path: Path) -> None:
            super().__init__(path)
            self.seen: list = []

        def generate(self, requests, config):
            self.seen.extend(requests)
            return super().generate(requests, config)

    sample = bench.load_samples()[1]
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        json.dumps({"task": "mind2web", "sample_id": sample.id, "replies": _oracle(bench, sample)})
    )
    backend, done = Recording(replay), []
    run_episodes(bench, [sample], backend, GenerationConfig(), 1, done.append)
    first, second = (r.messages for r in backend.seen)
    assert len(second) == len(first) and second[:-1] == first[:-1] and second[-1].content != first[-1].content
    assert second[-1].content.startswith("'''\n<html>") and done[0].score.success


def test_score_is_recomputed_from_steps(bench: Mind2Web) -> None:
    s = bench.load_samples()[0]
    env = bench.make_env(s)
    env.reset()
    gold = chr(66 + env.rounds[0].index("11"))
    from agentflan_eval.records import Step

    steps = [Step(reply=f"Answer: {gold}.\nAction: TYPE\nValue: Brooklyn NY", action=Action(name=gold))]
    env.step(bench.parse_action(steps[0].reply))
    score = bench.score(s, steps, env.info())
    assert score.details["element_correct"] and score.details["operation_f1"] == pytest.approx(0.8)
    assert score.value == 0.0  # F1 below 1: not a successful step
    assert bench.task_score(
        [(None, score), (None, Score(value=1.0, details={"element_correct": True, "operation_f1": 1.0}))]
    ) == (0.5, {"element_accuracy": 1.0, "operation_f1": pytest.approx(0.9)})


def test_type_value_counts_to_its_first_line(tmp_path: Path, data_dir: Path) -> None:
    """AgentBench reads the gold operation back from its rendered target with `Value: (.*)$`: one line."""
    task = copy.deepcopy(TASK)
    task["actions"][0]["operation"]["value"] = "Brooklyn\nNew York"
    root = write_records(tmp_path / "data", data_dir, task)
    bench = Mind2Web(RunConfig(data_dir=root), DataResolver(root))
    s = bench.load_samples()[0]
    assert s.target_operation == "TYPE Brooklyn"

    def score(reply_value: str) -> Score:
        env = bench.make_env(s)
        env.reset()
        gold = chr(66 + env.rounds[0].index("11"))
        reply = f"Answer: {gold}.\nAction: TYPE\nValue: {reply_value}"
        env.step(bench.parse_action(reply))
        return bench.score(s, [Step(reply=reply, action=Action(name=gold))], env.info())

    assert score("Brooklyn").success  # the first line alone is the whole gold value
    both = score("Brooklyn New York")  # P 2/4, R 2/2
    assert not both.success and both.details["operation_f1"] == pytest.approx(2 / 3)
    from agentflan_eval.benchmarks.mind2web.benchmark import gold_operation

    assert gold_operation("TYPE", "  Brooklyn  \n") == "TYPE Brooklyn"
    assert gold_operation("TYPE", "\nBrooklyn") == "TYPE"  # the first line is empty
    assert gold_operation("SELECT", "22") == "SELECT 22" and gold_operation("CLICK", "") == "CLICK"


def test_gold_agent_picks_the_gold_element_and_operation(bench: Mind2Web, m2w_dir: Path) -> None:
    from agentflan_eval.selftest import check_task

    a1, a2, a3 = bench.load_samples()
    records = {r.sample_id: r for r in replay_gold(bench, [a1, a2, a3])}
    assert records[a1.id].score.success and records[a1.id].steps[0].reply.endswith(
        "\nAction: TYPE\nValue: Brooklyn"
    )
    two = records[a2.id]  # 7 candidates: two rounds, the gold element kept to the end
    assert two.score.success and len(two.steps) == 2 and two.score.details["prediction"] == ["13", "CLICK"]
    assert not records[a3.id].score.success  # its gold element is ranked 12th: never offered
    check = check_task(
        Mind2Web(RunConfig(data_dir=m2w_dir), DataResolver(m2w_dir)), RunConfig(data_dir=m2w_dir)
    )
    assert (check.solved, check.total, [u.sample_id for u in check.unsolved]) == (2, 3, [a3.id])
    with pytest.raises(AgentFlanError, match="not the tournament"):
        bench.gold_agent(a1)([Message(role="user", content="another question")])


def test_unavailable_offline_says_what_is_needed(tmp_path: Path, data_dir: Path) -> None:
    b = Mind2Web(RunConfig(data_dir=data_dir), DataResolver(data_dir, offline=True))
    reason = b.unavailable()
    assert (
        "mind2web/test_domain" in reason and "osunlp/Mind2Web" in reason and "MIND2WEB_ZIP_PASSWORD" in reason
    )


@pytest.mark.slow
def test_embedded_model_answers_one_step(m2w_dir: Path, tmp_path: Path) -> None:
    config = RunConfig(
        tasks=["mind2web"], limit=1, max_new_tokens=48, data_dir=m2w_dir, output_dir=tmp_path, report=False
    )
    store, results = run(config)
    (rec,) = store.episodes("mind2web")
    assert rec.steps and rec.prompt_tokens > 1000 and rec.status == EpisodeStatus.COMPLETED
    assert rec.score.details["gold_operation"] == "TYPE Brooklyn" and results.tasks["mind2web"].n == 1
    assert set(results.tasks["mind2web"].extra) == {"element_accuracy", "operation_f1"}
