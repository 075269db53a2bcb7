"""WebArena's evaluators (``evaluation_harness/evaluators.py`` and ``helper_functions.py``,
web-arena-x/webarena f62e0b9), written from that code.

A task's score is the product of its evaluators (``eval.eval_types``), each 0 or 1:
- ``string_match`` on the answer of the final ``stop`` action, both cleaned (stripped, outer quotes
  dropped, lower-cased; l.80-86): ``exact_match`` equality; ``must_include`` every phrase a substring, except
  that a lone one-character phrase must be one of the answer's NLTK ``word_tokenize`` tokens (l.98-111: so
  "0" is not found in "0.0", "10" or "5/0"); ``fuzzy_match`` asks a judge per reference (GPT-4 upstream,
  ``llm_fuzzy_match``), and the reference ``N/A`` needs the answer ``N/A`` or, failing that, a judge's
  "same" on the task's ``string_note`` (``llm_ua_match``). Without a judge, a stand-in (``judge.py``).
- ``url_match`` (rule "GOLD in PRED", l.173-241): both URLs lose trailing ``/`` (the whole URL, so a path keeps
  its slash before a query string); some reference's host+path is a substring of the page's, and for every
  query key of the references one of their values is among the page's values for that key. References
  are separated by `` |OR| ``.
- ``program_html``: for each target, open its URL (``last`` = the final page; ``func:`` helpers
  resolve it), select content (the whole HTML for an empty locator, a ``document...`` JS expression
  after its ``prep_actions``, or a ``func:`` helper), HTML-unescape it and require ``exact_match`` or
  every ``must_include`` item (alternatives split by `` |OR| ``).
Scoring reads only stored evidence (answer, final URL, selected contents), so ``rescore`` works
offline; ``collect_program_html`` gathers that evidence from the live page at the episode's end.
"""

from __future__ import annotations

import ast
import html
import json
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentflan_eval.benchmarks.webarena.judge import Judge, StandIn
from agentflan_eval.benchmarks.webarena.word_tokenize import word_tokenize

ACCOUNTS = {"shopping_site_admin": ("admin", "admin1234")}  # WebArena's documented admin account


def clean_answer(answer: str) -> str:
    answer = answer.strip()
    if len(answer) >= 2 and answer[0] == answer[-1] and answer[0] in "'\"":
        answer = answer[1:-1]
    return answer.lower()


def exact_match(ref: str, pred: str) -> float:
    return float(clean_answer(pred) == clean_answer(ref))


def must_include(ref: str, pred: str, tokenize: bool = False) -> float:
    """With ``tokenize`` (a lone reference), a one-character reference must be a whole NLTK token."""
    ref, pred = clean_answer(ref), clean_answer(pred)
    if tokenize and len(ref) == 1 and len(word_tokenize(ref)) == 1:
        return float(ref in word_tokenize(pred))
    return float(ref in pred)


def string_match(
    spec: Mapping[str, Any], answer: str, intent: str = "", judge: Judge | None = None
) -> tuple[float, dict[str, float]]:
    """``spec`` is the task's ``eval``; ``intent`` its question, which the judge is shown."""
    judge = judge or StandIn()
    pred = clean_answer(answer)
    parts: dict[str, float] = {}
    for approach, value in spec["reference_answers"].items():
        if approach == "exact_match":
            parts[approach] = exact_match(value, pred)
        elif approach == "must_include":
            parts[approach] = _prod(must_include(v, pred, tokenize=len(value) == 1) for v in value)
        elif approach == "fuzzy_match" and value == "N/A":
            parts[approach] = exact_match(value, pred) or judge.ua_match(
                pred, spec.get("string_note", ""), intent
            )
        elif approach == "fuzzy_match":
            refs = [value] if isinstance(value, str) else value
            parts[approach] = _prod(judge.fuzzy_match(pred, r, intent) for r in refs)
        else:
            raise ValueError(f"unknown string_match approach {approach!r}")
    return _prod(parts.values()), parts


def _split_url(url: str) -> tuple[str, dict[str, list[str]]]:
    p = urllib.parse.urlparse(url)
    return p.netloc + p.path, urllib.parse.parse_qs(p.query)


def url_match(spec: Mapping[str, Any], page_url: str) -> float:
    rule = spec.get("url_note") or "GOLD in PRED"
    if rule != "GOLD in PRED":
        raise ValueError(f"unknown url matching rule {rule!r}")
    pred_base, pred_query = _split_url(page_url.rstrip("/"))
    ref_queries: dict[str, set[str]] = defaultdict(set)
    bases = []
    for ref in spec["reference_url"].split(" |OR| "):
        base, query = _split_url(ref.rstrip("/"))
        bases.append(base)
        for k, v in query.items():
            ref_queries[k].update(v)
    base_ok = any(b in pred_base for b in bases)
    query_ok = all(any(v in pred_query.get(k, []) for v in vals) for k, vals in ref_queries.items())
    return float(base_ok and query_ok)


def program_html_match(spec: Mapping[str, Any], selected: Sequence[str]) -> float:
    """``selected[i]`` is what target i's locator selected (already HTML-unescaped)."""
    score = 1.0
    for target, content in zip(spec["program_html"], selected, strict=True):
        required = target["required_contents"]
        if "exact_match" in required:
            score *= exact_match(required["exact_match"], content)
        elif "must_include" in required:
            for item in required["must_include"]:
                score *= float(any(must_include(alt, content) for alt in item.split(" |OR| ")))
        else:
            raise ValueError(f"unknown required_contents {list(required)}")
    return score


