"""WebArena: the evaluators on hand-built cases, evidence from a tiny local site, site configuration,
the 812 real task configs, and one end-to-end episode against a fake site on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_browser import serve_pages

from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.replay import ReplayBackend
from agentflan_eval.benchmarks.common.browser.actions import ANSWER_PHRASE
from agentflan_eval.benchmarks.common.browser.driver import BrowserSession
from agentflan_eval.benchmarks.webarena.benchmark import WebArena, WebArenaSample, resolve, site_urls
from agentflan_eval.benchmarks.webarena.evaluators import (
    collect_program_html,
    evaluate,
    exact_match,
    must_include,
    program_html_match,
    reddit_get_post_url,
    string_match,
    url_match,
)
from agentflan_eval.benchmarks.webarena.judge import StandIn
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.errors import AgentFlanError
from agentflan_eval.records import GenerationConfig

SITE = {
    "index.html": """<html><head><title>One Stop Market</title></head><body><h1>Orders</h1>
<input aria-label="Search" id="q"><button onclick="location.href='search.html?q=' +
encodeURIComponent(document.getElementById('q').value)">Search</button>
<div id="total">Total: &pound;12 &amp; tax</div></body></html>""",
    "search.html": """<html><head><title>Results</title></head><body><p id="r">Results for your query</p></body></html>""",
    "members.html": """<html><body><table>
