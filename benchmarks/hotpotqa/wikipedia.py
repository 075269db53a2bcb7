"""Live Wikipedia through the MediaWiki API, as the ``wikipedia`` package (1.4.0) searched it for BOLAA.

langchain 0.0.174's ``Wikipedia.search`` calls ``wikipedia.page(query)``: with ``auto_suggest`` the query goes
to Wikipedia's search (one hit, and its spelling suggestion), the suggestion or else the hit is opened with
redirects followed, and the page's plain-text extract is its content. No hit, a missing page or a
disambiguation page: the agent gets ``wikipedia.search(query)``'s ten titles as similar pages. Needs internet.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from agentflan_eval.benchmarks.hotpotqa.corpus import Page

API = "https://en.wikipedia.org/w/api.php"


class WikipediaSearch:
    def __init__(self, api: str = API, timeout: float = 20.0):
        self.api, self.timeout = api, timeout

    def _get(self, **params: str) -> dict[str, Any]:
        query = {"format": "json", "formatversion": "2", "action": "query", **params}
        url = self.api + "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(url, headers={"User-Agent": "agentflan-eval/0.1 (research evaluation)"})
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            data: dict[str, Any] = json.load(r)
        if "error" in data:
            raise ValueError(f"Wikipedia API: {data['error'].get('info', data['error'])}")
        return data

    def _search(self, query: str, n: int) -> tuple[list[str], str | None]:
        """``wikipedia.search(query, results=n, suggestion=True)``: hit titles and the spelling suggestion."""
        data = self._get(list="search", srprop="", srlimit=str(n), srinfo="suggestion", srsearch=query)
        q = data.get("query", {})
        return [h["title"] for h in q.get("search", [])], q.get("searchinfo", {}).get("suggestion")

    def search(self, query: str) -> tuple[Page | None, list[str]]:
        hits, suggestion = self._search(query, 1)
        title = suggestion or (hits[0] if hits else None)
        page = self._page(title) if title else None
        if page is None:
            return None, self._search(query, 10)[0]
        return page, []

    def _page(self, title: str) -> Page | None:
        """The page ``title`` opens after redirects; None if missing or a disambiguation page."""
        data = self._get(prop="pageprops|extracts", ppprop="disambiguation", explaintext="1", redirects="1",
                         titles=title)  # fmt: skip
        page = data["query"]["pages"][0]
        if page.get("invalid"):  # the package went on and failed reading it: the agent's "please try again"
            raise ValueError(f"invalid title {title!r}")
        if page.get("missing") or "pageprops" in page:
            return None
        return Page(page["title"], page.get("extract", ""))
