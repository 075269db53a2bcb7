"""The WebShop website in-process: the official app's routes, rendering pages in its format.

Routes follow princeton-nlp/WebShop's ``web_agent_site/app.py`` (``/<session>``,
``/search_results/<session>/<keywords>/<page>``, ``/item_page/...``, ``/item_sub_page/...``,
``/done/...``), so the same HTTP client drives this site and a real WebShop server. Pages carry the
elements the official text environment reads: ``.btn`` buttons inside forms, ``a.product-link``
result links, radio inputs for options and ``#reward`` on the done page; their visible text in
document order is the observation AgentBench's WebShop prompt shows (e.g. ``Back to Search [SEP]
Page 1 (Total results: 50) [SEP] Next > [SEP] B000VOHH8I [SEP] ...``). A session named ``..._fixed_<i>``
gets goal ``i``, as in the official app.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from agentflan_eval.benchmarks.webshop.catalogue import Goal, Product, ProductSearch
from agentflan_eval.benchmarks.webshop.reward import RewardInfo, compute_reward

if TYPE_CHECKING:
    import jinja2

RESULTS_PER_PAGE = 10
SUB_PAGES = ("Description", "Features", "Reviews")

_HEAD = "<!DOCTYPE html><html><head><title>WebShop</title></head><body>"
_INSTRUCTION = '<div id="instruction-text"><h4>Instruction:<br>{{ instruction }}</h4></div>'
_BACK = (
    '<form method="post" action="{{ index_url }}"><button type="submit" class="btn btn-success">'
    "Back to Search</button></form>"
)
_PREV = '<form method="post" action="{{ prev_url }}"><button type="submit" class="btn btn-primary">&lt; Prev</button></form>'

TEMPLATES = {
    "search": _HEAD
    + '<div id="logo"><h2>WebShop</h2></div>'
    + _INSTRUCTION
    + """
<form method="post" action="{{ index_url }}"><input id="search_input" type="text" name="search_query">
<button class="btn btn-success" type="submit">Search</button></form></body></html>""",
    "results": _HEAD
    + _INSTRUCTION
    + _BACK
    + """
<p>Page {{ page }} (Total results: {{ total }})</p>
{% if prev_url %}"""
    + _PREV
    + """{% endif %}
{% if next_url %}<form method="post" action="{{ next_url }}"><button type="submit" class="btn btn-primary">Next &gt;</button></form>{% endif %}
{% for p, url in products %}<div class="searched-product">
<h4 class="product-asin"><a class="product-link" href="{{ url }}">{{ p.asin }}</a></h4>
<h4 class="product-title">{{ p.title }}</h4><h5 class="product-price">{{ p.price_tag }}</h5></div>
{% endfor %}</body></html>""",
    "item": _HEAD
    + _INSTRUCTION
    + _BACK
    + _PREV
    + """
{% for name, values in product.options.items() %}<div class="option"><h4>{{ name }}</h4>
{% for value, url in option_urls[name] %}<input type="radio" id="radio_{{ name }}{{ loop.index0 }}" name="{{ name }}"
 value="{{ value }}" data-url="{{ url }}"{% if chosen.get(name) == value %} checked{% endif %}>
<label for="radio_{{ name }}{{ loop.index0 }}">{{ value }}</label>{% endfor %}</div>{% endfor %}
<h2>{{ product.title }}</h2><h4>Price: {{ product.price_tag }}</h4><h4>Rating: {{ product.rating }}</h4>
{% for name, url in sub_urls %}<form method="post" action="{{ url }}"><button class="btn btn-primary" type="submit">{{ name }}</button></form>{% endfor %}
<form method="post" action="{{ buy_url }}"><button type="submit" class="btn btn-lg purchase">Buy Now</button></form>
</body></html>""",
    "Description": _HEAD
    + _INSTRUCTION
    + _BACK
    + _PREV
    + """
<p class="product-info">{{ product.description or "No Description" }}</p></body></html>""",
    "Features": _HEAD
    + _INSTRUCTION
    + _BACK
    + _PREV
    + """
{% if product.bullet_points|select|list %}<ul>{% for b in product.bullet_points %}<li><p>{{ b }}</p></li>{% endfor %}</ul>
{% else %}<p>No Features</p>{% endif %}</body></html>""",
    "Reviews": _HEAD
    + _INSTRUCTION
    + _BACK
    + _PREV
    + """
{% for r in product.reviews %}<div class="review"><h4>"{{ r.title }}"</h4><p><span>{{ r.score }}</span></p>
<p>{{ r.body }}</p></div>{% else %}<h4>No reviews found</h4>{% endfor %}</body></html>""",
    "done": _HEAD
    + """<div id="thankyou"><h1>Thank you for shopping with us!</h1></div>
