"""Where a benchmark's data files come from: --data-dir, the local cache, then the official source.

Every file a task reads is pinned in ``data_lock.tsv`` (official URL at a fixed commit, sha256, size; made by
``scripts/make_data_lock.py``); a few hosted elsewhere (Hub datasets, Google Drive) carry their URL on their
``DataFile`` and have no published checksum, so the one seen at first download is recorded beside the file and
held to after that. A file is used only once it matches its pin: a mismatch is a one-line error naming it.
``AGENTFLAN_DATA_MIRROR`` sends every non-Hub download to a mirror laid out as ``<mirror>/<host>/<path>``;
``HF_ENDPOINT`` does the same for the Hub; ``AGENTFLAN_OFFLINE=1`` never touches the network.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import socket
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from agentflan_eval.download import Pin, check, download, sha256_file
from agentflan_eval.errors import DataChecksumError, DataFormatError, DataMissingError

log = logging.getLogger(__name__)

DATA_ENV = "AGENTFLAN_DATA_DIR"
OFFLINE_ENV = "AGENTFLAN_OFFLINE"
MIRROR_ENV = "AGENTFLAN_DATA_MIRROR"
LOCK_FILE = Path(__file__).with_name("data_lock.tsv")
__all__ = ["DATA_ENV", "DataFile", "DataResolver", "Pin", "read_json", "read_jsonl", "sha256_file"]


def cache_root() -> Path:
    return Path(os.environ.get("AGENTFLAN_CACHE", Path.home() / ".cache" / "agentflan_eval"))


@dataclass(frozen=True)
class DataFile:
    """One file a benchmark reads, named by its path inside the data dir and its official source.

    Files in ``data_lock.tsv`` take their URL and checksum from there; ``url``/``hub_repo`` name the source of
    those that are not (hosts that publish no checksum)."""

    path: str
    source: str  # human-readable: repository and path, or Hub dataset
    url: str | None = None  # direct download URL
    hub_repo: str | None = None  # Hub dataset repo
    hub_filename: str | None = None

    @property
    def pin(self) -> Pin:
        entry = lock().get(self.path)
        return entry[1] if entry else Pin()

    @property
    def official_url(self) -> str | None:
        entry = lock().get(self.path)
        if entry:
            return entry[0]
        if self.hub_repo:
            return f"{hub_endpoint()}/datasets/{self.hub_repo}/resolve/main/{self.hub_filename or Path(self.path).name}"
        return self.url


@cache
def lock() -> dict[str, tuple[str, Pin]]:
    """path -> (official URL, pin), from ``data_lock.tsv``."""
    with open(LOCK_FILE, newline="", encoding="utf-8") as fh:
        return {
            r["path"]: (r["url"], Pin(r["sha256"] or None, int(r["bytes"]) if r["bytes"] else None))
            for r in csv.DictReader(fh, delimiter="\t")
        }


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT).rstrip("/")  # honours HF_ENDPOINT


def download_url(url: str) -> str:
    """``url`` itself, or its copy on ``$AGENTFLAN_DATA_MIRROR`` (``<mirror>/<host>/<path>[?query]``);
    Hub URLs already point at ``$HF_ENDPOINT``."""
    mirror = os.environ.get(MIRROR_ENV, "").rstrip("/")
    if not mirror or url.startswith(hub_endpoint() + "/"):
        return url
    p = urlparse(url)
    return f"{mirror}/{p.netloc}{p.path}" + (f"?{p.query}" if p.query else "")


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host (or the proxy that serves it) opens.

    One quick probe per host and process, so an offline machine fails at once instead of paying a
    client's retries with backoff for every file."""
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
    def __init__(self, data_dir: Path | None = None, offline: bool | None = None, progress: bool = True):
        env_dir = os.environ.get(DATA_ENV)
        self.data_dirs = [Path(p) for p in (data_dir, env_dir) if p]
        self.cache = cache_root() / "data"
        self.offline = offline if offline is not None else os.environ.get(OFFLINE_ENV, "") not in ("", "0")
        self.progress = progress
        self._checked: dict[tuple[str, int, int], str] = {}

    def find(self, f: DataFile) -> Path | None:
        """The local copy of ``f``, or None; never downloads and does not check it."""
        for root in [*self.data_dirs, self.cache]:
            p = root / f.path
            if p.exists():
                return p
        return None

    def fetchable(self, f: DataFile) -> bool:
        """Whether ``path`` may download ``f``: online and with a source (not whether the host answers)."""
        return not self.offline and f.official_url is not None

    def path(self, f: DataFile) -> Path:
        """The checked local copy of ``f``, downloaded first when it is missing and a download is allowed."""
        local = self.find(f)
        if local is None:
            local = self.fetch(f)
        self.verify(f, local)
        return local

    def verify(self, f: DataFile, local: Path) -> str:
        """``local``'s sha256 once it matches ``f``'s pin (or the checksum recorded at its first download)."""
        if local.is_dir():  # a folder of files (fine-tuning sources): each file inside has its own pin
            return ""
        st = local.stat()
        key = (str(local), st.st_size, st.st_mtime_ns)
        if key not in self._checked:
            pin = f.pin
            recorded = _recorded(local)
            if pin.sha256 is None and recorded is not None:
                pin = Pin(recorded, pin.size)
            self._checked[key] = check(local, pin, f.path)
        return self._checked[key]

    def fetch(self, f: DataFile, force: bool = False) -> Path:
        """Downloads ``f`` into the cache (resuming a partial download) and checks it; returns its path."""
        target = self.cache / f.path
        if target.exists() and not force:
            return target
        url = f.official_url
        if url is None or self.offline:
            raise DataMissingError(self._missing(f))
        src = download_url(url)
        if not reachable(src):
            raise DataMissingError(self._missing(f, f"{urlparse(src).netloc} is unreachable"))
        try:
            digest = download(src, target, f.pin, f.path, self.progress)
        except DataChecksumError:
            raise
        except Exception as e:  # noqa: BLE001 - any network failure means "not available"
            raise DataMissingError(self._missing(f, f"download from {src} failed: {e}")) from None
        if f.pin.sha256 is None:
            _record(target, digest)
        return target

    def _missing(self, f: DataFile, why: str = "") -> str:
        where = ", ".join(str(d) for d in self.data_dirs)
        where = f"{where} or the cache {self.cache}" if where else f"the cache {self.cache}"
        if why:
            how = why
        elif f.official_url is None:
            how = "it has no download source"
        else:
            how = "offline: not downloaded (`python -m agentflan_eval data fetch` downloads it)"
        return f"data file {f.path} is not in {where}; {how} (official source: {f.source})"

    def missing(self, files: Iterable[DataFile]) -> list[DataFile]:
        return [f for f in files if self.find(f) is None]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _recorded(path: Path) -> str | None:
    side = _sidecar(path)
    if not side.exists():
        return None
    return side.read_text().strip() or None


def _record(path: Path, digest: str) -> None:
    """Keeps the sha256 a file without a published checksum had at its first download."""
    _sidecar(path).write_text(digest + "\n")


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
