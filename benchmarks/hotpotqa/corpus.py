"""An offline stand-in for ReAct's Wikipedia: pages are HotpotQA context paragraphs by title.

Search returns the page's paragraph on an exact (case-insensitive) title match; otherwise the five
most similar titles by TF-IDF over title and text, as Wikipedia's own search would suggest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol


@dataclass(frozen=True)
class Page:
    title: str
    sentences: tuple[str, ...]
    intro: str | None = None  # the first paragraph, when the page has more than one

    @property
    def first_paragraph(self) -> str:
        return self.intro if self.intro is not None else "".join(self.sentences).strip()


class SearchBackend(Protocol):
    def search(self, query: str) -> tuple[Page | None, list[str]]:
        """(the page, []) on an exact title match, else (None, similar titles)."""
        ...


def _key(title: str) -> str:
    return " ".join(title.replace("_", " ").lower().split())


class ParagraphCorpus:
    def __init__(self, pages: dict[str, list[str]]):
        self.pages = {t: Page(t, tuple(s)) for t, s in pages.items()}
        self._by_key = {_key(t): p for t, p in self.pages.items()}

    def search(self, query: str) -> tuple[Page | None, list[str]]:
        page = self._by_key.get(_key(query))
        if page is not None:
            return page, []
        return None, self.similar(query)

    @cached_property
    def _index(self) -> tuple[Any, Any, list[str]]:  # (fitted TfidfVectorizer, document matrix, titles)
        from sklearn.feature_extraction.text import TfidfVectorizer

        titles = list(self.pages)
        docs = [f"{t} {t} {self.pages[t].first_paragraph}" for t in titles]
        vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
        return vec, vec.fit_transform(docs), titles

    def similar(self, query: str, k: int = 5) -> list[str]:
        if not re.search(r"\w", query):
            return []
        vec, matrix, titles = self._index
        sims = (matrix @ vec.transform([query]).T).toarray().ravel()
        order = sims.argsort()[::-1][:k]
        return [titles[i] for i in order if sims[i] > 0]
