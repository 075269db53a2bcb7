"""The hf backend's continuously batched decoding loop: rows that join a running batch (with longer or
shorter prompts), rows that leave it early, and a failing step all give exactly what one-at-a-time
generation gives, keep each finished row's cache, and lose no request."""

from __future__ import annotations

from concurrent.futures import wait
from pathlib import Path

import pytest
from conftest import tiny_llama

from agentflan_eval.backends.base import GenerationRequest
from agentflan_eval.backends.decode import Job, Row, RowEnd
from agentflan_eval.records import GenerationConfig, Message


@pytest.fixture(scope="module")
def gqa(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path):
    """Grouped-query attention (4 heads, 2 key/value heads), as SmolLM2 and most agent models have."""
    from agentflan_eval.backends.hf import HFBackend
    from agentflan_eval.model_resolve import resolve

    out = tiny_llama(tmp_path_factory.mktemp("gqa"), embedded_dir, num_key_value_heads=2)
    return HFBackend(resolve(str(out)), batch_size=4)


def _ids(backend, text: str) -> list[int]:
    return backend.encoder.encode([Message(role="user", content=text)])


def _alone(backend, ids: list[int], max_new: int) -> list[int]:
    """The reference: the same prompt decoded by transformers' generate, alone."""
    return backend._generate([ids], GenerationConfig(max_new_tokens=max_new), (), max_new)[0].generated


def test_rows_joining_and_leaving_a_running_batch_decode_as_if_alone(gqa) -> None:
    b = gqa.batcher
    short, long_, longer = (
        _ids(gqa, t)
        for t in (
            "Hi",
            "Search[Milhouse] then lookup the answer",
            "What is the capital of France? Answer briefly, please, now.",
        )
    )
    a = Job(Row(prompt=short), max_new=20, temperature=0.0, stops=())
    b._admit([a])
    for _ in range(3):
        b._step()
    assert len(a.row.generated) == 3 and b.state.lengths == [len(short) + 2]
    # two rows join, one longer than everything cached so far
    c = Job(Row(prompt=longer), max_new=5, temperature=0.0, stops=())
    d = Job(Row(prompt=long_), max_new=12, temperature=0.0, stops=())
    b._admit([c, d])
    assert b.state.lengths == [len(short) + 2, len(longer) - 1, len(long_) - 1]
    steps = 0
    while b.jobs:
        b._step()
        steps += 1
        if steps == 5:  # c has left the batch, and d has moved into its row
            assert c.future.done() and [j.row for j in b.jobs] == [a.row, d.row]
            assert b.state.lengths == [len(short) + 7, len(long_) + 4]
    assert [a.row.reason, c.row.reason, d.row.reason] == [RowEnd.LENGTH] * 3
    assert a.row.generated == _alone(gqa, short, 20)
    assert c.row.generated == _alone(gqa, longer, 5)
    assert d.row.generated == _alone(gqa, long_, 12)
    assert c.future.result() is c.row and b.cache is None  # the batch is empty again


def test_a_finished_row_keeps_its_cache_for_the_next_turn(gqa) -> None:
    prompt = _ids(gqa, "Tell me about Milhouse and Mussolini in one line.")
    first = gqa.generate(
        [
            GenerationRequest(
                messages=[Message(role="user", content="Tell me about Milhouse and Mussolini in one line.")]
            )
        ],
        GenerationConfig(max_new_tokens=8),
    )[0]
    assert first.completion_tokens == 8 and first.seconds > 0
    entry = gqa.prefixes._entries[-1]
    assert entry.ids[: len(prompt)].tolist() == prompt and len(entry.ids) == len(prompt) + 7
    assert all(k.shape[-2] == v.shape[-2] == len(entry.ids) for k, v in entry.kv)
    # the next prompt extends it: only what follows the kept reply is computed
    again = gqa.prefixes.computed_tokens
    gqa.prefixes.row_kv([*entry.ids, 42, 43])
    assert gqa.prefixes.computed_tokens - again == 2


