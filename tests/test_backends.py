"""Backends: HF batching equals one-at-a-time generation, stop strings, context limits; the OpenAI
client against a local fake server with injected 429s; the replay script."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from agentflan_eval.backends.base import GenerationRequest, cut_at_stop
from agentflan_eval.backends.replay import ReplayBackend
from agentflan_eval.records import Completion, FinishReason, GenerationConfig, Message


def test_common_prefix_length_counts_the_shared_leading_tokens() -> None:
    import numpy as np

    from agentflan_eval.backends.prefix_cache import common_prefix_length

    assert common_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_length([1, 2], [1, 2, 3]) == 2  # one is a prefix of the other
    assert common_prefix_length([5, 1], [6, 1]) == 0
    assert common_prefix_length([], [1]) == 0
    assert common_prefix_length(np.arange(3000), [*range(2999), 7]) == 2999


def test_finish_reasons_stored_as_plain_strings_load_as_the_enum() -> None:
    for value in ("stop", "length", "context_limit", "error"):
        loaded = Completion.model_validate_json(json.dumps({"text": "", "finish_reason": value}))
        assert loaded.finish_reason is FinishReason(value)
        assert (
            json.loads(loaded.model_dump_json())["finish_reason"] == value
        )  # written back as the same string
    with pytest.raises(ValueError):
        Completion(text="", finish_reason="eos")  # a row's end (decode.RowEnd), not a Completion's


def test_openai_finish_reasons_map_onto_ours() -> None:
    from agentflan_eval.backends.openai_backend import _finish_reason

    assert _finish_reason("length") is FinishReason.LENGTH
    for api in ("stop", "tool_calls", "content_filter", "function_call", None):
        assert _finish_reason(api) is FinishReason.STOP


def test_cut_at_stop_takes_the_earliest() -> None:
    assert cut_at_stop("a\nObservation 1: b\nThought", ["\nThought", "\nObservation"]) == ("a", True)
    assert cut_at_stop("plain", ["\nObservation"]) == ("plain", False)
    assert cut_at_stop("x", []) == ("x", False)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from agentflan_eval.backends.hf import HFBackend
    from agentflan_eval.model_resolve import resolve

    return HFBackend(resolve(str(tiny_model_dir)), batch_size=4)


def _reqs(*texts: str) -> list[GenerationRequest]:
    return [GenerationRequest(messages=[Message(role="user", content=t)]) for t in texts]


def test_hf_left_padded_batch_equals_single(tiny) -> None:
    cfg = GenerationConfig(max_new_tokens=12)
    prompts = ["Hi", "What is the capital of France? Answer briefly please.", "Search[Milhouse] then lookup"]
    batched = tiny.generate(_reqs(*prompts), cfg)
    single = [tiny.generate(_reqs(p), cfg)[0] for p in prompts]
    assert [c.text for c in batched] == [c.text for c in single]
    assert [c.completion_tokens for c in batched] == [c.completion_tokens for c in single]
    assert all(c.prompt_tokens > 10 for c in batched) and batched[0].prompt_tokens < batched[1].prompt_tokens
    assert tiny.template_name == "tokenizer" and "<|im_start|>user\nHi<|im_end|>" in tiny.render_example(
        [Message(role="user", content="Hi")]
    )


def test_hf_stop_string_cuts_generation(tiny) -> None:
    free = tiny.generate(_reqs("Tell me a story"), GenerationConfig(max_new_tokens=24))[0]
    assert free.finish_reason == FinishReason.LENGTH and len(free.text) > 12
    stop = free.text[8:12]
    cut = tiny.generate(_reqs("Tell me a story"), GenerationConfig(max_new_tokens=24, stop=[stop]))[0]
    assert cut.text == free.text[: free.text.find(stop)] and cut.finish_reason == FinishReason.STOP
    assert cut.completion_tokens < free.completion_tokens


def test_hf_context_limit_is_reported_not_raised(tiny) -> None:
    long, short = tiny.generate(_reqs("word " * 400, "short"), GenerationConfig(max_new_tokens=4))
    assert long.finish_reason == FinishReason.CONTEXT_LIMIT and long.text == "" and long.prompt_tokens > 160
    assert short.finish_reason in (FinishReason.LENGTH, FinishReason.STOP) and short.completion_tokens > 0


def test_hf_manifest_description(tiny, tiny_model_dir: Path) -> None:
    d = tiny.describe()
    assert (
        d["model_path"] == str(tiny_model_dir) and len(d["model_hash"]) == 64 and d["context_length"] == 160
    )


def test_hf_device_map_auto_places_the_model_and_generates_the_same(tiny, tiny_model_dir: Path) -> None:
    """--device-map auto goes through accelerate's placement (here: every layer on the CPU)."""
    from agentflan_eval.backends.hf import HFBackend
    from agentflan_eval.model_resolve import resolve

    mapped = HFBackend(resolve(str(tiny_model_dir)), batch_size=4, device_map="auto")
    assert (
        mapped.describe()["device_map"] and tiny.describe()["device_map"] is None and mapped.device == "cpu"
    )
    cfg = GenerationConfig(max_new_tokens=8)
    assert [c.text for c in mapped.generate(_reqs("Hi", "Search[x]"), cfg)] == [
        c.text for c in tiny.generate(_reqs("Hi", "Search[x]"), cfg)
    ]


