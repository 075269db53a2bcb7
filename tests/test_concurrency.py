"""--concurrency is the one knob for episodes in flight: counted through the runner itself on real
HotpotQA samples, for the lock-step replay backend and for hf (whose decode rows follow from it). The vLLM
stand-in engine and the openai backend are counted in their own test modules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import InFlight, tiny_llama

from agentflan_eval import runner
from agentflan_eval.config import RunConfig


def _config(tmp_path: Path, data_dir: Path, **kw: object) -> RunConfig:
    return RunConfig(
        tasks=["hotpotqa"], output_dir=tmp_path / "runs", run_id="r", data_dir=data_dir, report=False, **kw
    )


def test_replay_keeps_concurrency_episodes_in_flight(
    tmp_path: Path, data_dir: Path, in_flight: InFlight
) -> None:
    script = tmp_path / "replies.jsonl"
    replies = ["Thought 1: look.\nAction 1: Search[Milhouse]", "Thought 2: done.\nAction 2: Finish[nobody]"]
    script.write_text(json.dumps({"task": "hotpotqa", "sample_id": "*", "replies": replies}) + "\n")
    _, results = runner.run(
        _config(tmp_path, data_dir, backend="replay", replay_file=script, limit=12, concurrency=5)
    )
    assert (in_flight.peak, in_flight.started, in_flight.now) == (5, 12, 0)
    assert results.tasks["hotpotqa"].n == 12


@pytest.mark.parametrize("concurrency", [1, 32])
def test_hf_keeps_concurrency_episodes_in_flight_and_decodes_that_many_rows(
    concurrency: int,
    tmp_path_factory: pytest.TempPathFactory,
    embedded_dir: Path,
    data_dir: Path,
    in_flight: InFlight,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = tiny_llama(tmp_path_factory.mktemp("tiny4k"), embedded_dir, max_position_embeddings=4096)
    backends = []
    make_backend = runner.make_backend

    def keep(config: RunConfig):  # type: ignore[no-untyped-def]
        backends.append(make_backend(config))
        return backends[-1]

    monkeypatch.setattr(runner, "make_backend", keep)
    out = tmp_path_factory.mktemp("runs")
    config = _config(
        out, data_dir, model=str(model), limit=concurrency + 8, concurrency=concurrency, max_new_tokens=4
    )
    _, results = runner.run(config)
    (backend,) = backends
    assert backend.streaming and backend.batcher.max_rows == concurrency
    assert backend.batcher.stats.widest == concurrency  # a step decoded every episode's reply together
    assert (in_flight.peak, in_flight.started, in_flight.now) == (concurrency, concurrency + 8, 0)
    assert results.tasks["hotpotqa"].n == concurrency + 8


def test_the_replaced_flags_say_what_replaced_them(capsys: pytest.CaptureFixture[str]) -> None:
    from agentflan_eval.cli import _replaced_flag, main

    for flag in ("--batch-size", "--max-connections"):
        assert main(["run", "--tasks", "hotpotqa", flag, "4"]) == 2
        assert (
            capsys.readouterr().err
            == f"error: {flag} was replaced by --concurrency (episodes in flight, for every backend)\n"
        )
    # finetune train keeps its own --batch-size, also beside a path named "run"
    assert _replaced_flag(["finetune", "train", "--output-dir", "run", "--batch-size", "4"]) is None
    assert _replaced_flag(["-v", "run", "--batch-size=4"]) is not None


def test_old_manifests_load_with_the_concurrency_they_ran_with() -> None:
    assert (
        RunConfig.model_validate({"backend": "openai", "batch_size": 8, "max_connections": 64}).concurrency
        == 64
    )
    assert (
        RunConfig.model_validate({"backend": "replay", "batch_size": 3, "max_connections": 8}).concurrency
        == 3
    )