def test_a_failing_step_fails_its_rows_and_the_loop_goes_on(gqa, monkeypatch: pytest.MonkeyPatch) -> None:
    real = gqa.model.forward

    def flaky(*args, **kwargs):
        if tuple(kwargs["input_ids"].shape) == (2, 1):  # the first decoding step of both rows
            raise RuntimeError("out of memory (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(gqa.model, "forward", flaky)
    reqs = [GenerationRequest(messages=[Message(role="user", content=t)]) for t in ("Hi", "Search[x]")]
    with gqa.batcher._wake:  # both wait before the loop looks (re-entrant lock): they join the same step
        futures = [gqa.submit(r, GenerationConfig(max_new_tokens=6)) for r in reqs]
    wait(futures, timeout=600)
    assert all("injected" in str(f.exception()) for f in futures)
    monkeypatch.setattr(gqa.model, "forward", real)
    after = gqa.generate(reqs, GenerationConfig(max_new_tokens=6))  # the same backend still serves
    assert [c.completion_tokens for c in after] == [6, 6]


def test_sampling_follows_the_request_seed_whatever_shares_the_batch(gqa) -> None:
    req = GenerationRequest(messages=[Message(role="user", content="Tell me a story")], sample_id="s1")
    other = GenerationRequest(messages=[Message(role="user", content="Search[Milhouse]")], sample_id="s2")

    def hot(seed: int) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=12, temperature=1.5, seed=seed)

    alone = gqa.generate([req], hot(3))[0].text
    assert gqa.generate([other, req], hot(3))[1].text == alone  # another row beside it changes nothing
    assert gqa.generate([req], hot(4))[0].text != alone
    assert gqa.generate([req], GenerationConfig(max_new_tokens=12))[0].text != alone  # greedy differs


def test_a_cancelled_request_leaves_the_batch(gqa, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs: list[Job] = []
    real = gqa.batcher.submit
    monkeypatch.setattr(gqa.batcher, "submit", lambda new: jobs.extend(new) or real(new))
    reqs = [GenerationRequest(messages=[Message(role="user", content=t)]) for t in ("Hi", "Search[x]")]
    cfg = GenerationConfig(max_new_tokens=100)
    kept, dropped = (gqa.submit(r, cfg) for r in reqs)
    assert dropped.cancel()
    assert kept.result(timeout=120).completion_tokens == len(jobs[0].row.generated) > 0
    assert (
        jobs[1].row.reason in (None, RowEnd.CANCELLED) and len(jobs[1].row.generated) < 100
    )  # not decoded on
    assert gqa.batcher.jobs == []


def test_streamed_episodes_match_the_turn_batched_loop(
    tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path, data_dir: Path
) -> None:
    """Real HotpotQA episodes: the hf backend streams them (2 rows decoding, 4 episodes in flight, rows
    refilled as replies end) and replies exactly as transformers' generate does in lock-step turns."""
    from agentflan_eval.agent_loop import run_episodes
    from agentflan_eval.backends.hf import HFBackend
    from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA
    from agentflan_eval.config import RunConfig
    from agentflan_eval.data import DataResolver
    from agentflan_eval.model_resolve import resolve

    model = resolve(
        str(
            tiny_llama(
                tmp_path_factory.mktemp("long"),
                embedded_dir,
                num_key_value_heads=2,
                max_position_embeddings=4096,
            )
        )
    )
    cfg = RunConfig(concurrency=2, max_new_tokens=24)
    bench = HotpotQA(cfg, DataResolver(data_dir))
    bench.max_turns = 3
    samples = bench.load_samples()[:5]
    streamed, plain = HFBackend(model, batch_size=2), HFBackend(model, batch_size=2, prefix_cache=False)
    assert streamed.streaming and not plain.streaming
    runs: list[list] = [[], []]
    for backend, out in zip((streamed, plain), runs):
        run_episodes(bench, samples, backend, cfg.generation(), 2, out.append)
    replies = [{r.sample_id: [s.reply for s in r.steps] for r in out} for out in runs]
    assert replies[0] == replies[1] and len(replies[0]) == 5
    assert sum(len(v) for v in replies[0].values()) == 15  # 3 turns each: a random model never finishes
    assert streamed.prefixes.reused_tokens > streamed.prefixes.computed_tokens > 0  # turns 2-3 reuse turn 1
