"""Bad input: one line on stderr naming the problem, exit status 2, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTFLAN_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "agentflan_eval", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, p.stderr
    lines = [x for x in p.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


def test_missing_model_path(tmp_path: Path) -> None:
    msg = one_line_error(cli("run", "--model", str(tmp_path / "nope"), "--tasks", "hotpotqa", cwd=tmp_path))
    assert "not found" in msg and "nope" in msg


def test_corrupt_model_files(tmp_path: Path) -> None:
    (tmp_path / "bad.gguf").write_bytes(b"GGUF\x03\x00\x00\x00garbage")
    msg = one_line_error(
        cli("run", "--model", str(tmp_path / "bad.gguf"), "--tasks", "hotpotqa", cwd=tmp_path)
    )
    assert "cannot load GGUF file" in msg and "bad.gguf" in msg
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{ not json")
    msg = one_line_error(cli("run", "--model", str(folder), "--tasks", "hotpotqa", cwd=tmp_path))
    assert "cannot load model" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "neither config.json nor a .gguf" in one_line_error(
        cli("run", "--model", str(empty), cwd=tmp_path)
    )


def test_unknown_task_and_suite_list_valid_names(tmp_path: Path) -> None:
    msg = one_line_error(cli("run", "--tasks", "hotpotq", cwd=tmp_path))
    assert "unknown task 'hotpotq'" in msg and "Did you mean: hotpotqa" in msg
    msg = one_line_error(cli("run", "--suite", "held-on", cwd=tmp_path))
    assert "unknown suite 'held-on'" in msg and "held-out" in msg and "all" in msg


def test_corrupt_data_file_names_file_and_line(tmp_path: Path, data_dir: Path) -> None:
    """A data file that is not the pinned one (here a truncated pickle) is refused before it is read."""
    root = tmp_path / "data/agenttuning/hotpotQA/src"
    (root / "data").mkdir(parents=True)
    (root / "prompt.txt").write_bytes((data_dir / "agenttuning/hotpotQA/src/prompt.txt").read_bytes())
    for level in ("easy", "medium", "hard"):
        raw = (data_dir / f"agenttuning/hotpotQA/src/data/{level}.joblib").read_bytes()
        (root / f"data/{level}.joblib").write_bytes(raw[: len(raw) // 2] if level == "hard" else raw)
    replay = tmp_path / "r.jsonl"
    replay.write_text(
        json.dumps({"task": "hotpotqa", "sample_id": "*", "replies": ["Action 1: Finish[x]"]}) + "\n"
    )
    msg = one_line_error(
        cli(
            "run",
            "--backend",
            "replay",
            "--model",
            str(replay),
            "--tasks",
            "hotpotqa",
            "--data-dir",
            str(tmp_path / "data"),
            cwd=tmp_path,
        )
    )
    assert "src/data/hard.joblib" in msg and "bytes, expected" in msg


def test_missing_data_names_file_and_source(tmp_path: Path) -> None:
    replay = tmp_path / "r.jsonl"
    replay.write_text(json.dumps({"replies": []}) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "AGENTFLAN_DATA_DIR"}
    env.update(AGENTFLAN_OFFLINE="1", AGENTFLAN_CACHE=str(tmp_path / "cache"))
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentflan_eval",
            "run",
            "--backend",
            "replay",
            "--model",
            str(replay),
            "--tasks",
            "hotpotqa",
            "--data-dir",
            str(tmp_path / "empty"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
        check=False,
    )
    msg = one_line_error(p)
    assert "hotpotqa" in msg and "src/data/easy.joblib" in msg and "THUDM/AgentTuning" in msg
    assert "shared" not in msg  # the user's message never names this repository's CI layout


def test_corrupt_replay_file(tmp_path: Path) -> None:
    replay = tmp_path / "r.jsonl"
    replay.write_text('{"task": "hotpotqa", "replies": ["a"]}\n{"replies": "oops"}\n')
    msg = one_line_error(
        cli(
            "run",
            "--backend",
            "replay",
            "--model",
            str(replay),
            "--tasks",
            "hotpotqa",
            "--limit",
            "1",
            cwd=tmp_path,
        )
    )
    assert "r.jsonl:2" in msg


def test_unreachable_endpoint(tmp_path: Path) -> None:
    msg = one_line_error(
        cli(
            "run",
            "--backend",
            "openai",
            "--model",
            "m",
            "--api-base",
            "http://127.0.0.1:9/v1",
            "--tasks",
            "hotpotqa",
            "--limit",
            "1",
            cwd=tmp_path,
        )
    )
    assert "unreachable" in msg and "127.0.0.1:9" in msg


@pytest.mark.parametrize("args", [["run", "--help"], ["list", "--help"], ["rescore", "--help"]])
def test_help_explains(tmp_path: Path, args: list[str]) -> None:
    p = cli(*args, cwd=tmp_path)
    assert p.returncode == 0 and "usage:" in p.stdout


def test_rescore_of_a_non_run_dir(tmp_path: Path) -> None:
    assert "not a run directory" in one_line_error(cli("rescore", str(tmp_path), cwd=tmp_path))


def test_negative_kept_cache_budget(tmp_path: Path) -> None:
    msg = one_line_error(cli("run", "--tasks", "hotpotqa", "--kept-cache-gb", "-1", cwd=tmp_path))
    assert "--kept-cache-gb must be 0 or more" in msg
