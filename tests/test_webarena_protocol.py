"""WebArena against its original code: AgentTuning's prompt constructor and reply parser
(THUDM/AgentTuning e33a45d ``eval_heldout/webarena``), WebArena's evaluators and judge
(web-arena-x/webarena f62e0b9 ``evaluation_harness``), NLTK's ``word_tokenize`` without a download.

Fixtures made by running the original code outside the project: ``webarena_first_prompt.txt`` is what
``CoTPromptConstructor.construct`` (provider llama, model agent-llama, FastChat 0.2.31, tiktoken cl100k)
returns for task 0's intent on the page ``webarena_observation.txt`` (a Magento admin accessibility tree
longer than 1,920 tokens) at http://localhost:7780/admin/admin/dashboard/ (SHOPPING_ADMIN
http://localhost:7780/admin); ``webarena_judge_requests.json`` the requests ``llm_fuzzy_match`` and
``llm_ua_match`` make.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from agentflan_eval.benchmarks.common.cl100k import count_tokens
from agentflan_eval.benchmarks.webarena import prompt
from agentflan_eval.benchmarks.webarena.benchmark import WebArena, WebArenaEnv, WebArenaSample
from agentflan_eval.benchmarks.webarena.evaluators import must_include, string_match, url_match
from agentflan_eval.benchmarks.webarena.judge import OpenAIJudge, StandIn
from agentflan_eval.benchmarks.webarena.word_tokenize import word_tokenize
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.model_zoo.chat_templates import get_template
from agentflan_eval.records import Message

FIXTURES = Path(__file__).parent / "fixtures"
ADMIN = "http://localhost:7780/admin"


@pytest.fixture(autouse=True)
def _no_site_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SHOPPING", "SHOPPING_ADMIN", "REDDIT", "GITLAB", "MAP", "WIKIPEDIA", "HOMEPAGE"):
        monkeypatch.delenv(var, raising=False)


def _bench(data_dir: Path, **options: str) -> WebArena:
    config = RunConfig(data_dir=data_dir, webarena_urls=json.dumps({"__SHOPPING_ADMIN__": ADMIN}), **options)
    return WebArena(config, DataResolver(data_dir, offline=True))


# -- the prompt ------------------------------------------------------------------------------------
def test_first_prompt_is_agenttunings_character_for_character(data_dir: Path) -> None:
    bench = _bench(data_dir)
    sample = bench.load_samples()[0]
    assert isinstance(sample, WebArenaSample) and sample.task_id == 0
    env = bench.make_env(sample)
    assert isinstance(env, WebArenaEnv)
    observation = (FIXTURES / "webarena_observation.txt").read_text(encoding="utf-8")
    turn = prompt.current(observation, env.display_url(f"{ADMIN}/admin/dashboard/"), sample.intent, "None")
    sent = bench.fit_prompt(prompt.messages(turn))
    expected = (FIXTURES / "webarena_first_prompt.txt").read_text(encoding="utf-8")
    assert get_template("agentlm").render(sent) == "<s>" + expected  # TGI adds the BOS token
    assert count_tokens(observation) > prompt.MAX_OBS_TOKENS


def test_only_the_current_turn_is_sent_each_time(data_dir: Path) -> None:
    bench = _bench(data_dir)
    first = prompt.messages(prompt.current("[1] RootWebArea 'a'", "u", "obj", "None"))
    newest = Message(role="user", content="OBSERVATION:\n[2] link 'b'\nURL: v")
    later = [*first, Message(role="assistant", content="reply 1"), newest]  # the episode's chat so far
    sent = bench.fit_prompt(later)
    assert [m.role for m in sent] == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert sent[1].content == "Ok." and sent[0].content.startswith("You are an autonomous intelligent agent")
    assert sent[:-1] == first[:-1] and sent[-1] == newest
    assert bench.max_new_tokens == 384 and bench.stop == ()


def test_observation_cut_at_1920_cl100k_tokens() -> None:
    observation = (FIXTURES / "webarena_observation.txt").read_text(encoding="utf-8")
    cut = prompt.cut_observation(observation)
    assert observation.startswith(cut) and count_tokens(cut) == 1920
    assert prompt.cut_observation("[1] link 'short'") == "[1] link 'short'"


@pytest.mark.parametrize(
    ("reply", "argument"),
    [
        # the first fenced block, even before the answer phrase (hand-derived from re.search, no DOTALL)
        (
            "Let's think. ```click [1234]``` In summary, the next action I will perform is ```stop [x]```",
            "click [1234]",
        ),
        ("In summary, the next action I will perform is ```\nclick [12]\n```", None),  # not on one line
        ("In summary, the next action I will perform is click [12]", None),
        ("```goto [http://luma.com/admin/sales]```", f"goto [{ADMIN}/sales]"),  # map_url_to_local
        ("```type [164] [restaurants near CMU]```", "type [164] [restaurants near CMU]"),
        ("```stop []```", "stop []"),
        ("```fly [3]```", None),
    ],
)
def test_action_parsing(data_dir: Path, reply: str, argument: str | None) -> None:
    action = _bench(data_dir).parse_action(reply)
    assert action.valid == (argument is not None)
    if argument is not None:
        assert action.argument == argument


# -- the evaluators --------------------------------------------------------------------------------
def test_word_tokenize_on_hand_derived_cases() -> None:
    assert (
        word_tokenize("0.0") == ["0.0"]
        and word_tokenize("1,000") == ["1,000"]
        and word_tokenize("5/5") == ["5/5"]
    )
    assert word_tokenize("i found 2 reviews. 0 of them are negative.") == [
        "i", "found", "2", "reviews", ".", "0", "of", "them", "are", "negative", ".",
    ]  # fmt: skip
    assert word_tokenize("the answer is 0. done") == ["the", "answer", "is", "0.", "done"]  # Punkt: no break
    assert word_tokenize("it's $25.99") == ["it", "'s", "$", "25.99"]


def _punkt_tab(root: Path) -> Path:
    """NLTK's punkt_tab/english files written from the model the package ships."""
    from punkt.data import english

    lang = root / "tokenizers" / "punkt_tab" / "english"
    lang.mkdir(parents=True)
    (lang / "abbrev_types.txt").write_text("".join(f"{t}\n" for t in sorted(english.ABBREV_TYPES)))
    (lang / "sent_starters.txt").write_text("".join(f"{t}\n" for t in sorted(english.SENT_STARTERS)))
    (lang / "collocations.tab").write_text("".join(f"{a}\t{b}\n" for a, b in sorted(english.COLLOCATIONS)))
    (lang / "ortho_context.tab").write_text(
        "".join(f"{t}\t{n}\n" for t, n in sorted(english.ORTHO_CONTEXT.items()))
    )
    return root


