"""HotpotQA's official normalisation and token F1 on hand-checked pairs."""

from __future__ import annotations

import pytest

from agentflan_eval.benchmarks.common.qa_metrics import exact_match, f1_score, normalize_answer


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("The Beatles!", "beatles"),
        ("  An  apple, a day ", "apple day"),
        ("Richard M. Nixon", "richard m nixon"),
        ("Gesellschaft mit beschränkter Haftung", "gesellschaft mit beschränkter haftung"),
        ("theatre", "theatre"),  # 'the' only as a whole word
    ],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize_answer(raw) == norm


@pytest.mark.parametrize(
    ("pred", "gold", "f1"),
    [
        ("Richard Nixon", "Richard Nixon", 1.0),
        ("the Richard Nixon.", "Richard Nixon", 1.0),
        ("Nixon", "Richard Nixon", 2 * 1.0 * 0.5 / 1.5),  # P=1, R=1/2
        ("President Richard Nixon", "Richard Nixon", 2 * (2 / 3) * 1.0 / (2 / 3 + 1)),  # P=2/3, R=1
        ("Gerald Ford", "Richard Nixon", 0.0),
        ("yes", "no", 0.0),
        ("yes it is", "yes", 0.0),  # yes/no must match exactly
        ("yes", "Yes.", 1.0),
        ("", "Richard Nixon", 0.0),
    ],
)
def test_f1(pred: str, gold: str, f1: float) -> None:
    assert f1_score(pred, gold)[0] == pytest.approx(f1)


def test_f1_counts_repeated_tokens_once_per_occurrence() -> None:
    f1, p, r = f1_score("new new york", "new york")
    assert (p, r) == (pytest.approx(2 / 3), 1.0)
    assert f1 == pytest.approx(0.8)


def test_exact_match() -> None:
    assert exact_match("The Eiffel Tower", "eiffel tower")
    assert not exact_match("Eiffel", "eiffel tower")
