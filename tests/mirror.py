"""A data mirror on 127.0.0.1, laid out like the official hosts (``/<host>/<path>``, the Hub's
``/datasets/<repo>/resolve/<rev>/<file>``), serving ../shared/data under each file's official URL.

It honours ``Range`` (so resumed downloads are exercised for real), can cut a file's first response short
(an interrupted download) and can serve other bytes for a path (a corrupted file). Files that are not in
../shared/data are served from ``extra`` (tests build them in the official format)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from agentflan_eval.data import lock


@dataclass
class Mirror:
    root: str = ""
    files: dict[str, bytes | Path] = field(default_factory=dict)  # URL path (with query) -> content
    cut_once: set[str] = field(default_factory=set)  # first response sends half, then closes
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)

    def add_url(self, url: str, content: bytes | Path) -> None:
        p = urlparse(url)
        own = bool(self.root) and url.startswith(
            self.root + "/"
        )  # a Hub URL already on this mirror (HF_ENDPOINT)
        key = p.path if own else f"/{p.netloc}{p.path}"
        self.files[key + (f"?{p.query}" if p.query else "")] = content


def mirror_of(data_dir: Path) -> Mirror:
    m = Mirror()
    for path, (url, _pin) in lock().items():
        if (data_dir / path).is_file():
            m.add_url(url, data_dir / path)
    return m


def _handler(m: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            m.requests.append((self.path, self.headers.get("Range")))
            content = m.files.get(self.path)
            if content is None:
                self.send_error(404)
                return
            body = content.read_bytes() if isinstance(content, Path) else content
            start = 0
            if (rng := self.headers.get("Range")) and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            rest = body[start:]
            self.send_header("Content-Length", str(len(rest)))
            self.end_headers()
            if self.path in m.cut_once:
                m.cut_once.discard(self.path)
                self.wfile.write(rest[: len(rest) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(rest)

    return Handler


@contextmanager
def serving(m: Mirror, port: int = 0) -> Iterator[Mirror]:
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(m))
    m.root = f"http://127.0.0.1:{server.server_address[1]}"
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield m
    finally:
        server.shutdown()
        server.server_close()


if (
    __name__ == "__main__"
):  # a standing mirror for trying a fresh install: python tests/mirror.py DATA_DIR [PORT]
    import sys
    import time

    with serving(mirror_of(Path(sys.argv[1])), port=int(sys.argv[2]) if len(sys.argv) > 2 else 0) as running:
        print(f"AGENTFLAN_DATA_MIRROR={running.root}", flush=True)
        while True:
            time.sleep(3600)