def test_hf_kept_caches_give_the_same_tokens_and_prefill_only_what_is_new(tiny_model_dir: Path) -> None:
    """Rows sharing instructions, then a later turn of one conversation: starting from kept KV caches must
    generate exactly what full prefill does, while computing only the tokens no kept cache holds."""
    from agentflan_eval.backends.hf import HFBackend
    from agentflan_eval.backends.prefix_cache import common_prefix_length
    from agentflan_eval.model_resolve import resolve

    plain = HFBackend(resolve(str(tiny_model_dir)), batch_size=4, prefix_cache=False)
    cached = HFBackend(resolve(str(tiny_model_dir)), batch_size=4)
    shared = "You are an agent. Solve the task with Search[x] and Finish[y]. " * 3
    turn1 = [
        [Message(role="system", content=shared), Message(role="user", content=q)]
        for q in ("Who?", "Where was the magazine First for Women started?", "When")
    ]
    cfg = GenerationConfig(max_new_tokens=10)

    def both(conversations: list[list[Message]]) -> list[Completion]:
        reqs = [GenerationRequest(messages=m) for m in conversations]
        got = cached.generate(reqs, cfg)
        assert [c.text for c in got] == [c.text for c in plain.generate(reqs, cfg)]
        return got

    first = both(turn1)
    assert all(c.completion_tokens >= 5 for c in first)
    ids = [cached.encoder.encode(m) for m in turn1]
    common = common_prefix_length(ids[0], ids[1])
    assert common > 40
    assert cached.prefixes.computed_tokens == sum(len(x) - 1 for x in ids) - 2 * common  # instructions once
    turn2 = [
        [
            *turn1[i],
            Message(role="assistant", content=first[i].text),
            Message(role="user", content="Observation: x"),
        ]
        for i in (1, 2)
    ]
    before = cached.prefixes.computed_tokens
    both(turn2)
    new = [cached.encoder.encode(m) for m in turn2]
    # each conversation continues from its own kept turn, reply included: only the observation (and the
    # reply's last, re-tokenised tokens) are computed
    reply_kept = sum(c.completion_tokens - 3 for c in first[1:])
    assert (
        cached.prefixes.computed_tokens - before
        <= sum(len(n) - len(o) for n, o in zip(new, ids[1:])) - reply_kept
    )
    assert cached.describe()["kept_prompt_caches"] and not plain.describe()["kept_prompt_caches"]


def test_hf_kept_caches_stay_within_their_memory_budget(tiny_model_dir: Path) -> None:
    """A budget of about one cache: older ones are dropped first, and the replies stay the same."""
    from agentflan_eval.backends.hf import HFBackend
    from agentflan_eval.model_resolve import resolve

    roomy = HFBackend(resolve(str(tiny_model_dir)), batch_size=2)
    reqs = _reqs("Who wrote the first book of the series?", "Where was the magazine First for Women started?")
    cfg = GenerationConfig(max_new_tokens=6)
    expected = [c.text for c in roomy.generate(reqs, cfg)]
    assert (
        roomy.prefixes.max_bytes > 2**20 and len(roomy.prefixes._entries) >= 2
    )  # the default: 40 % of free RAM
    one = max(e.nbytes for e in roomy.prefixes._entries)
    tight = HFBackend(resolve(str(tiny_model_dir)), batch_size=2, kept_cache_gb=1.5 * one / 1e9)
    assert [c.text for c in tight.generate(reqs, cfg)] == expected
    assert len(tight.prefixes._entries) == 1 and tight.prefixes.kept_bytes <= tight.prefixes.max_bytes
    assert tight.describe()["kept_cache_bytes"] == tight.prefixes.max_bytes
    none = HFBackend(resolve(str(tiny_model_dir)), batch_size=2, kept_cache_gb=0)
    assert none.prefixes is None and [c.text for c in none.generate(reqs, cfg)] == expected


def test_replay_keys_on_task_sample_and_turn(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"task": "t", "sample_id": "a", "replies": ["a0 STOP tail", "a1"]},
                {"task": "t", "sample_id": "*", "replies": ["any"]},
            ]
        )
        + "\n"
    )
    b = ReplayBackend(path)
    reqs = [
        GenerationRequest(messages=[], task="t", sample_id="a", turn=0),
        GenerationRequest(messages=[], task="t", sample_id="a", turn=1),
        GenerationRequest(messages=[], task="t", sample_id="z", turn=0),
        GenerationRequest(messages=[], task="t", sample_id="z", turn=1),
    ]
    out = b.generate(reqs, GenerationConfig(stop=[" STOP"]))
    assert [c.text for c in out[:3]] == ["a0", "a1", "any"]
    assert out[3].finish_reason == FinishReason.ERROR and "turn 1" in (out[3].error or "")


class _FakeOpenAI(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions; the first request of each conversation gets a 429."""

    seen: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        return None

    def _json(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if code == 429:
            self.send_header("retry-after-ms", "10")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._json(
            200,
            {"object": "list", "data": [{"id": "fake", "object": "model", "created": 0, "owned_by": "me"}]},
        )

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        last = body["messages"][-1]["content"]
        with self.lock:
            n = self.seen[last] = self.seen.get(last, 0) + 1
        if n == 1:
            self._json(429, {"error": {"message": "slow down", "type": "rate_limit"}})
            return
        self._json(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": f"echo {last}\nObservation: no"},
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            },
        )


@pytest.fixture()
def fake_server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_openai_backend_retries_429_and_keeps_order(fake_server: str) -> None:
    from agentflan_eval.backends.openai_backend import OpenAIBackend

    b = OpenAIBackend("fake", fake_server, max_connections=4)
    try:
        out = b.generate(_reqs(*(f"q{i}" for i in range(6))), GenerationConfig(stop=["\nObservation"]))
    finally:
        b.close()
    assert [c.text for c in out] == [f"echo q{i}" for i in range(6)]
    assert all(c.completion_tokens == 3 and c.prompt_tokens == 7 for c in out)
    assert all(_FakeOpenAI.seen[f"q{i}"] == 2 for i in range(6))  # each retried once after its 429
