"""The async OpenAI backend at scale, against a fake OpenAI server on loopback.

The server answers HotpotQA in BOLAA's ReAct form, a Thought then an Action each step (a search, then the
gold answer, or a wrong one for every sixth question), injects 429s (with Retry-After, retry-after-ms, and none), 503s and dropped
connections on a fixed schedule, and counts the requests in flight. A run must record every episode
with the scores its replies earn, retry each failure exactly once per fault, and keep between 2 and
--concurrency requests in flight.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import InFlight

from agentflan_eval.backends.base import GenerationRequest
from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA, HotpotQASample
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import EpisodeStatus, GenerationConfig, Message
from agentflan_eval.runner import run
from agentflan_eval.store import RunStore

N = 12
WRONG = "Xqzzv Plorb"  # shares no token with any gold answer, so its F1 is 0
OVERFLOW = (
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
    "(4744 in the messages, 256 in the completion)."
)  # vLLM's wording


def faults(k: int) -> list[str]:
    """Failures injected on the first attempts of conversation turn ``k`` (then it succeeds)."""
    return {0: ["429 Retry-After"], 4: ["429 retry-after-ms"], 2: ["drop", "drop"], 6: ["drop", "503"]}.get(
        k % 8, ["429"] if k % 4 == 1 else []
    )


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, samples: list[HotpotQASample], mode: str = "flaky", delay: float = 0.05):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.samples = {s.question.strip(): (i, s) for i, s in enumerate(samples)}
        self.mode, self.delay = mode, delay
        self.lock = threading.Lock()
        self.attempts: Counter[tuple[int, int]] = Counter()
        self.injected: Counter[str] = Counter()
        self.stops: list[list[str]] = []
        self.bodies: list[dict] = []  # every chat request as sent
        self.in_flight = self.max_in_flight = self.served = self.posts = 0
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"

    def decide(self, body: dict) -> tuple[int, dict, dict[str, str]] | None:
        """(status, JSON body, headers) for one chat request, or None to drop the connection."""
        time.sleep(self.delay)  # "generation"
        if self.mode == "broken":
            return 500, {"error": {"message": "model worker crashed"}}, {"retry-after-ms": "1"}
        if self.mode == "overflow":
            return 400, {"error": {"message": OVERFLOW, "type": "BadRequestError"}}, {}
        msgs = body["messages"]
        i, sample = self.samples[re.findall(r"Question: (.*)", msgs[0]["content"])[-1].strip()]
        # HotpotQA's raw completion prompt reaches a chat API as one user turn: its episode so far is the
        # text after the last "Question:" (the few-shot examples before it have observations of their own),
        # and it ends in the cue of the generation asked for, "Thought n:" or "Action n:"
        episode = msgs[0]["content"].split("Question: ")[-1]
        cue = re.search(r"\n(Thought|Action) (\d+):$", episode)
        kind, turn = (cue.group(1), int(cue.group(2)) - 1) if cue else ("Thought", 0)
        with self.lock:
            self.stops.append(body.get("stop") or [])
            self.bodies.append(body)
            fault = None
            if kind == "Action":  # faults are injected on the Action generation of each step
                self.attempts[i, turn] += 1
                planned = faults(2 * i + turn) if self.mode == "flaky" else []
                fault = (
                    planned[self.attempts[i, turn] - 1] if self.attempts[i, turn] <= len(planned) else None
                )
            if fault:
                self.injected[fault] += 1
            else:
                self.served += 1
        if fault == "drop":
            return None
        if fault and fault.startswith("429"):
            headers = {
                "429 Retry-After": {"Retry-After": "1"},
                "429 retry-after-ms": {"retry-after-ms": "20"},
            }
            return 429, {"error": {"message": "rate limited"}}, headers.get(fault, {})
        if fault == "503":
            return 503, {"error": {"message": "overloaded"}}, {}
        title, made_up = sample.context[0][0], "\nObservation 1: made up by the model"
        if (kind, turn) == ("Thought", 0):
            text = f" I search {title}.\nAction 1: Search[{title}]{made_up}"
        elif (kind, turn) == ("Action", 0):
            text = f" Search[{title}]{made_up}"
        elif turn == 1 and "\nObservation 1:" in episode and "made up" not in episode:
            text = (
                " I know it." if kind == "Thought" else f" Finish[{WRONG if i % 6 == 5 else sample.answer}]"
            )
        else:
            return 400, {"error": {"message": f"unexpected conversation at {kind} {turn + 1}"}}, {}
        return (
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            },
            {},
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as vLLM and TGI do
    server: FakeServer

    def log_message(self, *args: object) -> None:
        return None

    def _send(self, code: int, body: dict, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # /v1/models
        if self.server.mode == "broken":
            self._send(500, {"error": {"message": "model worker crashed"}}, {})
            return
        self._send(
            200,
            {"object": "list", "data": [{"id": "fake", "object": "model", "created": 0, "owned_by": "test"}]},
            {},
        )

    def do_POST(self) -> None:  # /v1/chat/completions
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        with srv.lock:
            srv.in_flight += 1
            srv.posts += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            reply = srv.decide(body)
        finally:
            with srv.lock:  # before the answer leaves, so the client's next request never overlaps this one
                srv.in_flight -= 1
        if reply is None:  # the connection drops: no status line, nothing
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(*reply)


@pytest.fixture(scope="module")
def samples(data_dir: Path) -> list[HotpotQASample]:
    bench = HotpotQA(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    return bench.load_samples()[:N]  # type: ignore[return-value]


def _serve(samples: list[HotpotQASample], mode: str) -> Iterator[FakeServer]:
    srv = FakeServer(samples, mode)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(timeout=5)


@pytest.fixture()
def server(samples: list[HotpotQASample], request: pytest.FixtureRequest) -> Iterator[FakeServer]:
    yield from _serve(samples, getattr(request, "param", "flaky"))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run(
        [sys.executable, "-m", "agentflan_eval", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def test_flaky_server_loses_no_episode(
    server: FakeServer, samples: list[HotpotQASample], tmp_path: Path
) -> None:
    p = _cli(
        "run",
        "--backend",
        "openai",
        "--model",
        "fake",
        "--api-base",
        server.url,
        "--tasks",
        "hotpotqa",
        "--limit",
        str(N),
        "--concurrency",
        "4",
        "--output-dir",
        "out",
        "--run-id",
        "r",
        "--no-report",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    records = {r.sample_id: r for r in RunStore(tmp_path / "out" / "r").episodes("hotpotqa")}
    assert len(records) == N
    for i, s in enumerate(samples):
        r = records[s.id]
        assert r.status == EpisodeStatus.COMPLETED and r.error is None, r
        assert [st.action.name for st in r.steps] == ["think", "Search", "think", "Finish"]
        assert not any("made up" in st.reply for st in r.steps)  # the hallucinated text is cut client-side
        assert r.steps[1].observation and r.prompt_tokens == 400 and r.completion_tokens == 80
        assert r.score.value == (0.0 if i % 6 == 5 else 1.0), (s.answer, r.score)
    # Every fault was retried, and nothing else was sent twice.
    assert set(server.attempts) == {(i, t) for i in range(N) for t in (0, 1)}
    assert all(n == len(faults(2 * i + t)) + 1 for (i, t), n in server.attempts.items()), server.attempts
    assert server.injected == Counter(
        {"429": 6, "drop": 9, "429 Retry-After": 3, "429 retry-after-ms": 3, "503": 3}
    )
    assert server.served == 4 * N  # a Thought and an Action generation a step
    assert 1 < server.max_in_flight <= 4
    assert all(len(s) <= 4 and "\n" in s for s in server.stops)


@pytest.mark.parametrize(
    ("server", "status", "words"),
    [
        ("broken", EpisodeStatus.MODEL_ERROR, "InternalServerError"),
        ("overflow", EpisodeStatus.CONTEXT_LIMIT, None),
    ],
    indirect=["server"],
)
def test_failing_endpoint_fails_only_its_episodes(
    server: FakeServer,
    status: EpisodeStatus,
    words: str | None,
    data_dir: Path,
    tmp_path: Path,
    in_flight: InFlight,
) -> None:
    config = RunConfig(
        backend="openai",
        model="fake",
        api_base=server.url,
        tasks=["hotpotqa"],
        limit=3,
        concurrency=2,
        output_dir=tmp_path,
        run_id="r",
        data_dir=data_dir,
        report=False,
    )
    store, results = run(config)
    records = list(store.episodes("hotpotqa"))
    assert len(records) == 3 and all(r.status == status and not r.steps for r in records)
    if words:
        assert all(words in r.error.message and "model worker crashed" in r.error.message for r in records)
        assert server.posts == 3 * 6  # each request tried once and retried five times (the default)
    assert results.tasks["hotpotqa"].n == 3 and (store.root / "results.json").is_file()
    assert (in_flight.peak, in_flight.started, in_flight.now) == (2, 3, 0)  # --concurrency 2


def test_requests_spread_over_several_endpoints(samples: list[HotpotQASample]) -> None:
    from agentflan_eval.backends.openai_backend import OpenAIBackend

    a, b = _serve(samples[:1], "clean"), _serve(samples[:1], "clean")
    srv_a, srv_b = next(a), next(b)
    backend = OpenAIBackend("fake", f"{srv_a.url}, {srv_b.url}", max_connections=4)
    try:
        prompt = f"Question: {samples[0].question}"
        out = backend.generate(
            [GenerationRequest(messages=[Message(role="user", content=prompt)])] * 8,
            GenerationConfig(stop=["\nObservation"]),
        )
    finally:
        backend.close()
        for gen in (a, b):
            gen.close()
    assert [c.text for c in out] == [out[0].text] * 8 and out[0].text.endswith(
        f"Search[{samples[0].context[0][0]}]"
    )
    assert srv_a.served >= 1 and srv_b.served >= 1 and srv_a.served + srv_b.served == 8
    assert srv_a.max_in_flight + srv_b.max_in_flight <= 4


def test_unreachable_second_endpoint_is_one_line(server: FakeServer, tmp_path: Path) -> None:
    p = _cli(
        "run",
        "--backend",
        "openai",
        "--model",
        "fake",
        "--api-base",
        f"{server.url},http://127.0.0.1:9/v1",
        "--tasks",
        "hotpotqa",
        "--limit",
        "1",
        "--output-dir",
        "out",
        cwd=tmp_path,
    )
    errors = [x for x in p.stderr.splitlines() if x.startswith("error:")]
    assert p.returncode == 2 and len(errors) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "unreachable" in errors[0] and "127.0.0.1:9" in errors[0]


def test_each_request_carries_temperature_top_p_and_its_own_seed(samples: list[HotpotQASample]) -> None:
    from agentflan_eval.backends.base import request_seed
    from agentflan_eval.backends.openai_backend import OpenAIBackend

    gen = _serve(samples[:1], "clean")
    srv = next(gen)
    backend = OpenAIBackend("fake", srv.url, max_connections=2)
    prompt = [Message(role="user", content=f"Question: {samples[0].question}")]
    requests = [
        GenerationRequest(messages=prompt, task="hotpotqa", sample_id="0", repeat=r) for r in range(3)
    ]
    config = GenerationConfig(temperature=0.7, top_p=0.9, seed=5)
    try:
        backend.generate(requests, config)
    finally:
        backend.close()
        gen.close()
    sent = sorted((b["temperature"], b["top_p"], b["seed"]) for b in srv.bodies)
    assert sent == sorted((0.7, 0.9, request_seed(r, config)) for r in requests)
    assert len({s[2] for s in sent}) == 3


@pytest.mark.parametrize(("temperature", "top_p"), [(0.7, 1.0), (0.0, 1.0), (0.0, 0.9)])
def test_top_p_is_left_out_where_it_narrows_nothing(
    samples: list[HotpotQASample], temperature: float, top_p: float
) -> None:
    """TGI answers 422 to top_p = 1.0 (it must be < 1), and greedy decoding has nothing to narrow: top_p is
    sent only with a sampled temperature and a nucleus below 1, so held-in (T=0.7, top-p 1) and greedy
    tasks reach a TGI server."""
    from agentflan_eval.backends.openai_backend import OpenAIBackend

    gen = _serve(samples[:1], "clean")
    srv = next(gen)
    backend = OpenAIBackend("fake", srv.url, max_connections=1)
    prompt = [Message(role="user", content=f"Question: {samples[0].question}")]
    try:
        backend.generate(
            [GenerationRequest(messages=prompt)], GenerationConfig(temperature=temperature, top_p=top_p)
        )
    finally:
        backend.close()
        gen.close()
    (body,) = srv.bodies
    assert "top_p" not in body and body["temperature"] == temperature