def evaluate(
    spec: Mapping[str, Any],
    answer: str | None,
    final_url: str | None,
    selected: Sequence[str] | None,
    intent: str = "",
    judge: Judge | None = None,
) -> tuple[float, dict[str, Any]]:
    """The task's score (product over ``eval_types``) and each evaluator's part."""
    parts: dict[str, Any] = {}
    for kind in spec["eval_types"]:
        if kind == "string_match":
            parts[kind], parts["string_parts"] = string_match(spec, answer or "", intent, judge)
        elif kind == "url_match":
            parts[kind] = url_match(spec, final_url or "")
        elif kind == "program_html":
            parts[kind] = program_html_match(spec, selected) if selected is not None else 0.0
        else:
            raise ValueError(f"unknown eval_type {kind!r}")
    return _prod(v for k, v in parts.items() if k in spec["eval_types"]), parts


def _prod(values: Any) -> float:
    out = 1.0
    for v in values:
        out *= v
    return out


# -- evidence from the live page (WebArena's helper functions) -----------------------------------
def reddit_get_post_url(url: str) -> str:
    """A post or comment URL ``/f/<forum>/<id>/...`` cut to the post's own URL; others unchanged."""
    p = urllib.parse.urlparse(url)
    parts = p.path.split("/")
    if len(parts) < 4 or parts[1] != "f":
        return url
    return f"{p.scheme}://{p.netloc}/f/{parts[2]}/{parts[3]}/"


def _shopping_api(shopping: str, path: str, params: Mapping[str, str] | None = None) -> Any:
    user, password = ACCOUNTS["shopping_site_admin"]
    req = urllib.request.Request(
        f"{shopping}/rest/default/V1/integration/admin/token",
        method="POST",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        token = json.load(r)
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    req = urllib.request.Request(
        f"{shopping}/rest/V1/{path}{query}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def shopping_get_latest_order_url(shopping: str) -> str:
    items = _shopping_api(
        shopping,
        "orders",
        {
            "searchCriteria[sortOrders][0][field]": "created_at",
            "searchCriteria[sortOrders][0][direction]": "DESC",
            "searchCriteria[pageSize]": "1",
        },
    )["items"]
    return f"{shopping}/sales/order/view/order_id/{int(items[0]['increment_id'])}/"


def shopping_get_sku_latest_review_author(shopping: str, sku: str) -> str:
    reviews = _shopping_api(shopping, f"products/{sku}/reviews")
    return reviews[-1]["nickname"] if reviews else ""


def shopping_get_sku_latest_review_rating(shopping: str, sku: str) -> str:
    reviews = _shopping_api(shopping, f"products/{sku}/reviews")
    return str(reviews[-1]["ratings"][0]["percent"]) if reviews else ""


_ROLE_JS = """(account) => {
  const names = [...document.querySelectorAll("td[data-label='Account'] span.gl-avatar-labeled-sublabel")];
  const i = names.findIndex(e => e.outerText === '@' + account);
  const roles = document.querySelectorAll("td.col-max-role span");
  return i >= 0 && roles[i] ? roles[i].outerText : '';
}"""


def gitlab_get_project_memeber_role(page: Any, account: str) -> str:
    """The role shown for ``@account`` on a GitLab project's members page ('' when absent)."""
    return str(page.evaluate(_ROLE_JS, account))


def _call(expr: str, page: Any, last_url: str, sites: Mapping[str, str]) -> str:
    """Run one ``func:name(args)`` helper: a whitelisted call with literal, __page__, __last_url__ args."""
    tree = ast.parse(expr.strip(), mode="eval").body
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise ValueError(f"unsupported helper {expr!r}")  # noqa: TRY004 - bad data, not a bad type
    args: list[Any] = []
    for a in tree.args:
        if isinstance(a, ast.Name) and a.id == "__page__":
            args.append(page)
        elif isinstance(a, ast.Constant):
            args.append(last_url if a.value == "__last_url__" else a.value)
        else:
            raise ValueError(f"unsupported helper argument in {expr!r}")
    shopping = sites.get("shopping", "")
    helpers: dict[str, Callable[..., str]] = {
        "reddit_get_post_url": reddit_get_post_url,
        "gitlab_get_project_memeber_role": gitlab_get_project_memeber_role,
        "shopping_get_latest_order_url": lambda: shopping_get_latest_order_url(shopping),
        "shopping_get_sku_latest_review_author": lambda sku: shopping_get_sku_latest_review_author(
            shopping, sku
        ),
        "shopping_get_sku_latest_review_rating": lambda sku: shopping_get_sku_latest_review_rating(
            shopping, sku
        ),
    }
    if tree.func.id not in helpers:
        raise ValueError(f"unknown helper {tree.func.id!r}")
    return helpers[tree.func.id](*args)


def collect_program_html(page: Any, spec: Mapping[str, Any], sites: Mapping[str, str]) -> list[str]:
    """What each ``program_html`` target selects, navigating ``page`` as upstream does."""
    from playwright.sync_api import Error

    out = []
    for target in spec["program_html"]:
        url, locator = target["url"], target["locator"]
        if url.startswith("func:"):
            url = _call(url[len("func:") :], page, page.url, sites)
        if url != "last":
            page.goto(url)
            page.wait_for_load_state("load")
        if not locator.strip():
            selected = page.content()
        elif locator.startswith(("document.", "[...document.")):
            for prep in target.get("prep_actions", []):
                try:
                    page.evaluate(f"() => {prep}")
                except Error:
                    break
            try:
                value = page.evaluate(f"() => {locator}")
                selected = "" if value is None else str(value)
            except Error:
                selected = ""  # the page is wrong: nothing selected
        elif locator.startswith("func:"):
            selected = _call(locator[len("func:") :], page, page.url, sites)
        else:
            raise ValueError(f"unknown locator {locator!r}")
        out.append(html.unescape(selected))
    return out
