"""Pickled official files load through unpicklers that admit plain data only: Mind2Web's candidate ranks in
their official shape (numpy scores included) load; a pickle that names a callable is refused before it runs."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from agentflan_eval.benchmarks.common.safe_pickle import load_plain
from agentflan_eval.benchmarks.mind2web.benchmark import SCORES, Mind2Web
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.errors import DataFormatError


class _Runs:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch /tmp/agentflan-pickle-ran",))


def _official_ranks() -> dict[str, dict[str, dict[str, object]]]:
    """scores_all_data.pkl's shape: {"scores": {sample: {candidate: float}}, "ranks": {sample: {candidate: int}}}."""
    return {
        "scores": {"task_0_step_0": {"1087": np.float32(3.25), "1090": np.float32(-1.5)}},
        "ranks": {"task_0_step_0": {"1087": np.int64(0), "1090": 1}},
    }


def test_plain_data_with_numpy_scalars_loads() -> None:
    got = load_plain(io.BytesIO(pickle.dumps(_official_ranks())))
    assert got["ranks"]["task_0_step_0"] == {"1087": 0, "1090": 1}
    assert float(got["scores"]["task_0_step_0"]["1087"]) == 3.25


def test_a_pickle_that_names_a_callable_is_refused(tmp_path: Path) -> None:
    marker = Path("/tmp/agentflan-pickle-ran")
    marker.unlink(missing_ok=True)
    with pytest.raises(pickle.UnpicklingError, match="system is not admitted"):
        load_plain(io.BytesIO(pickle.dumps({"ranks": _Runs()})))
    assert not marker.exists()


def test_mind2web_reads_its_ranks_through_it(tmp_path: Path) -> None:
    (tmp_path / "mind2web").mkdir()
    (tmp_path / SCORES.path).write_bytes(pickle.dumps(_official_ranks()))
    bench = Mind2Web(RunConfig(), DataResolver(tmp_path, offline=True))
    assert bench.ranks == {"task_0_step_0": {"1087": 0, "1090": 1}}
    (tmp_path / SCORES.path).write_bytes(pickle.dumps({"ranks": _Runs()}))
    with pytest.raises(DataFormatError, match="not Mind2Web's candidate ranks"):
        _ = Mind2Web(RunConfig(), DataResolver(tmp_path, offline=True)).ranks
