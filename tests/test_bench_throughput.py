"""The throughput script on a random-weight model: its three measurements run, and batching does not change a
greedy float32 reply; the random-model builder gives the asked shape and precision."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentflan_eval.model_zoo.random_weights import SHAPES, build_random_llama, cached_random_llama

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


def test_cached_random_model_is_reused_per_tokenizer(
    tmp_path: Path, embedded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.setenv("AGENTFLAN_CACHE", str(tmp_path / "cache"))
    first = cached_random_llama("tiny", embedded_dir)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert cached_random_llama("tiny", embedded_dir) == first  # found, not rebuilt
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    other = tmp_path / "tok"
    other.mkdir()
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(embedded_dir / f, other / f)
    (other / "tokenizer.json").write_text((other / "tokenizer.json").read_text() + "\n")
    assert cached_random_llama("tiny", other) != first  # another tokenizer, another model
    assert not list((tmp_path / "cache" / "random-models").glob("*.tmp"))


def test_bench_script_measures_a_b_and_c(tmp_path: Path, embedded_dir: Path, data_dir: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/bench_throughput.py"),
            "--random-shape",
            "tiny",
            "--random-dir",
            str(tmp_path / "tiny"),
            "--episodes",
            "3",
            "--concurrency",
            "2",
            "--max-new-tokens",
            "8",
            "--raw-prompts",
            "4",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    tokens = {
        m[0]: int(m[1])
        for m in re.findall(r"^\((a|b|c)\) .* tok/s\s+\((\d+) tokens", proc.stdout, re.MULTILINE)
    }
    assert set(tokens) == {"a", "b", "c"} and tokens["c"] > 0
    assert tokens["a"] == tokens["b"] > 0, "float32 greedy replies do not depend on what shares the batch"
    assert re.search(r"^\(a\)/\(b\) = \d+\.\d\d", proc.stdout, re.MULTILINE)
    assert re.search(r"^peak RSS \d+ MiB", proc.stdout, re.MULTILINE)
    steps = re.search(
        r"^decoding thread in \(a\): (\d+) steps of [\d.]+ rows on average \((\d+) tokens\)",
        proc.stdout,
        re.MULTILINE,
    )
    assert steps and int(steps[2]) == tokens["a"]  # each row of each step is one generated token
    assert tokens["a"] / 2 <= int(steps[1]) < tokens["a"]  # batch 2: rows decode together


def test_decode_step_script_times_cold_warm_and_generate(tiny_model_dir: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/bench_decode_step.py"),
            "--model",
            str(tiny_model_dir),
            "--rows",
            "2",
            "--prompt-tokens",
            "40",
            "--new-tokens",
            "3",
            "--profile",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    passes = dict(
        re.findall(r"^ours, (cold|warm): .*; (\d+ steps of [\d.]+ rows)", proc.stdout, re.MULTILINE)
    )
    assert passes == {"cold": "3 steps of 2.0 rows", "warm": "3 steps of 2.0 rows"}  # one step per new token
    prefill = re.findall(r"prompt tokens (\d+) computed, (\d+) kept", proc.stdout)
    assert prefill == [
        ("78", "0"),
        ("0", "78"),
    ]  # 2 rows x 39 (the last prompt token is fed by the first step)
    assert "aten::" in proc.stdout and re.search(r"^generate: .* ms a step", proc.stdout, re.MULTILINE)
