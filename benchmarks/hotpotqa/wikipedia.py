"""Live Wikipedia through the MediaWiki API, as ReAct's WikiEnv searched it (needs internet)."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

from agentflan_eval.benchmarks.hotpotqa.corpus import Page

API = "https://en.wikipedia.org/w/api.php"
_SENT = re.compile(r"(?<=[.!?])\s+")


class WikipediaSearch:
    def __init__(self, api: str = API, timeout: float = 20.0):
        self.api, self.timeout = api, timeout

    def _get(self, **params: str) -> dict:
        url = self.api + "?" + urllib.parse.urlencode({"format": "json", "formatversion": "2", **params})
        req = urllib.request.Request(url, headers={"User-Agent": "agentflan-eval/0.1 (research evaluation)"})
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return json.load(r)

    def search(self, query: str) -> tuple[Page | None, list[str]]:
        data = self._get(action="query", prop="extracts", explaintext="1", redirects="1", titles=query)
        pages = data.get("query", {}).get("pages", [])
        page = pages[0] if pages else {}
        if page and not page.get("missing") and page.get("extract"):
            paragraphs = [p for p in page["extract"].split("\n") if p.strip() and not p.startswith("=")]
            sentences = tuple(s for p in paragraphs for s in _SENT.split(p) if s)
            first = paragraphs[0] if paragraphs else ""
            return Page(page["title"], sentences, first), []
        hits = self._get(action="query", list="search", srsearch=query, srlimit="5")
        return None, [h["title"] for h in hits.get("query", {}).get("search", [])]
