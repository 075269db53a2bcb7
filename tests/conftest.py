"""Shared test fixtures: real data from ../shared/data, and an offline, isolated cache."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from agentflan_eval.benchmarks.os.benchmark import OSInteraction

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("AGENTFLAN_DATA_DIR", REPO.parent / "shared" / "data"))
os.environ["AGENTFLAN_DATA_DIR"] = str(DATA_DIR)  # subprocesses (CLI tests) find the data too


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (
        DATA_DIR / "agenttuning"
    ).is_dir():  # ../shared/data, or the cache `data fetch --all-files` filled
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


def tiny_llama(out: Path, tokenizer_dir: Path, **config: object) -> Path:
    """A randomly initialised 2-layer, 32-wide Llama with a real tokenizer (and its chat template); a
    160-token context unless ``config`` says otherwise, so real prompts hit the context limit."""
    from agentflan_eval.model_zoo.random_weights import build_random_llama

    return build_random_llama(out, "tiny", tokenizer_dir, **{"max_position_embeddings": 160, **config})


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Path:
    """The embedded model's tokenizer on a tiny random Llama: fast unit tests of the hf backend."""
    return tiny_llama(tmp_path_factory.mktemp("tiny"), embedded_dir)


class InFlight:
    """Counts HotpotQA episodes between their environment's start and its close, through the runner."""

    def __init__(self) -> None:
        self.now = self.peak = self.started = 0

    def opened(self) -> None:
        self.now += 1
        self.started += 1
        self.peak = max(self.peak, self.now)

    def closed(self) -> None:
        self.now -= 1


@pytest.fixture()
def in_flight(monkeypatch: pytest.MonkeyPatch) -> InFlight:
    """Every HotpotQA environment the run makes is counted while it is open (close is always called)."""
    from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA

    counter, make_env = InFlight(), HotpotQA.make_env

    def counted(self, sample):  # type: ignore[no-untyped-def]
        env = make_env(self, sample)
        close = env.close
        counter.opened()

        def closing() -> None:
            counter.closed()
            close()

        env.close = closing  # type: ignore[method-assign]
        return env

    monkeypatch.setattr(HotpotQA, "make_env", counted)
    return counter


@pytest.fixture()
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The stand-in vLLM (tests/fake_vllm.py) as an importable package: spawned replica workers find it
    through sys.path too."""
    from fake_vllm import FAKE_VLLM

    root = tmp_path / "fake_site"
    (root / "vllm").mkdir(parents=True)
    (root / "vllm" / "__init__.py").write_text(FAKE_VLLM)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    module = importlib.import_module("vllm")
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


@pytest.fixture(scope="session")
def os_bench(data_dir: Path) -> OSInteraction:
    """The OS-interaction task on the real data; a missing sandbox fails the test rather than skipping it."""
    from agentflan_eval.benchmarks.os.benchmark import OSInteraction
    from agentflan_eval.config import RunConfig
    from agentflan_eval.data import DataResolver

    b = OSInteraction(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    reason = b.unavailable()
    if reason:
        pytest.fail(f"OS task cannot run: {reason}")
    return b
