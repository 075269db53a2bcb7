"""Downloads of missing data files: an unreachable source fails at once, without a client's retries."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentflan_eval import data as data_mod
from agentflan_eval.data import DataFile, DataResolver
from agentflan_eval.errors import DataMissingError

TEVAL = DataFile(
    "t_eval/data/instruct_v2.json",
    "Hub lovesnowbest/T-Eval",
    hub_repo="lovesnowbest/T-Eval",
    hub_filename="data/instruct_v2.json",
)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port that accepts connections, standing in for a reachable Hub."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                server.accept()[0].close()
            except TimeoutError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield int(server.getsockname()[1])
    stop.set()
    t.join()
    server.close()


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache, no proxy, and a fresh reachability memo."""
    monkeypatch.setenv("AGENTFLAN_CACHE", str(tmp_path / "cache"))
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    data_mod._connects.cache_clear()
    return tmp_path / "cache"


def test_unreachable_hub_fails_at_once_and_is_probed_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_cache: Path
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    probes: list[tuple[str, int]] = []
    real = socket.create_connection
    monkeypatch.setattr(
        socket, "create_connection", lambda addr, **kw: (probes.append(addr), real(addr, **kw))[1]
    )
    resolver = DataResolver(tmp_path / "empty", offline=False)
    t0 = time.perf_counter()
    for _ in range(3):
        with pytest.raises(DataMissingError, match="t_eval/data/instruct_v2.json.*lovesnowbest/T-Eval"):
            resolver.path(TEVAL)
    assert time.perf_counter() - t0 < 5  # not ~25 s of backoff per file
    assert not fresh_cache.exists()
    assert len(probes) == 1


def test_probe_goes_to_the_proxy_that_serves_the_host(
    monkeypatch: pytest.MonkeyPatch, listening: int
) -> None:
    data_mod._connects.cache_clear()
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{listening}")
    monkeypatch.setenv("no_proxy", "")
    assert data_mod.reachable(f"https://127.0.0.1:{closed_port()}/file")  # through the listening proxy
    monkeypatch.delenv("https_proxy")
    data_mod._connects.cache_clear()
    assert not data_mod.reachable(f"https://127.0.0.1:{closed_port()}/file")
