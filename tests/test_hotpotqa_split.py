"""AgentTuning's HotpotQA split read from its official pickled files, and nothing but pandas/numpy classes
admitted by the unpickler."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.hotpotqa.split import load_split
from agentflan_eval.errors import DataFormatError

# (level, position, df_index, id, answer): first and last rows, read off AgentTuning's DataFrames by hand
KNOWN_ROWS = [
    ("easy", 0, 0, "5a832c3455429954d2e2ec41", "Badr Hari"),
    ("easy", -1, 99, "5a7bbfda554299042af8f7d5", "August 5, 1962"),
    ("medium", 0, 0, "5a7a06935542990198eaf050", "Arthur's Magazine"),
    ("medium", -1, 99, "5a79cc3c5542994bb94570b6", "2003"),
    ("hard", 0, 4367, "5a7613c15542994ccc9186bf", "Gesellschaft mit beschränkter Haftung"),
    ("hard", -1, 3317, "5a7ea14655429930675135ab", "Oneida Limited"),
]


@pytest.mark.parametrize(("level", "pos", "df_index", "qid", "answer"), KNOWN_ROWS)
def test_split_rows_as_agenttuning_pickled_them(
    data_dir: Path, level: str, pos: int, df_index: int, qid: str, answer: str
) -> None:
    rows = load_split(data_dir / f"agenttuning/hotpotQA/src/data/{level}.joblib")
    assert len(rows) == 100 and len({r["id"] for r in rows}) == 100
    row = rows[pos]
    assert (row["df_index"], row["id"], row["answer"], row["level"]) == (df_index, qid, answer, level)
    titles = row["context"]["title"] if isinstance(row["context"], dict) else [t for t, _ in row["context"]]
    assert len(titles) == 10 and all(isinstance(t, str) for t in titles)
    json.dumps(rows)  # plain values only: numpy arrays became lists


def test_hard_split_is_hotpotqa_dev_question_for_question(data_dir: Path) -> None:
    """The hard level comes from HotpotQA's dev set: every row matches ReAct's copy of it."""
    dev = {
        d["question"]: d
        for d in json.loads((data_dir / "react_hotpotqa/data/hotpot_dev_v1_simplified.json").read_text())
    }
    for r in load_split(data_dir / "agenttuning/hotpotQA/src/data/hard.joblib"):
        assert (dev[r["question"]]["answer"], dev[r["question"]]["type"]) == (r["answer"], r["type"])


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


def test_a_pickle_naming_other_classes_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(pickle.dumps(_Boom(), protocol=2))
    with pytest.raises(DataFormatError, match="posix.system is not admitted"):
        load_split(bad)
