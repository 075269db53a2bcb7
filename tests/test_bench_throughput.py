"""The throughput script on a random-weight model: its three measurements run, and batching does not change a
greedy float32 reply; the random-model builder gives the asked shape and precision."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from agentflan_eval.model_zoo.random_weights import SHAPES, build_random_llama

ROOT = Path(__file__).resolve().parents[1]


def test_random_model_has_the_shape_precision_and_tokenizer(tmp_path: Path, embedded_dir: Path) -> None:
    from safetensors import safe_open
    from transformers import AutoConfig, AutoTokenizer

    out = build_random_llama(tmp_path / "m", "tiny", embedded_dir, dtype="bfloat16")
    config = AutoConfig.from_pretrained(out)
    assert config.num_hidden_layers == SHAPES["tiny"]["num_hidden_layers"]
    assert config.vocab_size == len(AutoTokenizer.from_pretrained(out)) == 49152
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    assert dtypes == {"torch.bfloat16"}
    with pytest.raises(ValueError, match="unknown model shape 'llama-9b'"):
        build_random_llama(tmp_path / "x", "llama-9b", embedded_dir)


def test_bench_script_measures_a_b_and_c(tmp_path: Path, embedded_dir: Path, data_dir: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench_throughput.py"), "--random-shape", "tiny", "--random-dir",
         str(tmp_path / "tiny"), "--episodes", "3", "--batch-size", "2", "--max-new-tokens", "8",
         "--raw-prompts", "4", "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tokens = {m[0]: int(m[1]) for m in re.findall(r"^\((a|b|c)\) .* tok/s\s+\((\d+) tokens", proc.stdout, re.MULTILINE)}
    assert set(tokens) == {"a", "b", "c"} and tokens["c"] > 0
    assert tokens["a"] == tokens["b"] > 0, "float32 greedy replies do not depend on what shares the batch"
    assert re.search(r"^\(a\)/\(b\) = \d+\.\d\d", proc.stdout, re.MULTILINE)
    assert re.search(r"^peak RSS \d+ MiB", proc.stdout, re.MULTILINE)
