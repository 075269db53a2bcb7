"""HotpotQA's live Wikipedia search against canned MediaWiki answers, shown through BOLAA's explorer.

What is checked is the ``wikipedia`` package's (1.4.0) path that langchain's docstore took: search with one
hit and its spelling suggestion, open the suggestion or the hit, disambiguation and missing pages give the
ten-title search as similar pages, and a failure inside the search is the agent's "please try again".
"""

from __future__ import annotations

import urllib.error
from typing import Any

import pytest

from agentflan_eval.benchmarks.hotpotqa import bolaa
from agentflan_eval.benchmarks.hotpotqa.explorer import Explorer
from agentflan_eval.benchmarks.hotpotqa.wikipedia import WikipediaSearch

LEAD = "Milhouse Mussolini Van Houten is a fictional character.\nHe is voiced by Pamela Hayden."
EXTRACT = (
    LEAD
    + "\n\n\n== Role ==\nMilhouse was named after Richard Nixon.\n\n\n== Reception ==\nMilhouse is liked."
)


class CannedWiki(WikipediaSearch):
    def __init__(self, answers: dict[tuple[str, str], dict[str, Any]]):
        super().__init__()
        self.answers, self.calls = answers, []

    def _get(self, **params: str) -> dict[str, Any]:
        self.calls.append(params)
        if "srsearch" in params:
            key = ("search", f"{params['srsearch']}/{params['srlimit']}")
        else:
            key = ("page", params["titles"])
        if key not in self.answers:
            raise urllib.error.URLError("no route to the network")
        return self.answers[key]


def _hits(*titles: str, suggestion: str | None = None) -> dict[str, Any]:
    info = {"searchinfo": {"suggestion": suggestion}} if suggestion else {}
    return {"query": {"search": [{"title": t} for t in titles], **info}}


def _page(title: str, **fields: Any) -> dict[str, Any]:
    return {"query": {"pages": [{"title": title, **fields}]}}


def test_auto_suggest_opens_the_suggestion_and_shows_the_lead_up_to_the_first_blank_line() -> None:
    wiki = CannedWiki(
        {
            ("search", "Milhous/1"): _hits("Milhouse (disambiguation)", suggestion="milhouse"),
            ("page", "milhouse"): _page("Milhouse Van Houten", extract=EXTRACT),
        }
    )
    ex = Explorer(wiki)
    # the lead's lines run together once format_step drops the newline, as in the original
    assert bolaa.format_step(ex.search("Milhous")) == LEAD.replace("\n", "")
    assert wiki.calls[0] == {
        "list": "search",
        "srprop": "",
        "srlimit": "1",
        "srinfo": "suggestion",
        "srsearch": "Milhous",
    }
    assert wiki.calls[1]["ppprop"] == "disambiguation" and wiki.calls[1]["redirects"] == "1"
    found = ex.lookup("named after")
    assert bolaa.format_step(found) == "(Result 1/1) == Role ==Milhouse was named after Richard Nixon."


def test_disambiguation_or_missing_pages_list_ten_similar_titles() -> None:
    similar = [f"Mercury {i}" for i in range(10)]
    wiki = CannedWiki(
        {
            ("search", "Mercury/1"): _hits("Mercury"),
            ("page", "Mercury"): _page("Mercury", pageprops={"disambiguation": ""}),
            ("search", "Mercury/10"): _hits(*similar),
            ("search", "Qzxv/1"): _hits(),
            ("search", "Qzxv/10"): _hits(),
        }
    )
    ex = Explorer(wiki)
    assert ex.search("Mercury") == f"Could not find [Mercury]. Similar: {similar}"
    assert ex.search("Qzxv") == "Could not find [Qzxv]. Similar: []"
    assert ex.lookup("planet") == bolaa.NO_LOOKUP  # the failed search left no page


@pytest.mark.parametrize(
    "answers",
    [
        {},  # the network is down
        {("search", "A|B/1"): _hits("A|B"), ("page", "A|B"): _page("A|B", invalid=True)},
    ],
)
def test_a_search_that_fails_is_the_agents_please_try_again(answers: dict) -> None:
    wiki = CannedWiki(
        {
            ("search", "Milhouse/1"): _hits("Milhouse"),
            ("page", "Milhouse"): _page("Milhouse", extract=EXTRACT),
        }
    )
    ex = Explorer(wiki)
    ex.search("Milhouse")
    wiki.answers = answers
    assert ex.search("A|B") == bolaa.NO_PAGE
    assert ex.lookup("Nixon").startswith(
        "(Result 1/1)"
    )  # the page found before is kept, as langchain kept it
