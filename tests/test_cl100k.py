"""The offline cl100k counter: tiktoken's ids for texts whose ids OpenAI publishes, and the rank file pin."""

from __future__ import annotations

import pytest

from agentflan_eval.benchmarks.common.cl100k import count_tokens, encoding


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),  # tiktoken's README example
        ("hello world", [15339, 1917]),
    ],
)
def test_cl100k_ids_match_openais_published_examples(text: str, ids: list[int]) -> None:
    assert encoding().encode_ordinary(text) == ids
    assert count_tokens(text) == len(ids)


def test_cl100k_vocabulary_is_the_full_encoding() -> None:
    enc = encoding()
    assert enc.n_vocab == 100277 and enc.eot_token == 100257


def test_special_token_text_is_counted_not_refused() -> None:
    assert count_tokens("a <|endoftext|> b") > 3
    assert count_tokens("") == 0
