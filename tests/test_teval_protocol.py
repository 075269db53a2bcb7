"""T-Eval as open-compass/T-Eval's ``test.py`` (@58f2240) runs it: the reply clean-up, the 512-token budget,
the evaluators' rounding, both Understand versions through the benchmark, and the first prompt compared
character by character with the text lagent v0.2.2 builds from the first record.

Expected values are hand-derived (and were checked against the original code run outside the project)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_llama
from pydantic import ValidationError
from test_teval import INSTRUCT_GT, JSON_TEMPLATE, STR_TEMPLATE

from agentflan_eval.benchmarks.teval import metrics as m
from agentflan_eval.benchmarks.teval.benchmark import TEval, TEvalSample
from agentflan_eval.benchmarks.teval.reply import clean_reply
from agentflan_eval.cli import build_parser, config_from_args
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import RunManifest, Score, Step
from agentflan_eval.runner import run

FIXTURES = Path(__file__).parent / "fixtures"


# -- the reply clean-up (test.py split_special_tokens) ------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ('```json\n{"goal": "g", "name": "A.search"}\n```', '{"goal": "g", "name": "A.search"}'),
        ("Answer: B<eoa>\n<|User|>:next", "Answer: B"),
        ('{"thought": "t"}<|im_end|>\n<|im_start|>user\nthanks', '{"thought": "t"}'),
        (
            "Thought: go\nAction: A.search\nAction Input: {}\n[INST] more [/INST]",
            "Thought: go\nAction: A.search\nAction Input: {}",
        ),
        ("I will call A.search.\nUSER: ok\nassistant: sure", "I will call A.search."),
        ("Answer: C\n\nassistant\nAnswer: D", "Answer: C"),
        ("Use A.search\nusername: z", "Use A.search"),  # plain-text match: "\nuser" cuts "\nusername" too
        ("x <TOKENS_UNUSED_1> y", "x"),
        ("a<|user|>b", "a"),
        ("```python\nprint(1)\n```", "python\nprint(1)"),  # only a json fence loses its language tag
        ('``` json {"q": 1}```', 'json {"q": 1}'),  # "``` json" is not "```json"
        ('`{"q": 1}`', '{"q": 1}'),
        ("  \n```\n", ""),
        ("  plain reply, untouched\n", "plain reply, untouched"),
    ],
)
def test_clean_reply_as_test_py(raw: str, cleaned: str) -> None:
    assert clean_reply(raw) == cleaned


GOLD = {"thought": "gold thought", "name": "A.search", "args": {"q": "x"}}


def sample(file: str, subset: str, fmt: str, gold: object, template: object = None) -> TEvalSample:
    return TEvalSample(
        id=f"{file}/x",
        subset=subset,
        file=file,
        messages=[],
        ground_truth=gold,
        response_format=fmt,
        template=template,
    )


def scored(bench: TEval, s: TEvalSample, reply: str) -> Score:
    return bench.score(s, [Step(reply=reply, action=bench.parse_action(reply))], {})


def hand_made(texts: list[str]) -> np.ndarray:
    """Two texts are identical (cosine 1) or orthogonal (0), except "{}" which sits on "{'q': 'x'}"."""
    table = {"gold thought": (1, 0, 0), "{'q': 'x'}": (0, 1, 0), "{}": (0, 1, 0)}
    return np.array([table.get(t, (0, 0, 1)) for t in texts], dtype=float)


@pytest.fixture()
def bench(tmp_path: Path) -> TEval:
    b = TEval(RunConfig(), DataResolver(tmp_path, offline=True))
    b.__dict__["embedder"] = (hand_made, "hand-made")  # the cached embedder: no model loaded
    return b


def test_scoring_reads_the_cleaned_reply(bench: TEval) -> None:
    understand = sample("understand_str_v2", "understand_str", "str", GOLD)
    assert scored(bench, understand, "{'q': 'x'}\nuser: thanks!").details["args"] == 1.0  # raw: no match
    retrieve = sample("retrieve_str_v2", "retrieve_str", "str", GOLD)
    assert scored(bench, retrieve, "Use A.search\nUSER: or B.get?").details["name"] == 1.0  # raw: 2 tools
    empty = bench.parse_action("```json\n```")
    assert empty.valid is False and empty.argument == "" and empty.raw == "```json\n```"


# -- rounding of the Instruct and Review means -----------------------------------------------------------
# INSTRUCT_GT (tests/test_teval.py): 2 arguments + the name, so scores in thirds
ROUNDING_REPLIES = [
    # 1, 1/3
    ("instruct_json", "json", JSON_TEMPLATE, '{"goal": "g", "name": "A.search", "args": {"q": "y"}}'),
    ("instruct_json", "json", JSON_TEMPLATE, '{"goal": "g", "name": "B.get", "args": {}}'),  # 1, 0
    ("instruct_json", "json", JSON_TEMPLATE, '{"goal": "g", "name": "B.get", "args": {"q": "z"}}'),  # 1, 0
    (
        "instruct_string",
        "string",
        STR_TEMPLATE,
        "Thought: go\nAction: A.search\nAction Input: {'q': 'y'}\nEnd",
    ),  # 1, 1/3
    (
        "instruct_string",
        "string",
        STR_TEMPLATE,
        "Thought: go\nAction: B.get\nAction Input: {'q': 'x', 'n': 3}\nEnd",
    ),  # 1, 2/3
    ("instruct_string", "string", STR_TEMPLATE, "I would search."),  # 0, 0
]


def test_instruct_and_review_means_are_rounded_as_their_evaluators_round_them(bench: TEval) -> None:
    scores: list[tuple[str | None, Score]] = []
    for subset, fmt, template, reply in ROUNDING_REPLIES:
        s = sample("instruct_v2", subset, fmt, INSTRUCT_GT, template)
        scores.append((subset, scored(bench, s, reply)))
    for reply in ("Answer: B", "Answer: C", "I cannot tell"):  # quality 1, 0, 0; parsed 1, 1, 0
        s = sample("review_str_v2", "review_str", "str", {"answer": "B"})
        scores.append(("review_str", scored(bench, s, reply)))
    overall, extra = bench.task_score(scores)
    # unrounded: 1/9, 2/3, 1/3, 1/3, 2/3 and Instruct ((1 + 1/9)/2 + (2/3 + 1/3)/2)/2 = 0.52777...
    expected = {
        "instruct_json.format": 1.0,
        "instruct_json.args_em": 0.1111,
        "instruct_string.format": 0.6667,
        "instruct_string.args_em": 0.3333,
        "review_str.review_quality": 0.3333,
        "review_str.parse_rate": 0.6667,
        "Instruct": ((1.0 + 0.1111) / 2 + (0.6667 + 0.3333) / 2) / 2,  # 0.527775
        "Review": 0.3333,
    }
    assert {k: extra[k] for k in expected} == pytest.approx(
        {k: 100 * v for k, v in expected.items()}, abs=1e-9
    )
    assert overall is None  # four abilities missing


def test_other_means_are_not_rounded() -> None:
    assert m.subset_mean("understand_str", [1.0, 0.0, 0.0]) == pytest.approx(1 / 3, abs=1e-15)
    assert m.subset_mean("review_str", [1.0, 0.0, 0.0]) == 0.3333
    assert m.subset_mean("instruct_json", [0.00015, 0.0]) == 0.0001  # np.round: 0.000075 → 0.0001


# -- the two Understand versions, through the benchmark ------------------------------------------------------
def test_understand_defaults_to_the_current_evaluator_and_records_it(bench: TEval) -> None:
    s = sample("understand_str_v2", "understand_str", "str", GOLD)
    exact = scored(bench, s, "{}")
    assert exact.details["args"] == 0.0 and exact.details["understand_metric"] == "exact"
    assert not any("56e2121" in d.what for d in bench.deviations())
    rru = scored(
        bench, sample("reason_retrieve_understand_json_v2", "rru_json", "json", GOLD), '{"args": {}}'
    )
    assert (
        rru.details["understand_metric"] == "exact"
        and "understand_metric"
        not in scored(bench, sample("review_str_v2", "review_str", "str", {"answer": "B"}), "B").details
    )


def test_understand_embedding_version_is_an_option_and_a_deviation(tmp_path: Path) -> None:
    config = RunConfig(task_options={"teval": {"teval_understand": "embedding"}})
    b = TEval(config, DataResolver(tmp_path, offline=True))
    b.__dict__["embedder"] = (hand_made, "hand-made")
    s = sample("understand_str_v2", "understand_str", "str", GOLD)
    got = scored(b, s, "{}")
    assert got.details["args"] == 1.0 and got.details["understand_metric"] == "embedding"
    assert any("embedding" in d.what and "56e2121" in d.what for d in b.deviations())
    flag = config_from_args(build_parser().parse_args(["run", "--teval-understand", "embedding"]))
    assert flag.task_options["teval"] == {"teval_understand": "embedding"}
    default = config_from_args(build_parser().parse_args(["run"]))
    assert default.task_options["teval"] == {"teval_understand": "exact"}  # the manifest records it
    with pytest.raises(ValidationError):
        RunConfig(task_options={"teval": {"teval_understand": "cosine"}})


# -- the first prompt and the budget, through a real run ------------------------------------------------------
# The first instruct_v2 record: the README's example prompt (open-compass/T-Eval README.md @58f2240,
# "Protocols") in the record format InstructEvaluator reads (origin_prompt, template, meta_data, ground_truth).
README_SYSTEM = (
    "You have access to the following API:\n{'name': 'AirbnbSearch.search_property_by_place', 'description': "
    "'This function takes various parameters to search properties on Airbnb.', 'required_parameters': "
    "[{'name': 'place', 'type': 'STRING', 'description': 'The name of the destination.'}], "
    "'optional_parameters': [], 'return_data': [{'name': 'property', 'description': 'a list of at most 3 "
    "properties, containing id, name, and address.'}]}\nPlease generate the response in the following "
    "format:\ngoal: goal to call this action\n\nname: api name to call\n\nargs: JSON format api args in ONLY "
    "one line\n"
)
README_USER = "Call the function AirbnbSearch.search_property_by_place with the parameter as follows: 'place' is 'Berlin'."
FIRST = {
    "origin_prompt": [{"role": "system", "content": README_SYSTEM}, {"role": "user", "content": README_USER}],
    "template": JSON_TEMPLATE,
    "meta_data": {"response_format": "json"},
    "ground_truth": {"action": "AirbnbSearch.search_property_by_place", "args": {"place": "Berlin"}},
}
OTHER = {"origin_prompt": [{"role": "user", "content": "Find x."}], "meta_data": {"response_format": "str"}}
STEMS = (
    "plan_json_v2",
    "plan_str_v2",
    "reason_str_v2",
    "retrieve_str_v2",
    "understand_str_v2",
    "reason_retrieve_understand_json_v2",
    "review_str_v2",
)


@pytest.fixture(scope="module")
def first_record_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "t_eval/data").mkdir(parents=True)
    (root / "t_eval/data/instruct_v2_subset.json").write_text(json.dumps({"query_0_1_0": FIRST}))
    for stem in STEMS:
        gold = {"answer": "B"} if stem.startswith("review") else GOLD
        (root / f"t_eval/data/{stem}_subset.json").write_text(
            json.dumps({"q0": {**OTHER, "ground_truth": gold}})
        )
    return root


def test_first_prompt_is_what_lagent_builds_and_the_budget_is_512(
    tmp_path: Path, first_record_dir: Path, embedded_dir: Path
) -> None:
    """The fixture is lagent v0.2.2's LMTemplateParser (base_llm.py l.24-94: begin + content + end per message,
    then the assistant's begin) applied by test.py (l.70-74, llm.chat) to FIRST's origin_prompt, with the
    Agent-FLAN README's template protocol (InternLM/Agent-FLAN README.md @14ac7f7 l.36-41) as meta_template."""
    model = tiny_llama(tmp_path / "tiny", embedded_dir)  # 160-token context: the episode ends unanswered
    config = RunConfig(
        model=str(model),
        chat_template="agentflan",
        tasks=["teval"],
        limit=1,
        output_dir=tmp_path / "runs",
        data_dir=first_record_dir,
        report=False,
    )
    store, _ = run(config)
    manifest = RunManifest.model_validate_json(store.manifest_path.read_text())
    protocol = manifest.protocols["teval"]
    expected = (FIXTURES / "teval_first_prompt_agentflan.txt").read_text(encoding="utf-8")
    assert protocol.first_prompt == expected
    assert protocol.max_new_tokens == 512 and protocol.template == "agentflan"
    teval = [d.what for d in manifest.deviations if d.task == "teval"]
    assert not any("new tokens" in w or "post-processing" in w for w in teval), teval  # both now as test.py
