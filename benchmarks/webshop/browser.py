"""A text browser for WebShop pages: the observation and actions of WebShop's text environment.

As in ``WebAgentTextEnv`` (``observation_mode="text"``), a page's observation is its visible text
nodes joined by `` [SEP] ``; the clickables are the ``.btn`` buttons and ``.product-link`` links by
their lower-cased text, then the option radio buttons by value; ``search[...]`` works on every
page, ``click[...]`` only on a listed clickable (never ``search``), and anything else changes
nothing. The pages come from a transport: the in-process site or a running official WebShop server
over HTTP (``--webshop-url``), so both are driven by the same code.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol

from agentflan_eval.benchmarks.webshop.site import WebShopSite

_INVISIBLE = {"style", "script", "head", "title", "meta"}
_ACTION = re.compile(r"(.+)\[(.+)\]")


class Transport(Protocol):
    def request(self, method: str, url: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        """(HTML, final URL) of one request; redirects are followed."""
        ...


class SiteTransport:
    """Requests answered by the in-process site."""

    def __init__(self, site: WebShopSite):
        self.site = site

    def request(self, method: str, url: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        resp = self.site.handle(method, urllib.parse.urlsplit(url).path, form)
        return resp.html, resp.url


class HttpTransport:
    """Requests to a running WebShop server (``web_agent_site/app.py``)."""

    def __init__(self, base_url: str, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout

    def request(self, method: str, url: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        full = urllib.parse.urljoin(self.base_url, url.lstrip("/"))
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(full, data=data, method=method)
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            charset = r.headers.get_content_charset() or "utf-8"
            return r.read().decode(charset, errors="replace"), r.geturl()


@dataclass(frozen=True)
class Clickable:
    method: str
    url: str


@dataclass
class Page:
    url: str
    text: str
    clickables: dict[str, Clickable] = field(default_factory=dict)
    has_search_bar: bool = False
    reward: float | None = None  # set on the done page
    purchased: dict | None = None  # {"asin", "options"} on the done page


def _text_parent(node) -> str:
    parent = node.getparent()
    if node.is_tail:
        parent = parent.getparent()
    return parent.tag if parent is not None and isinstance(parent.tag, str) else ""


def parse_page(html: str, url: str) -> Page:
    import lxml.html

    doc = lxml.html.document_fromstring(html)
    texts = [t.strip() for t in doc.xpath("//text()") if _text_parent(t) not in _INVISIBLE and t.strip()]
    clickables: dict[str, Clickable] = {}
    for el in doc.xpath('//*[contains(concat(" ", normalize-space(@class), " "), " btn ")]'):
        form = next((a for a in el.iterancestors("form")), None)
        action = form.get("action", url) if form is not None else url
        method = (form.get("method", "get") if form is not None else "get").upper()
        clickables[el.text_content().strip().lower()] = Clickable(method, action)
    for a in doc.xpath('//a[contains(concat(" ", normalize-space(@class), " "), " product-link ")]'):
        clickables[a.text_content().strip().lower()] = Clickable("GET", a.get("href", ""))
    for opt in doc.xpath('//input[@type="radio"]'):
        clickables[opt.get("value", "")] = Clickable("GET", opt.get("data-url", ""))
    page = Page(
        url=url,
        text=" [SEP] ".join(texts),
        clickables=clickables,
        has_search_bar=bool(doc.xpath('//*[@id="search_input"]')),
    )
    reward = doc.xpath('//*[@id="reward"]//pre')
    if reward:
        page.reward = float(reward[0].text_content().strip())
        asin = doc.xpath('//*[@id="asin"]//pre')
        opts = doc.xpath('//*[@id="options"]//pre')
        page.purchased = {
            "asin": asin[0].text_content().strip() if asin else None,
            "options": json.loads(opts[0].text_content()) if opts else {},
        }
    return page


class WebShopBrowser:
    """One episode's browser: ``reset`` opens the session's search page, ``step`` applies an action."""

    def __init__(self, transport: Transport, session_id: str):
        self.transport = transport
        self.session_id = session_id
        self.index_url = f"/{urllib.parse.quote(session_id, safe='')}"
        self.page: Page | None = None

    def _open(self, method: str, url: str, form: dict[str, str] | None = None) -> Page:
        html, final = self.transport.request(method, url, form)
        self.page = parse_page(html, final)
        return self.page

    def reset(self) -> Page:
        return self._open("GET", self.index_url)

    def available_actions(self) -> dict[str, object]:
        assert self.page is not None
        return {"has_search_bar": self.page.has_search_bar, "clickables": list(self.page.clickables)}

    def step(self, action: str) -> tuple[Page, float, bool]:
        """Apply ``search[...]``/``click[...]``; returns (page, reward, done) as WebShop's step does."""
        assert self.page is not None, "reset() first"
        m = _ACTION.match(action)
        name, arg = (m.group(1), m.group(2).lower()) if m else (action, None)
        if name == "search" and arg:
            self._open("POST", self.index_url, {"search_query": arg})
        elif name == "click" and arg in self.page.clickables and arg != "search":
            target = self.page.clickables[arg]
            self._open(target.method, target.url)
        if self.page.reward is not None:
            return self.page, self.page.reward, True
        return self.page, 0.0, False
