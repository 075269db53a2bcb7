"""Search and Lookup as BOLAA's agent saw them, through langchain 0.0.174's ``DocstoreExplorer``.

Followed: langchain 0.0.174 ``agents/react/base.py`` l.66-112 (``DocstoreExplorer``) and
``docstore/wikipedia.py`` (the message for a query that opens no page), with AgentTuning's
``agent_arch.py`` l.204-215 around them. A search shows the page's first paragraph (its text up to the first
blank line); a lookup returns the next paragraph, not sentence, containing the keyword, prefixed
``(Result i/n)``. The keyword is remembered across searches, as langchain's explorer did.
"""

from __future__ import annotations

from agentflan_eval.benchmarks.hotpotqa import bolaa
from agentflan_eval.benchmarks.hotpotqa.corpus import Page, SearchBackend

# What a live search can raise (network, a malformed API answer); the original caught every exception.
SEARCH_ERRORS = (OSError, ValueError, KeyError, IndexError)


class Explorer:
    def __init__(self, backend: SearchBackend):
        self.backend = backend
        self.page: Page | None = None
        self.lookup_str = ""
        self.lookup_index = 0

    def search(self, term: str) -> str:
        try:
            page, similar = self.backend.search(term)
        except SEARCH_ERRORS:
            return bolaa.NO_PAGE
        self.page = page
        if page is None:
            return f"Could not find [{term}]. Similar: {similar}"
        return page.paragraphs[0]

    def lookup(self, term: str) -> str:
        if self.page is None:
            return bolaa.NO_LOOKUP
        if term.lower() != self.lookup_str:
            self.lookup_str, self.lookup_index = term.lower(), 0
        else:
            self.lookup_index += 1
        hits = [p for p in self.page.paragraphs if self.lookup_str in p.lower()]
        if not hits:
            return "No Results"
        if self.lookup_index >= len(hits):
            return "No More Results"
        return f"(Result {self.lookup_index + 1}/{len(hits)}) {hits[self.lookup_index]}"
