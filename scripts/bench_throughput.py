"""Throughput of the agent loop on the embedded model, against its own limits. Prints figures.

(a) the batched agent loop over N HotpotQA episodes (B rows decoding, continuously batched, 2B in flight);
(b) the same episodes run one at a time (batch 1);
(c) raw batched ``model.generate`` on exactly the prompts (a) sent (the first --raw-prompts of them), in
    batches of B (plain left padding, no prefix cache: what transformers gives without this harness).
(a) and (b) use the backend as ``run`` does, with its shared-prefix KV cache (``--no-prefix-cache`` turns it off).
Targets (issue 3): (a)/(b) >= 4 and (a)/(c) >= 0.8 on 2 CPU cores.

    python scripts/bench_throughput.py --episodes 16 --batch-size 8 --max-new-tokens 64
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

from agentflan_eval.benchmarks.hotpotqa import HotpotQA

from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.base import Backend, GenerationRequest
from agentflan_eval.backends.hf import HFBackend
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.model_resolve import resolve
from agentflan_eval.records import Completion, EpisodeRecord, GenerationConfig


class Recording(Backend):
    """Passes calls through and keeps every request, so (c) can replay exactly the same prompts.

    ``one_at_a_time`` keeps a single episode in flight, for (b)."""

    def __init__(self, inner: HFBackend, one_at_a_time: bool = False):
        self.inner, self.one_at_a_time = inner, one_at_a_time
        self.streaming = inner.streaming
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        self.requests.extend(requests)
        return self.inner.generate(requests, config)

    def submit(self, request: GenerationRequest, config: GenerationConfig) -> Future[Completion]:
        self.requests.append(request)
        return self.inner.submit(request, config)

    def pool_size(self, batch_size: int) -> int:
        return 1 if self.one_at_a_time else self.inner.pool_size(batch_size)


def agent_loop(bench: HotpotQA, backend: Backend, samples: list, gen: GenerationConfig, batch: int) -> dict:
    records: list[EpisodeRecord] = []
    t0 = time.perf_counter()
    run_episodes(bench, samples, backend, gen, batch, records.append)
    secs = time.perf_counter() - t0
    tokens = sum(r.completion_tokens for r in records)
    return {"seconds": secs, "tokens": tokens, "tok_s": tokens / secs, "episodes_min": len(records) / secs * 60,
            "turns": sum(len(r.steps) for r in records)}


def raw_generate(hf: HFBackend, requests: list[GenerationRequest], gen: GenerationConfig, batch: int) -> dict:
    encoded = [hf.encoder.encode(r.messages) for r in requests]  # same tokenisation as the loop
    stop_gen = gen.model_copy(update={"stop": list(HotpotQA.stop)})
    t0 = time.perf_counter()
    tokens = 0
    for i in range(0, len(encoded), batch):
        tokens += sum(c.completion_tokens for c in hf.generate_ids(encoded[i:i + batch], stop_gen))
    secs = time.perf_counter() - t0
    return {"seconds": secs, "tokens": tokens, "tok_s": tokens / secs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M GGUF")
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("AGENTFLAN_DATA_DIR"))
    ap.add_argument("--raw-prompts", type=int, default=48, help="(c) replays the first N prompts of (a)")
    ap.add_argument("--dtype", default=None, help="e.g. bfloat16 (default: float32 on CPU)")
    ap.add_argument("--no-prefix-cache", action="store_true", help="(a) and (b) without the shared-prefix KV cache")
    a = ap.parse_args()

    cfg = RunConfig(model=a.model, data_dir=a.data_dir, batch_size=a.batch_size, max_new_tokens=a.max_new_tokens)
    bench = HotpotQA(cfg, DataResolver(a.data_dir))
    samples = bench.load_samples()[: a.episodes]
    t0 = time.perf_counter()
    hf = HFBackend(resolve(a.model), batch_size=a.batch_size, dtype=a.dtype, prefix_cache=not a.no_prefix_cache)
    load_s = time.perf_counter() - t0
    gen = cfg.generation()
    bench.search_backend  # noqa: B018 - build the corpus before timing
    rec = Recording(hf)

    batched = agent_loop(bench, rec, samples, gen, a.batch_size)
    reuse = (hf.prefixes.reused_tokens, hf.prefixes.computed_tokens) if hf.prefixes else None
    single = agent_loop(bench, Recording(hf, one_at_a_time=True), samples, gen, 1)
    raw = raw_generate(hf, rec.requests[: a.raw_prompts], gen, a.batch_size)

    print(f"model {hf.resolved.display_name} on {hf.device}, torch threads {__import__('torch').get_num_threads()}, "
          f"load {load_s:.1f} s; {a.episodes} HotpotQA episodes, batch {a.batch_size}, "
          f"max_new_tokens {a.max_new_tokens}")
    for name, r in (("(a) batched agent loop", batched), ("(b) one episode at a time", single),
                    ("(c) raw batched generate", raw)):
        extra = f", {r['episodes_min']:.2f} episodes/min, {r['turns']} turns" if "turns" in r else ""
        print(f"{name:<28}{r['tok_s']:8.1f} tok/s  ({r['tokens']} tokens in {r['seconds']:.1f} s{extra})")
    if reuse:
        print(f"prefix cache in (a): {reuse[0]} prompt tokens reused, {reuse[1]} computed for the cache")
    print(f"(a)/(b) = {batched['tok_s'] / single['tok_s']:.2f}  (target >= 4)")
    print(f"(a)/(c) = {batched['tok_s'] / raw['tok_s']:.2f}  (target >= 0.8)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
