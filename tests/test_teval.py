"""T-Eval: every metric on hand-checked records in the official format, the six-ability aggregation, data
resolution, and a replayed run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agentflan_eval.benchmarks.teval import metrics as m
from agentflan_eval.benchmarks.teval.benchmark import TEval, TEvalSample, sample_metrics
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.runner import run

# Hand-made embedding space: each text maps to a 2-d vector, so every cosine is known exactly.
VECS = {
    "A.search": (1, 0),
    "B.get": (0, 1),
    "C.put": (-1, 0),
    "X.none": (0.6, -0.8),
    "Y.none": (-0.6, -0.8),
    "{'q': 'x'}": (1, 0),
    "{}": (1, 0),
    "{'q': 'y'}": (0.6, 0.8),
    "\"{'q': 'x'}\"": (0.8, 0.6),
    '{"q": "x"}': (0, -1),
    "{'id': 1}": (0, 1),
    "gold thought": (1, 0),
    "close thought": (0.6, 0.8),
    "opposite thought": (-1, 0),
}


def embed(texts: list[str]) -> np.ndarray:
    return np.array([VECS[t] for t in texts], dtype=float)


def step(i: int, name: str, args: str = "{}") -> dict:
    return {"id": i, "name": name, "args": args}


# -- Plan ---------------------------------------------------------------------------------------------
GOLD_PLAN = [
    step(0, "A.search", "{'q': 'x'}"),
    step(1, "B.get", "{'id': 1}"),
    step(2, "C.put"),
    step(3, "FinishAction"),
]


@pytest.mark.parametrize(
    ("pred", "precision", "recall"),
    [
        (GOLD_PLAN, 1.0, 1.0),  # FinishAction dropped on both sides: 3 of 3
        (
            [step(0, "A.search", "{'q': 'x'}"), step(1, "C.put"), step(2, "B.get", "{'id': 1}")],
            2 / 3,
            2 / 3,
        ),  # order
        ([step(0, "A.search", "{'q': 'x'}"), step(1, "X.none")], 1 / 2, 1 / 3),  # one step matches
        ([step(0, "X.none"), step(1, "Y.none")], 1 / 2, 1 / 3),  # none matches: the original still counts 1
        # same name, args cos 0.6: 0.75 + 0.25 * 0.6 = 0.9 > 0.8 matches; args cos 0 gives 0.75, no match
        ([step(0, "A.search", "{'q': 'y'}"), step(1, "B.get", "{'q': 'x'}")], 1 / 2, 1 / 3),
    ],
)
def test_plan_matching_and_chain(pred: list[dict], precision: float, recall: float) -> None:
    r = m.plan_metrics(pred, GOLD_PLAN, embed)
    f1 = 2 * precision * recall / (precision + recall)
    assert (r["precision"], r["recall"], r["f1"], r["parse_rate"]) == pytest.approx(
        (precision, recall, f1, 1.0)
    )


def test_plan_unparseable_and_empty() -> None:
    assert m.plan_metrics([], GOLD_PLAN, embed) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "parse_rate": 0.0,
    }
    only_finish = m.plan_metrics([step(0, "FinishAction")], GOLD_PLAN, embed)  # the original raises here
    assert only_finish["f1"] == 0.0 and only_finish["parse_rate"] == 1.0
    assert m.load_plan("no plan here") == [] and m.load_plan('[{"name": "A.search"}]') == []  # no id
    text = 'Sure!\n```json\n[{"id": 0, "name": "A.search", "args": {"q": "x"}}]\n```'
    assert m.load_plan(text) == [{"name": "A.search", "id": 0, "args": "{'q': 'x'}"}]


def test_plan_from_text_takes_the_earliest_api_per_line() -> None:
    text = "Use B.get after A.search. Then use C.put\nThank you"
    assert m.plan_from_text(text, ["A.search", "B.get", "C.put"]) == [
        {"id": 0, "name": "B.get", "args": "Use B.get after A.search"},
        {"id": 1, "name": "C.put", "args": "Then use C.put"},
    ]


# -- Instruct -----------------------------------------------------------------------------------------
JSON_TEMPLATE = {"thought": "goal", "action": "name", "args": "args"}
STR_TEMPLATE = {
    "thought_start": "Thought:",
    "thought_end": "\n",
    "action_start": "Action:",
    "action_end": "\n",
    "args_start": "Action Input:",
    "args_end": "\n",
}
INSTRUCT_GT = {"action": "A.search", "args": {"q": "x", "n": 3}}


@pytest.mark.parametrize(
    ("response", "template", "fmt", "expected"),
    [
        ('{"goal": "g", "name": "A.search", "args": {"q": "x", "n": 3}}', JSON_TEMPLATE, "json", (1, 1)),
        ("{'goal': 'g', 'name': 'A.search', 'args': {'q': 'x', 'n': 4}}", JSON_TEMPLATE, "json", (1, 2 / 3)),
        ('{"goal": "g", "name": "B.get", "args": "q=x"}', JSON_TEMPLATE, "json", (1, 0)),  # args not a dict
        ('{"goal": "g", "name": "A.search"}', JSON_TEMPLATE, "json", (0, 0)),  # a key missing: not parsed
        ("I will search.", JSON_TEMPLATE, "json", (0, 0)),
        (
            "Thought: go\nAction: A.search \nAction Input: {'q': 'x', 'n': 3}\n",
            STR_TEMPLATE,
            "string",
            (1, 1),
        ),
        (
            "Thought: go\nAction: A.search\nAction Input: q is x\n",
            STR_TEMPLATE,
            "string",
            (1, 1 / 3),
        ),  # args {}
        ("Thought: go\nAction: A.search", STR_TEMPLATE, "string", (0, 0)),  # template not matched
    ],
)
def test_instruct(response: str, template: dict, fmt: str, expected: tuple[float, float]) -> None:
    r = m.instruct_metrics(response, INSTRUCT_GT, template, fmt)
    assert (r["format"], r["args_em"]) == pytest.approx(expected)


# -- Reason / Retrieve / Understand ---------------------------------------------------------------------
RRU_GT = {"thought": "gold thought", "name": "A.search", "args": {"q": "x"}}


def test_rru_json_embedding_version() -> None:
    good = m.rru_metrics(
        '{"thought": "close thought", "name": "A.search", "args": {"q": "y"}}',
        RRU_GT,
        "rru",
        "json",
        embed,
        "embedding",
    )
    assert good == pytest.approx({"thought": 0.6, "name": 1.0, "args": 0.6, "parse_rate": 1.0})
    wrong = m.rru_metrics(
        "{'thought': 'opposite thought', 'name': 'B.get', 'args': 'x'}",
        RRU_GT,
        "rru",
        "json",
        embed,
        "embedding",
    )  # cosine clipped at 0; args not a dict count as {}, whose text is as near str(gold) as "{'q': 'x'}"
    assert wrong == pytest.approx({"thought": 0.0, "name": 0.0, "args": 1.0, "parse_rate": 1.0})
    for version in ("embedding", "exact"):
        assert m.rru_metrics("not json", RRU_GT, "rru", "json", embed, version) == {
            "thought": 0.0,
            "name": 0.0,
            "args": 0.0,
            "parse_rate": 0.0,
        }


# The exact version (T-Eval since 56e2121): gold {"q": "x", "n": 3}; each value compared as str, over
# (2 + 1e-5) gold arguments. Hand-computed.
RRU_GT2 = {"thought": "gold thought", "name": "A.search", "args": {"q": "x", "n": 3}}


@pytest.mark.parametrize(
    ("pred_args", "gold_args", "expected"),
    [
        ('{"q": "x", "n": "3"}', RRU_GT2["args"], 2 / 2.00001),  # "3" == str(3)
        ('{"q": "x", "n": 4, "extra": 1}', RRU_GT2["args"], 1 / 2.00001),  # extra keys cost nothing
        ('{"Q": "x", "n": 3.0}', RRU_GT2["args"], 0.0),  # key case and "3.0" != "3"
        ('"q=x"', RRU_GT2["args"], 0.0),  # args not a dict count as {}
        ("{}", {}, 1.0),  # no gold arguments, none predicted
        ('{"q": "x"}', {}, 0.0),  # no gold arguments, some predicted
    ],
)
def test_rru_json_exact_version(pred_args: str, gold_args: dict, expected: float) -> None:
    gold = {**RRU_GT2, "args": gold_args}
    reply = '{"thought": "gold thought", "name": "A.search", "args": ' + pred_args + "}"
    r = m.rru_metrics(reply, gold, "rru", "json", embed)  # exact is the default
    assert r["args"] == pytest.approx(expected, abs=1e-12) and r["name"] == 1.0 and r["thought"] == 1.0


@pytest.mark.parametrize(
    ("eval_type", "response", "expected"),
    [
        ("reason", "close thought", {"thought": 0.6}),
        ("retrieve", "I would call A.search now", {"name": 1.0}),
        ("retrieve", "A.search, then B.get", {"name": 0.0}),  # another tool named
        ("retrieve", "A.search or FinishAction", {"name": 0.0}),
        ("retrieve", "B.get", {"name": 0.0}),
    ],
)
def test_rru_string_formats(eval_type: str, response: str, expected: dict) -> None:
    for version in ("exact", "embedding"):  # the Understand version does not touch these
        r = m.rru_metrics(response, RRU_GT, eval_type, "str", embed, version)
        assert r == pytest.approx({**expected, "parse_rate": 1.0})


# Understand in the str format: the whole reply against str(gold args) == "{'q': 'x'}". Hand-computed: exact
# wants that text once quotes are stripped from the reply's ends; embedding takes the cosine of the two texts.
@pytest.mark.parametrize(
    ("response", "exact", "embedding"),
    [
        ("{'q': 'x'}", 1.0, 1.0),
        ("\"{'q': 'x'}\"", 1.0, 0.8),  # double quotes stripped: exact; the embedding sees them
        ("{'q': 'y'}", 0.0, 0.6),
        ('{"q": "x"}', 0.0, 0.0),  # JSON quoting is not Python's repr
        ("{}", 0.0, 1.0),  # the hand-made space puts "{}" on "{'q': 'x'}"
    ],
)
def test_understand_str_both_versions(response: str, exact: float, embedding: float) -> None:
    got = {
        v: m.rru_metrics(response, RRU_GT, "understand", "str", embed, v)["args"]
        for v in ("exact", "embedding")
    }
    assert got == pytest.approx({"exact": exact, "embedding": embedding})


# -- Review --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "quality", "parse"),
    [
        ("Answer: B", 1, 1),
        ("Answer:B because the proxy failed", 1, 1),
        ("B", 1, 1),
        ("Answer: C", 0, 1),
        ("Answer: the tool failed", 0, 0),
        ("", 0, 0),
    ],
)
def test_review(response: str, quality: float, parse: float) -> None:
    assert m.review_metrics(response, {"answer": "B", "thought": "..."}, "str") == {
        "review_quality": quality,
        "parse_rate": parse,
    }


def test_dimensions_combine_like_convert_results() -> None:
    means = {
        "instruct_json.format": 1.0,
        "instruct_json.args_em": 0.5,
        "instruct_string.format": 0.0,
        "instruct_string.args_em": 0.0,
        "plan_str.f1": 0.2,
        "plan_json.f1": 0.4,
        "reason_str.thought": 0.5,
        "rru_json.thought": 0.7,
        "retrieve_str.name": 1.0,
        "rru_json.name": 0.0,
        "understand_str.args": 0.3,
        "rru_json.args": 0.5,
        "review_str.review_quality": 0.9,
    }
    assert m.dimension_scores(means) == pytest.approx(
        {"Instruct": 0.375, "Plan": 0.3, "Reason": 0.6, "Retrieve": 0.5, "Understand": 0.4, "Review": 0.9}
    )
    del means["plan_str.f1"]
    assert "Plan" not in m.dimension_scores(means)


# -- records in the official format, through the benchmark -------------------------------------------------
SYSTEM = {"role": "system", "content": "You have access to the following API: A.search, B.get, C.put"}
USER = {"role": "user", "content": "Find x."}
GOLD_ROWS = [
    {"id": 0, "prev": [], "name": "A.search", "args": {"q": "x"}},
    {"id": 1, "prev": [0], "name": "FinishAction", "args": {}},
]
RECORDS = {
    "instruct_v2": {
        "j1": {
            "origin_prompt": [SYSTEM, USER],
            "template": JSON_TEMPLATE,
            "meta_data": {"response_format": "json"},
            "ground_truth": {"action": "A.search", "args": {"q": "x", "n": 3}},
        },
        "s1": {
            "origin_prompt": [SYSTEM, USER],
            "template": STR_TEMPLATE,
            "meta_data": {"response_format": "string"},
            "ground_truth": {"action": "A.search", "args": {"q": "x"}},
        },
    },
    "plan_json_v2": {
        "p1": {"origin_prompt": [SYSTEM, USER], "meta": {"prompt_type": "json"}, "ground_truth": GOLD_ROWS}
    },
    "plan_str_v2": {
        "p2": {
            "origin_prompt": [SYSTEM, USER],
            "ground_truth": GOLD_ROWS,
            "meta": {"prompt_type": "str", "API_list": ["A.search", "B.get"]},
        }
    },
    "reason_str_v2": {
        "r1": {
            "origin_prompt": [
                SYSTEM,
                USER,
                {"role": "assistant", "content": "call"},
                {"role": "function", "content": "{'result': 1}"},
            ],
            "meta_data": {"response_format": "str"},
            "ground_truth": RRU_GT,
        }
    },
    "retrieve_str_v2": {
        "t1": {
            "origin_prompt": [SYSTEM, USER],
            "meta_data": {"response_format": "str"},
            "ground_truth": RRU_GT,
        }
    },
    "understand_str_v2": {
        "u1": {
            "origin_prompt": [SYSTEM, USER],
            "meta_data": {"response_format": "str"},
            "ground_truth": RRU_GT,
        }
    },
    "reason_retrieve_understand_json_v2": {
        "x1": {
            "origin_prompt": [SYSTEM, USER],
            "meta_data": {"response_format": "json"},
            "ground_truth": RRU_GT,
        }
    },
    "review_str_v2": {
        "v1": {
            "origin_prompt": [SYSTEM, USER],
            "template": "",
            "meta_data": {"response_format": "str"},
            "ground_truth": {"answer": "B", "thought": "internal error"},
        }
    },
}
# Responses scored with the real embedding model: only identical texts (cosine 1) and exact rules are used.
REPLIES = {
    "instruct_v2/j1": '{"goal": "find", "name": "A.search", "args": {"q": "x", "n": 4}}',  # format 1, args 2/3
    "instruct_v2/s1": "I would search for x.",  # format 0
    "plan_json_v2/p1": json.dumps(GOLD_ROWS),  # F1 1
    "plan_str_v2/p2": "I cannot plan this.",  # no API named: F1 0
    "reason_str_v2/r1": "gold thought",  # identical: 1
    "retrieve_str_v2/t1": "Use A.search",  # 1
    "understand_str_v2/u1": "{'q': 'x'}",  # identical to str(gold args): 1
    "reason_retrieve_understand_json_v2/x1": '{"thought": "gold thought", "name": "B.get", "args": {"q": "x"}}',
    "review_str_v2/v1": "Answer: B",
}


@pytest.fixture(scope="module")
def teval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "t_eval/data").mkdir(parents=True)
    for stem, records in RECORDS.items():
        (root / f"t_eval/data/{stem}_subset.json").write_text(json.dumps(records))
    return root


def test_missing_data_is_reported_not_run(tmp_path: Path) -> None:
    bench = TEval(RunConfig(), DataResolver(tmp_path, offline=True))
    reason = bench.unavailable()
    assert reason is not None and "needs the T-Eval data" in reason and "instruct_v2_subset.json" in reason
    assert "lovesnowbest/T-Eval" in reason


def test_records_load_as_samples(teval_dir: Path) -> None:
    bench = TEval(RunConfig(), DataResolver(teval_dir, offline=True))
    assert bench.unavailable() is None and bench.n_standard == 9
    samples = bench.load_samples()
    assert [s.subset for s in samples[:8]] == [
        "instruct_json",
        "plan_json",
        "plan_str",
        "reason_str",
        "retrieve_str",
        "understand_str",
        "rru_json",
        "review_str",
    ]
    reason = next(s for s in samples if s.subset == "reason_str")
    assert isinstance(reason, TEvalSample) and [m.role for m in reason.messages] == [
        "system",
        "user",
        "assistant",
        "tool",
    ]
    plan_str = next(s for s in samples if s.subset == "plan_str")
    assert sample_metrics(plan_str, "A.search", embed)["f1"] == 1.0  # API_list from meta; args = the line
    assert all("subset" not in d.what for d in bench.deviations())


def test_replayed_run_scores_every_ability(tmp_path: Path, teval_dir: Path) -> None:
    replay = tmp_path / "replay.jsonl"
    replay.write_text(
        "".join(
            json.dumps({"task": "teval", "sample_id": k, "replies": [v]}) + "\n" for k, v in REPLIES.items()
        )
    )
    cfg = RunConfig(
        backend="replay",
        replay_file=replay,
        tasks=["teval"],
        output_dir=tmp_path / "runs",
        data_dir=teval_dir,
        report=False,
    )
    _, results = run(cfg)
    r = results.tasks["teval"]
    assert r.n == 9 and r.statuses == {"completed": 9} and r.errors == 0
    abilities = {
        "Instruct": (1 + 2 / 3) / 4,
        "Plan": 0.5,
        "Reason": 1.0,
        "Retrieve": 0.5,
        "Understand": 1.0,
        "Review": 1.0,
    }
    for name, value in abilities.items():
        assert r.extra[name] == pytest.approx(100 * value, abs=1e-3), name
    assert r.score == pytest.approx(100 * sum(abilities.values()) / 6, abs=1e-3)
    assert r.subsets["instruct_json"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert r.subsets["rru_json"] == pytest.approx(100 * 2 / 3, abs=1e-3)
    assert r.extra["rru_json.name"] == 0.0 and r.extra["instruct_string.format"] == 0.0