def test_word_tokenize_equals_nltks_on_every_reference(data_dir: Path, tmp_path: Path) -> None:
    """nltk.word_tokenize itself, its punkt_tab model installed from the same data, agrees on every string
    WebArena's configs compare (references, notes) and on multi-sentence answers."""
    import nltk

    nltk.data.path.insert(0, str(_punkt_tab(tmp_path)))
    try:
        texts = [
            "the answer is 0. done",
            "It is 3. Mr. Smith said 0!",
            "no. 0",
            "e.g. 0 items",
            "Dec. 5 sold",
        ]
        for task in json.loads((data_dir / "webarena/config_files/test.raw.json").read_text()):
            refs = task["eval"]["reference_answers"] or {}
            for value in refs.values():
                texts += [value] if isinstance(value, str) else value
            texts.append(task["eval"].get("string_note") or "")
        assert len(texts) > 500
        for text in texts:
            assert word_tokenize(text.lower()) == nltk.word_tokenize(text.lower()), text
    finally:
        nltk.data.path.remove(str(tmp_path))


def test_must_include_one_character_reference_is_a_whole_token() -> None:
    # hand-derived from evaluators.py l.98-111: clean, then `ref in word_tokenize(pred)` for a lone 1-char ref
    for answer, expected in [
        ("0.0", 0.0),  # the project's old \w+ split found "0" here
        ("1,000", 0.0),
        ("5/5", 0.0),
        ("0", 1.0),
        ("There are 0 items", 1.0),
        ("answer: 0.", 1.0),
        ("the answer is 0. done", 0.0),  # "0." stays one token
    ]:
        assert must_include("0" if "5" not in answer else "5", answer, tokenize=True) == expected, answer
    assert must_include("0", "0.0", tokenize=False) == 1.0  # several references: substrings
    assert string_match({"reference_answers": {"must_include": ["0"]}}, "0.0")[0] == 0.0
    assert string_match({"reference_answers": {"must_include": ["0", "1"]}}, "0.1")[0] == 1.0


