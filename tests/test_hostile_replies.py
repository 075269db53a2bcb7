"""Replies and endpoints that once killed a run: a lone surrogate in a reply, an endpoint that never answers.

Each goes through the real CLI (replay file, or a fake OpenAI-compatible server on loopback); the run must
exit 0 with every episode recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agentflan_eval.records import EpisodeStatus
from agentflan_eval.store import RunStore

ODD = "odd \ud800 text \udfff"  # lone surrogates: valid in a Python str and in JSON, never in UTF-8


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run(
        [sys.executable, "-m", "agentflan_eval", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )


def _records(out: Path) -> list:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return list(RunStore(run_dir).episodes("hotpotqa"))


def test_lone_surrogate_through_replay(tmp_path: Path) -> None:
    script = tmp_path / "replies.jsonl"
    replies = [f" {ODD}", f"Finish[{ODD}]"]  # a Thought, then the Action
    script.write_text(json.dumps({"task": "hotpotqa", "sample_id": "*", "replies": replies}) + "\n")
    res = _cli(
        "run", "--backend", "replay", "--replay-file", str(script), "--tasks", "hotpotqa", "--limit", "4",
        "--output-dir", str(tmp_path / "out"), cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    recs = _records(tmp_path / "out")
    assert len(recs) == 4 and all(r.status == EpisodeStatus.COMPLETED for r in recs)
    assert all(ODD in r.steps[-1].reply for r in recs)  # kept exactly, code points and all


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.posts = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        self.stop = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:
        return None

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as "\ud800"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # /v1/models answers: the endpoint looks alive
        self._send(
            {"object": "list", "data": [{"id": "fake", "object": "model", "created": 0, "owned_by": "t"}]}
        )

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.posts += 1
        if self.server.mode == "silent":
            self.server.stop.wait(600)  # never answers (until the test ends)
            return
        msgs = body["messages"]  # HotpotQA's raw completion prompt arrives as one user turn
        asked = msgs[-1]["content"].rsplit("\n", 1)[-1]  # "Thought n:" or "Action n:"
        text = {"Action 1:": f"Search[{ODD}]"}.get(asked, f" {ODD}" if asked.startswith("Thought") else "")
        text = text or f"Finish[{ODD}]"
        message = {"role": "assistant", "content": text}
        self._send(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )


@pytest.fixture()
def server(request: pytest.FixtureRequest) -> Iterator[_Server]:
    srv = _Server(request.param)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


@pytest.mark.parametrize("server", ["surrogate"], indirect=True)
def test_lone_surrogate_from_an_endpoint(server: _Server, tmp_path: Path) -> None:
    """The surrogate comes back in the endpoint's JSON, and goes back to it in the next turn's prompt."""
    res = _cli(
        "run", "--backend", "openai", "--model", "fake", "--api-base", server.url, "--tasks", "hotpotqa",
        "--limit", "4", "--output-dir", str(tmp_path / "out"), cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    recs = _records(tmp_path / "out")
    assert len(recs) == 4 and all(r.status == EpisodeStatus.COMPLETED for r in recs), [r.error for r in recs]
    assert all(ODD in r.steps[-1].reply for r in recs)


@pytest.mark.parametrize("server", ["silent"], indirect=True)
def test_endpoint_that_never_answers(server: _Server, tmp_path: Path) -> None:
    """Every request times out, is retried, and its episode ends as a model error; the run ends."""
    start = time.monotonic()
    res = _cli(
        "run", "--backend", "openai", "--model", "fake", "--api-base", server.url, "--tasks", "hotpotqa",
        "--limit", "4", "--request-timeout", "0.5", "--output-dir", str(tmp_path / "out"), cwd=tmp_path,
        timeout=100,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert time.monotonic() - start < 90
    recs = _records(tmp_path / "out")
    assert len(recs) == 4 and all(r.status == EpisodeStatus.MODEL_ERROR for r in recs)
    assert all("Timeout" in (r.error.message if r.error else "") for r in recs), [r.error for r in recs]
    assert server.posts > 4  # retried before giving up