<tr><td data-label="Account"><span class="gl-avatar-labeled-sublabel">@alice</span></td>
<td class="col-max-role"><span>Maintainer</span></td></tr>
<tr><td data-label="Account"><span class="gl-avatar-labeled-sublabel">@byteblaze</span></td>
<td class="col-max-role"><span>Owner</span></td></tr></table></body></html>""",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    with serve_pages(tmp_path_factory.mktemp("webarena_site"), SITE) as url:
        yield url.rstrip("/")


@pytest.fixture(autouse=True)
def _no_site_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SHOPPING", "SHOPPING_ADMIN", "REDDIT", "GITLAB", "MAP", "WIKIPEDIA", "HOMEPAGE"):
        monkeypatch.delenv(var, raising=False)


# -- string_match / url_match / program_html on hand-built cases ------------------------------
def test_string_match_cases() -> None:
    assert exact_match("Quest Lumaflex™ Band", ' "quest lumaflex™ band" ') == 1.0
    assert exact_match("Quest", "Quest Band") == 0.0
    assert must_include("$25.99", "It costs $25.99 in total") == 1.0
    assert must_include("0", "10 items", tokenize=True) == 0.0  # a one-character reference is a whole token
    assert must_include("0", "there are 0 items", tokenize=True) == 1.0
    assert StandIn().fuzzy_match("the city is pittsburgh pa", "Pittsburgh, PA", "") == 1.0
    assert StandIn().fuzzy_match("it is in Ohio", "Pittsburgh, PA", "") == 0.0
    spec = {"reference_answers": {"must_include": ["Sarah", "Miller"]}}
    assert string_match(spec, "Sarah Miller")[0] == 1.0 and string_match(spec, "Sarah")[0] == 0.0
    na = {"reference_answers": {"fuzzy_match": "N/A"}}
    assert string_match(na, "N/A")[0] == 1.0 and string_match(na, "no such review")[0] == 0.0
    both = {"reference_answers": {"exact_match": "2", "must_include": ["2"]}}
    assert string_match(both, "2")[1] == {"exact_match": 1.0, "must_include": 1.0}


def test_url_match_cases() -> None:
    spec = {
        "reference_url": "http://h:7770/catalogsearch/result/?q=shoes |OR| http://h:7770/shoes.html",
        "url_note": "GOLD in PRED",
    }
    assert url_match(spec, "http://h:7770/catalogsearch/result/?q=shoes&p=2") == 1.0
    assert url_match(spec, "http://h:7770/catalogsearch/result/?q=hats") == 0.0  # the query value must match
    assert url_match({"reference_url": "http://h:9999/f/news"}, "http://h:9999/f/news/") == 1.0
    assert url_match({"reference_url": "http://h:9999/f/news"}, "http://h:9999/f/world") == 0.0
    with pytest.raises(ValueError):
        url_match({"reference_url": "http://h", "url_note": "EXACT"}, "http://h")


def test_program_html_match_cases() -> None:
    spec = {
        "program_html": [
            {
                "url": "last",
                "locator": "",
                "required_contents": {"must_include": ["Owner |OR| Maintainer", "alice"]},
            },
            {"url": "last", "locator": "x", "required_contents": {"exact_match": "Shipped"}},
        ]
    }
    assert program_html_match(spec, ["<b>alice</b> is Maintainer", "shipped"]) == 1.0
    assert program_html_match(spec, ["<b>alice</b> is Guest", "shipped"]) == 0.0
    assert program_html_match(spec, ["alice Owner", "Shipped!"]) == 0.0
    full = {
        "eval_types": ["string_match", "url_match", "program_html"],
        **spec,
        "reference_answers": {"exact_match": "ok"},
        "reference_url": "http://h/x",
    }
    assert evaluate(full, "ok", "http://h/x", ["alice Owner", "Shipped"])[0] == 1.0
    assert evaluate(full, "ok", "http://h/y", ["alice Owner", "Shipped"])[0] == 0.0
    assert evaluate(full, None, "http://h/x", ["alice Owner", "Shipped"])[0] == 0.0  # never stopped
    assert evaluate(full, "ok", "http://h/x", None)[0] == 0.0  # evidence could not be collected


def test_reddit_post_url() -> None:
    assert (
        reddit_get_post_url("http://r:9999/f/books/59421/some-title/comment/1")
        == "http://r:9999/f/books/59421/"
    )
    assert reddit_get_post_url("http://r:9999/forums") == "http://r:9999/forums"


def test_collect_program_html_from_a_live_page(site: str) -> None:
    spec = {
        "program_html": [
            {"url": "last", "locator": "document.querySelector('#total').outerText", "required_contents": {}},
            {
                "url": f"{site}/members.html",
                "locator": "func:gitlab_get_project_memeber_role(__page__, 'byteblaze')",
                "required_contents": {},
            },
            {"url": "func:reddit_get_post_url('__last_url__')", "locator": "", "required_contents": {}},
            {
                "url": "last",
                "locator": "document.querySelector('#missing').outerText",
                "required_contents": {},
            },
            {
                "url": "last",
                "prep_actions": ["document.title = 'prepared'"],
                "locator": "document.title",
                "required_contents": {},
            },
        ]
    }
    session = BrowserSession()
    try:
        session.page.goto(f"{site}/index.html")
        got = collect_program_html(session.page, spec, {})
    finally:
        session.close()
    assert got[0] == "Total: £12 & tax"  # HTML-unescaped
    assert got[1] == "Owner"
    assert "@alice" in got[2]  # not a post URL: stays on the members page, whole HTML
    assert got[3] == ""  # a locator that fails selects nothing
    assert got[4] == "prepared"


# -- configuration and the real task configs ---------------------------------------------------
def test_site_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB", "http://g:8023/")
    assert site_urls(None) == {"gitlab": "http://g:8023"}
    f = tmp_path / "urls.json"
    f.write_text(json.dumps({"__SHOPPING__": "http://s:7770", "reddit": "http://r:9999"}), encoding="utf-8")
    assert site_urls(str(f)) == {
        "gitlab": "http://g:8023",
        "shopping": "http://s:7770",
        "reddit": "http://r:9999",
    }
    assert site_urls('{"GITLAB": "http://other"}')["gitlab"] == "http://other"
    with pytest.raises(AgentFlanError, match="unknown site"):
        site_urls('{"__NOPE__": "http://x"}')
    with pytest.raises(AgentFlanError, match="JSON"):
        site_urls("{not json")


def test_unavailable_says_what_it_needs(data_dir: Path) -> None:
    reason = WebArena(RunConfig(data_dir=data_dir), DataResolver(data_dir)).unavailable()
    assert reason is not None and "--webarena-urls" in reason and "SHOPPING_ADMIN" in reason
    dead = WebArena(
        RunConfig(data_dir=data_dir, webarena_urls='{"__MAP__": "http://127.0.0.1:9"}'),
        DataResolver(data_dir),
    ).unavailable()
    assert dead is not None and "not reachable" in dead and "map" in dead


def test_real_task_configs(data_dir: Path) -> None:
    urls = {
        s: f"http://{s}.local:1"
        for s in ("shopping", "shopping_admin", "reddit", "gitlab", "map", "wikipedia", "homepage")
    }
    bench = WebArena(RunConfig(webarena_urls=json.dumps(urls)), DataResolver(data_dir))
    samples = bench.load_samples()
    assert len(samples) == bench.n_standard == 812
    assert samples[0].intent == "What is the top-1 best-selling product in 2022"
    assert bench.deviations() and not any("only tasks on" in d.what for d in bench.deviations())
    first = resolve(samples[0].config, urls)
    assert first["start_url"] == "http://shopping_admin.local:1" and "__" not in json.dumps(first)
    only_map = WebArena(RunConfig(webarena_urls='{"map": "http://m:3000"}'), DataResolver(data_dir))
    subset = only_map.load_samples()
    assert 0 < len(subset) < 812 and all(s.sites == ["map"] for s in subset)
    assert any("only tasks on the given sites" in d.what for d in only_map.deviations())
    assert (
        len(WebArena(RunConfig(), DataResolver(data_dir)).load_samples()) == 812
    )  # rescoring needs no sites


# -- one episode end to end on a fake "shopping" site ----------------------------------------
def _task(site: str) -> WebArenaSample:
    config = {
        "sites": ["shopping"],
        "task_id": 9001,
        "require_login": False,
        "storage_state": None,
        "start_url": "__SHOPPING__/index.html",
        "intent": "Search for shoes and tell me the result heading",
        "eval": {
            "eval_types": ["string_match", "url_match", "program_html"],
            "reference_answers": {"must_include": ["results"]},
            "reference_url": "__SHOPPING__/search.html?q=shoes",
            "program_html": [
                {
                    "url": "last",
                    "locator": "document.querySelector('#r').outerText",
                    "required_contents": {"must_include": ["Results for"]},
                }
            ],
        },
    }
    return WebArenaSample(
        id="9001", subset="shopping", task_id=9001, intent=config["intent"], sites=["shopping"], config=config
    )


def _run(site: str, tmp_path: Path, replies: list[str]) -> object:
    script = tmp_path / "replay.jsonl"
    script.write_text(
        json.dumps({"task": "webarena", "sample_id": "9001", "replies": replies}), encoding="utf-8"
    )
    bench = WebArena(RunConfig(webarena_urls=json.dumps({"__SHOPPING__": site})), DataResolver())
    out: list = []
    run_episodes(bench, [_task(site)], ReplayBackend(script), GenerationConfig(), 1, out.append)
    return bench, out[0]


def test_episode_success_and_display_urls(site: str, tmp_path: Path) -> None:
    bench = WebArena(RunConfig(webarena_urls=json.dumps({"__SHOPPING__": site})), DataResolver())
    env = bench.make_env(_task(site))
    try:
        opening = env.reset()
        turn = opening[-1].content
        box = (
            next(ln for ln in turn.splitlines() if "textbox 'Search'" in ln).split("]")[0].strip().lstrip("[")
        )
    finally:
        env.close()
    assert [m.role for m in opening] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert "homepage.com" in opening[0].content and opening[1].content == "Ok."
    assert "URL: http://onestopmarket.com/index.html" in turn  # WebArena's names for its sites
    bench, rec = _run(
        site,
        tmp_path,
        [
            f"{ANSWER_PHRASE} ```type [{box}] [shoes] [0]```",
            f"{ANSWER_PHRASE} ```click [{_button(turn)}]```",
            f"{ANSWER_PHRASE} ```goto [http://onestopmarket.com/search.html?q=shoes]```",
            f"{ANSWER_PHRASE} ```stop [Results for your query]```",
        ],
    )
    assert rec.status.value == "completed", rec.error
    assert rec.env_info["final_url"] == f"{site}/search.html?q=shoes"
    assert rec.score.value == 1.0 and rec.score.details["url_match"] == 1.0
    assert "PREVIOUS ACTION: type [" in rec.steps[0].observation and "where [" in rec.steps[0].observation
    assert bench.score(_task(site), rec.steps, rec.env_info) == rec.score  # rescoring needs no browser


def _button(turn: str) -> str:
    return next(ln for ln in turn.splitlines() if "button 'Search'" in ln).split("]")[0].strip().lstrip("[")


def test_episode_failure_and_early_stops(site: str, tmp_path: Path) -> None:
    _, rec = _run(site, tmp_path, [f"{ANSWER_PHRASE} ```stop [nothing found]```"])
    assert rec.score.value == 0.0 and rec.score.details["url_match"] == 0.0
    _, rec = _run(site, tmp_path, ["no action here", "```", f"{ANSWER_PHRASE} click 4"])
    assert rec.status.value == "invalid_action" and rec.invalid_actions == 3
    assert rec.env_info["early_stop"] == "failed to parse actions for 3 times" and rec.score.value == 0.0
    # AgentTuning's helper_functions.py l.96-103: the next turn quotes the reply and restates the format
    assert rec.steps[0].observation.endswith(
        'PREVIOUS ACTION: The previous prediction you issued was "no action here". However, the format was '
        "incorrect. Ensure that the action is wrapped inside a pair of ``` and enclose arguments within [] as "
        "follows: ```action [arg] ...```."
    )
    _, rec = _run(site, tmp_path, [f"{ANSWER_PHRASE} ```scroll [down]```"] * 3)
    assert rec.env_info["early_stop"] == "same action for 3 times" and len(rec.steps) == 3