def test_url_match_keeps_the_slash_before_a_query_string() -> None:
    # evaluators.py l.187-236: rstrip("/") on the whole URL, then netloc + path as it stands
    ref = {"reference_url": "http://h:7770/catalogsearch/result/?q=shoes"}
    assert url_match(ref, "http://h:7770/catalogsearch/result/?q=shoes&p=2") == 1.0
    assert url_match(ref, "http://h:7770/catalogsearch/result?q=shoes") == 0.0  # "result/" not in "result"
    bare = {"reference_url": "http://h:7770/catalogsearch/result?q=shoes"}
    assert url_match(bare, "http://h:7770/catalogsearch/result/?q=shoes") == 1.0  # "result" in "result/"
    assert url_match({"reference_url": "http://h:9999/f/news/"}, "http://h:9999/f/news") == 1.0
    assert (
        url_match({"reference_url": "http://h:9999/f/news/?sort=new"}, "http://h:9999/f/news?sort=new") == 0.0
    )


# -- the judge -------------------------------------------------------------------------------------
@pytest.fixture
def judge_server() -> Iterator[tuple[str, list[dict[str, Any]], list[str]]]:
    """An OpenAI-compatible endpoint that records each request and answers the next scripted verdict."""
    seen: list[dict[str, Any]] = []
    verdicts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, **body})
            out = json.dumps({"choices": [{"message": {"role": "assistant", "content": verdicts.pop(0)}}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(out.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen, verdicts
    finally:
        server.shutdown()


def test_judge_sends_webarenas_requests(data_dir: Path, judge_server: tuple[str, list, list]) -> None:
    url, seen, verdicts = judge_server
    bench = _bench(data_dir, webarena_judge=url)
    assert isinstance(bench.judge, OpenAIJudge) and not any("judge" in d.what for d in bench.deviations())
    fuzzy = {"reference_answers": {"fuzzy_match": ["Sprite Stasis Ball 65 cm"]}}
    verdicts += ["Correct.", "The answer is partially correct."]
    intent = "What is the top-1 best-selling product in 2022"
    assert string_match(fuzzy, "It is the Sprite Stasis Ball", intent, bench.judge)[0] == 1.0
    assert string_match(fuzzy, "It is the Sprite Stasis Ball", intent, bench.judge)[0] == 0.0
    na = {
        "reference_answers": {"fuzzy_match": "N/A"},
        "string_note": "There is no review about under water photo",
    }
    verdicts += ["Same"]
    question = "Tell me the reviewers who mention under water photo"
    assert string_match(na, "N/A", question, bench.judge)[0] == 1.0  # literal N/A: no request
    assert string_match(na, "There is no such review", question, bench.judge)[0] == 1.0
    expected = json.loads((FIXTURES / "webarena_judge_requests.json").read_text(encoding="utf-8"))
    assert [{k: r[k] for k in expected[0]} for r in (seen[0], seen[2])] == expected
    assert {r["path"] for r in seen} == {"/v1/chat/completions"}


def test_without_a_judge_the_stand_in_scores_and_is_recorded(data_dir: Path) -> None:
    bench = _bench(data_dir)
    assert isinstance(bench.judge, StandIn)
    assert any("stand-in" in d.what and "118 tasks" in d.why for d in bench.deviations())
    fuzzy = {"reference_answers": {"fuzzy_match": ["Pittsburgh, PA"]}}
    assert string_match(fuzzy, "the city is pittsburgh pa", judge=bench.judge)[0] == 1.0
    assert string_match(fuzzy, "it is in Ohio", judge=bench.judge)[0] == 0.0
    na = {"reference_answers": {"fuzzy_match": "N/A"}, "string_note": "no such review"}
    assert string_match(na, "N/A")[0] == 1.0 and string_match(na, "no such review")[0] == 0.0
