"""Shared test fixtures: real data from ../shared/data, and an offline, isolated cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AGENTFLAN_DATA_DIR", REPO.parent / "shared" / "data"))
os.environ["AGENTFLAN_DATA_DIR"] = str(DATA_DIR)  # subprocesses (CLI tests) find the data too


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "README.md").is_file():
        pytest.fail(f"benchmark data not found at {DATA_DIR}; set AGENTFLAN_DATA_DIR")
    return DATA_DIR


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never download: a missing file must fail loudly, not hang on the network."""
    monkeypatch.setenv("AGENTFLAN_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedded_dir() -> Path:
    """The embedded SmolLM2 GGUF, dequantised once into the cache (≈20 s the first time)."""
    from agentflan_eval.model_resolve import converted_gguf_dir, embedded_gguf

    return converted_gguf_dir(embedded_gguf())
