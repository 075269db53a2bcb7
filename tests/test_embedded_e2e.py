"""The real embedded SmolLM2 GGUF runs HotpotQA episodes end to end through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentflan_eval.data import sha256_file
from agentflan_eval.model_resolve import embedded_gguf


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentflan_eval", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=1200,
        check=False,
        env={**os.environ, "AGENTFLAN_OFFLINE": "1"},
    )


@pytest.mark.slow
def test_embedded_model_two_hotpotqa_episodes_resume_and_rescore(tmp_path: Path, embedded_dir: Path) -> None:
    args = (
        "run",
        "--tasks",
        "hotpotqa",
        "--limit",
        "2",
        "--max-new-tokens",
        "32",
        "--output-dir",
        "runs",
        "--no-report",
    )
    first = _cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    episodes = run_dir / "episodes/hotpotqa.jsonl"
    recs = [json.loads(x) for x in episodes.read_text().splitlines()]
    assert [r["sample_id"] for r in sorted(recs, key=lambda r: r["sample_id"])] == ["easy-0", "medium-0"]
    for r in recs:
        assert r["steps"] and r["completion_tokens"] > 0 and r["prompt_tokens"] > 500  # few-shot prompt
        assert 0.0 <= r["score"]["value"] <= 1.0
        assert r["status"] in ("completed", "turn_limit", "context_limit")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["model_hash"] == sha256_file(embedded_gguf())
    assert manifest["chat_template"] == "tokenizer" and "<|im_start|>user\n" in manifest["rendered_example"]
    assert any("offline search corpus" in d["what"] for d in manifest["deviations"])
    assert {
        "path": "agenttuning/hotpotQA/src/data/easy.joblib",
        "sha256": sha256_file(
            Path(os.environ["AGENTFLAN_DATA_DIR"]) / "agenttuning/hotpotQA/src/data/easy.joblib"
        ),
    } in manifest["data_files"]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["tasks"]["hotpotqa"]["n"] == 2 and "hotpotqa" in first.stdout

    before = episodes.read_bytes()
    second = _cli(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert episodes.read_bytes() == before  # nothing regenerated
    assert json.loads((run_dir / "results.json").read_text())["tasks"] == results["tasks"]

    third = _cli("rescore", str(run_dir), cwd=tmp_path)
    assert third.returncode == 0 and "0 scores changed" in third.stdout
    assert json.loads((run_dir / "results.json").read_text())["tasks"] == results["tasks"]
