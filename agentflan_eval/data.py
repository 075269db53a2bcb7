"""Where a benchmark's data files come from: --data-dir, the local cache, then the official source."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from agentflan_eval.errors import DataFormatError, DataMissingError

log = logging.getLogger(__name__)

DATA_ENV = "AGENTFLAN_DATA_DIR"
OFFLINE_ENV = "AGENTFLAN_OFFLINE"


def cache_root() -> Path:
    return Path(os.environ.get("AGENTFLAN_CACHE", Path.home() / ".cache" / "agentflan_eval"))


@dataclass(frozen=True)
class DataFile:
    """One file a benchmark reads, named by its path inside the data dir and its official source."""

    path: str
    source: str  # human-readable: repository and path, or Hub dataset
    url: str | None = None  # direct download URL
    hub_repo: str | None = None  # Hub dataset repo, downloaded with huggingface_hub
    hub_filename: str | None = None


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)  # honours HF_ENDPOINT


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host (or the proxy that serves it) opens.

    One quick probe per host and process, so an offline machine fails at once: huggingface_hub retries a failed
    lookup with backoff for ~25 s per file, which every offline run paid at start-up."""
    p = urlparse(url)
    proxy = urllib.request.getproxies().get(p.scheme)
    if proxy and p.hostname and not urllib.request.proxy_bypass(p.hostname):
        p = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    if not p.hostname:
        return False
    return _connects(p.hostname, p.port or (443 if p.scheme == "https" else 80), timeout)


@cache
def _connects(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError as e:
        log.info("%s:%d unreachable (%s): not downloading from it", host, port, e)
        return False


class DataResolver:
    def __init__(self, data_dir: Path | None = None, offline: bool | None = None):
        env_dir = os.environ.get(DATA_ENV)
        self.data_dirs = [Path(p) for p in (data_dir, env_dir) if p]
        self.cache = cache_root() / "data"
        self.offline = offline if offline is not None else os.environ.get(OFFLINE_ENV, "") not in ("", "0")

    def find(self, f: DataFile) -> Path | None:
        """The local copy of ``f``, or None; never downloads."""
        for root in [*self.data_dirs, self.cache]:
            p = root / f.path
            if p.exists():
                return p
        return None

    def path(self, f: DataFile) -> Path:
        local = self.find(f)
        if local is not None:
            return local
        source_url = hub_endpoint() if f.hub_repo else f.url
        if not self.offline and source_url and reachable(source_url):
            try:
                return self._download(f)
            except Exception as e:  # noqa: BLE001 - any network failure means "not available"
                log.info("download of %s failed: %s", f.path, e)
        where = ", ".join(str(d) for d in self.data_dirs) or f"${DATA_ENV} (unset)"
        raise DataMissingError(
            f"data file {f.path} not found in {where} or the cache {self.cache}; it comes from {f.source}"
        )

    def _download(self, f: DataFile) -> Path:
        target = self.cache / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.hub_repo:
            from huggingface_hub import hf_hub_download

            got = hf_hub_download(f.hub_repo, f.hub_filename or Path(f.path).name, repo_type="dataset")
            shutil.copyfile(got, target)
        else:
            assert f.url is not None
            tmp = target.with_suffix(target.suffix + ".part")
            with urllib.request.urlopen(f.url, timeout=30) as r, open(tmp, "wb") as out:
                shutil.copyfileobj(r, out)
            tmp.replace(target)
        return target


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) pairs; a line that is not a JSON object names the file and line."""
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(path, i, f"invalid JSON ({e.msg})") from None
            if not isinstance(rec, dict):
                raise DataFormatError(path, i, "expected a JSON object")
            yield i, rec


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, f"invalid JSON ({e.msg})") from None