<div id="stats"><h3>Your code: </h3><p><pre>{{ code }}</pre> (Paste it in your MTurk interface.)</p>
<div style="display:none"><h2>Purchased</h2><h4 id="asin">asin<pre>{{ asin }}</pre></h4>
<h4 id="options">options<pre>{{ options_json }}</pre></h4></div>
<h3 id="reward">Your score (min 0.0, max 1.0)<pre>{{ reward }}</pre></h3></div></body></html>""",
}


@dataclass
class Response:
    html: str
    url: str
    reward: RewardInfo | None = None


def _seg(value: Any) -> str:
    return quote(str(value), safe="")


def _keywords(raw: str) -> list[str]:
    return list(ast.literal_eval(raw)) if raw.startswith("[") else [raw]


class WebShopSite:
    """Products, their search index and the goals; one session per episode."""

    def __init__(self, products: list[Product], goals: list[Goal], search: ProductSearch | None = None):
        self.products = {p.asin: p for p in products}
        self.goals = goals
        self.search = search or ProductSearch(products)
        self.sessions: dict[str, Goal] = {}

    @cached_property
    def _jinja(self) -> dict[str, jinja2.Template]:
        import jinja2

        env = jinja2.Environment(autoescape=True)
        return {name: env.from_string(t) for name, t in TEMPLATES.items()}

    def handle(self, method: str, path: str, form: dict[str, str] | None = None) -> Response:
        """Serve one request; ``path`` is the URL path (``/search_results/...``)."""
        parts = [unquote(p) for p in path.strip("/").split("/")]
        route, args = (parts[0], parts[1:]) if len(parts) > 1 else ("index", parts)
        if route == "index":
            return self._index(args[0], form or {})
        sid = args[0]
        if sid not in self.sessions:
            raise KeyError(f"unknown WebShop session {sid!r}")
        if route == "search_results":
            return self._results(sid, _keywords(args[1]), int(args[2]))
        if route == "item_page":
            return self._item(sid, args[1], _keywords(args[2]), int(args[3]), ast.literal_eval(args[4]))
        if route == "item_sub_page":
            return self._sub(
                sid, args[1], _keywords(args[2]), int(args[3]), args[4], ast.literal_eval(args[5])
            )
        if route == "done":
            return self._done(sid, args[1], ast.literal_eval(args[2]))
        raise KeyError(f"unknown WebShop route {route!r}")

    # -- pages -----------------------------------------------------------------------------
    def _render(self, name: str, sid: str, **kw: Any) -> str:
        return self._jinja[name].render(
            instruction=self.sessions[sid].instruction_text, index_url=f"/{_seg(sid)}", **kw
        )

    def _index(self, sid: str, form: dict[str, str]) -> Response:
        if sid not in self.sessions:
            if "fixed" not in sid:
                raise KeyError(f"session {sid!r} names no goal (expected '..._fixed_<index>')")
            self.sessions[sid] = self.goals[int(sid.split("_")[-1])]
        if form.get("search_query"):
            return self._results(sid, form["search_query"].lower().split(" "), 1)
        return Response(self._render("search", sid), f"/{_seg(sid)}")

    def _results_url(self, sid: str, keywords: list[str], page: int) -> str:
        return f"/search_results/{_seg(sid)}/{_seg(keywords)}/{page}"

    def _item_url(self, sid: str, asin: str, keywords: list[str], page: int, options: dict) -> str:
        return f"/item_page/{_seg(sid)}/{asin}/{_seg(keywords)}/{page}/{_seg(options)}"

    def _results(self, sid: str, keywords: list[str], page: int) -> Response:
        found = self.search.search(" ".join(keywords))
        shown = found[(page - 1) * RESULTS_PER_PAGE : page * RESULTS_PER_PAGE]
        html = self._render(
            "results",
            sid,
            page=page,
            total=len(found),
            prev_url=self._results_url(sid, keywords, page - 1) if page > 1 else None,
            next_url=self._results_url(sid, keywords, page + 1)
            if page * RESULTS_PER_PAGE < len(found)
            else None,
            products=[(p, self._item_url(sid, p.asin, keywords, page, {})) for p in shown],
        )
        return Response(html, self._results_url(sid, keywords, page))

    def _item(self, sid: str, asin: str, keywords: list[str], page: int, options: dict) -> Response:
        product = self.products[asin]
        option_urls = {
            name: [(v, self._item_url(sid, asin, keywords, page, {**options, name: v})) for v in values]
            for name, values in product.options.items()
        }
        sub_urls = [
            (name, f"/item_sub_page/{_seg(sid)}/{asin}/{_seg(keywords)}/{page}/{name}/{_seg(options)}")
            for name in SUB_PAGES
        ]
        html = self._render(
            "item",
            sid,
            product=product,
            option_urls=option_urls,
            chosen=options,
            sub_urls=sub_urls,
            prev_url=self._results_url(sid, keywords, page),
            buy_url=f"/done/{_seg(sid)}/{asin}/{_seg(options)}",
        )
        return Response(html, self._item_url(sid, asin, keywords, page, options))

    def _sub(self, sid: str, asin: str, keywords: list[str], page: int, sub: str, options: dict) -> Response:
        html = self._render(
            sub, sid, product=self.products[asin], prev_url=self._item_url(sid, asin, keywords, page, options)
        )
        return Response(
            html, f"/item_sub_page/{_seg(sid)}/{asin}/{_seg(keywords)}/{page}/{sub}/{_seg(options)}"
        )

    def _done(self, sid: str, asin: str, options: dict) -> Response:
        product = self.products[asin]
        info = compute_reward(product, self.sessions[sid], product.price, options)
        code = hashlib.sha1(sid.encode()).hexdigest()[:10].upper()
        html = self._render(
            "done", sid, code=code, asin=asin, options_json=json.dumps(options), reward=info.reward
        )
        return Response(html, f"/done/{_seg(sid)}/{asin}/{_seg(options)}", reward=info)
