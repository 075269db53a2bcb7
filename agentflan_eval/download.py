"""One HTTP(S) download into a file: resumable, shown with a progress bar, checked against its pin.

The bytes go to ``<target>.part`` first; a later call (or a retry after a dropped connection) asks the
server for the rest with a ``Range`` header and appends, so an interrupted multi-megabyte download does not
start over. The file takes its final name only once its size and sha256 match the pin (when there is one).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from agentflan_eval.errors import DataChecksumError

log = logging.getLogger(__name__)

CHUNK = 1 << 16
TIMEOUT_S = 30.0
ATTEMPTS = 4  # a dropped connection is retried (resuming) this many times in all


@dataclass(frozen=True)
class Pin:
    """What a file must be: its sha256 (None: not published where we could read it) and size in bytes."""

    sha256: str | None = None
    size: int | None = None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def check(path: Path, pin: Pin, name: str) -> str:
    """The file's sha256, after checking it against ``pin``; a mismatch raises naming ``name``."""
    size = path.stat().st_size
    if pin.size is not None and size != pin.size:
        raise DataChecksumError(f"data file {name}: {size} bytes, expected {pin.size} ({path})")
    digest = sha256_file(path)
    if pin.sha256 is not None and digest != pin.sha256:
        raise DataChecksumError(
            f"data file {name}: sha256 {digest[:12]}… does not match the pinned {pin.sha256[:12]}… ({path})"
        )
    return digest


def download(url: str, target: Path, pin: Pin, name: str, progress: bool = True) -> str:
    """Downloads ``url`` to ``target`` (resuming a ``.part`` left by an earlier try); returns its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _fetch_rest(url, part, pin, name, progress)
            break
        except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, a connection cut mid-body
            if isinstance(e, urllib.error.HTTPError) and e.code != 416 and e.code < 500:
                raise  # 404, 403: retrying will not help
            if attempt == ATTEMPTS:
                raise
            log.warning("download of %s interrupted (%s); resuming (attempt %d)", name, e, attempt + 1)
            time.sleep(min(2.0**attempt, 10.0))
    try:
        digest = check(part, pin, name)
    except DataChecksumError:
        part.unlink(missing_ok=True)  # a wrong file is not a start to resume from
        raise
    part.replace(target)
    return digest


def _fetch_rest(url: str, part: Path, pin: Pin, name: str, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    if part.exists() and pin.size is not None and have >= pin.size:
        return  # complete already (an empty file too): check() decides whether it is right
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
        if have and r.status != 206:  # the server ignored the range: start over
            have = 0
        length = r.headers.get("Content-Length")
        total = pin.size or (have + int(length) if length else None)
        with (
            open(part, "ab" if have else "wb") as out,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=name,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while block := r.read(CHUNK):
                out.write(block)
                bar.update(len(block))
        if length is not None and part.stat().st_size < have + int(length):
            raise ConnectionError(
                f"connection closed after {part.stat().st_size} of {have + int(length)} bytes"
            )
