"""Pages to search, and an offline stand-in for the Wikipedia that BOLAA searched.

BOLAA searched through langchain 0.0.174's ``Wikipedia`` docstore, i.e. the ``wikipedia`` package's
``page(query)``, whose default ``auto_suggest`` sends the query to Wikipedia's search and opens its top hit:
a query that is not a title still lands on a page. Only when the search finds nothing (or the hit is a
disambiguation page) does the agent see ``Could not find [query]. Similar: [titles]``.

The offline corpus holds every HotpotQA context paragraph by title. A query opens the page with that title
(case- and space-insensitive), else the best TF-IDF hit over titles and text, as the auto-suggest would;
with no hit at all it reports no similar titles, as Wikipedia's empty search did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol


@dataclass(frozen=True)
class Page:
    """A page's plain text as the ``wikipedia`` package's ``WikipediaPage.content`` gives it."""

    title: str
    content: str

    @property
    def paragraphs(self) -> list[str]:
        """What langchain's ``DocstoreExplorer`` searches and summarises: the text split at blank lines."""
        return self.content.split("\n\n")


class SearchBackend(Protocol):
    def search(self, query: str) -> tuple[Page | None, list[str]]:
        """(the page the query opens, []), or (None, similar titles) when it opens none."""
        ...


def _key(title: str) -> str:
    return " ".join(title.replace("_", " ").lower().split())


class ParagraphCorpus:
    def __init__(self, pages: dict[str, list[str]]):
        """``pages``: title → the paragraph's sentences, which HotpotQA stores with their leading spaces."""
        self.pages = {t: Page(t, "".join(s).strip()) for t, s in pages.items()}
        self._by_key = {_key(t): p for t, p in self.pages.items()}

    def search(self, query: str) -> tuple[Page | None, list[str]]:
        page = self._by_key.get(_key(query))
        if page is not None:
            return page, []
        top = self.similar(query, k=1)
        return (self.pages[top[0]], []) if top else (None, [])

    @cached_property
    def _index(self) -> tuple[Any, Any, list[str]]:  # (fitted TfidfVectorizer, document matrix, titles)
        from sklearn.feature_extraction.text import TfidfVectorizer

        titles = list(self.pages)
        docs = [f"{t} {t} {self.pages[t].content}" for t in titles]
        vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
        return vec, vec.fit_transform(docs), titles

    def similar(self, query: str, k: int = 10) -> list[str]:
        """The ``k`` best titles by TF-IDF (``wikipedia.search`` returns 10)."""
        if not re.search(r"\w", query):
            return []
        vec, matrix, titles = self._index
        sims = (matrix @ vec.transform([query]).T).toarray().ravel()
        order = sims.argsort()[::-1][:k]
        return [titles[i] for i in order if sims[i] > 0]
