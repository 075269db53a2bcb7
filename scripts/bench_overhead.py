"""Where a run's time goes outside generation. Prints figures per task.

A model that answers instantly (one fixed, invalid-for-most-tasks reply) drives N episodes of every
runnable offline task through the real agent loop, run store and scorer, so the whole wall time is
overhead: environment start-up (make_env + reset), environment steps, scoring, writing transcripts,
and prompt tokenisation as the hf backend does it (timed separately on the same prompts).

    python scripts/bench_overhead.py --episodes 4 [--tasks os,db,...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from agentflan_eval import benchmarks
from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.base import Backend, GenerationRequest
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import Completion, GenerationConfig
from agentflan_eval.store import RunStore

REPLY = "Thought: I will look around first.\nAction: look"


class Instant(Backend):
    """Answers at once and keeps the prompts, so tokenisation can be timed on exactly what a model would see."""

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        self.requests.extend(requests)
        return [Completion(text=REPLY, completion_tokens=12) for _ in requests]


def timed(fn, bucket: dict[str, float], key: str):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            bucket[key] += time.perf_counter() - t0

    return wrapper


def measure(
    name: str, config: RunConfig, data: DataResolver, episodes: int, encoder
) -> dict[str, float] | str:
    bench = benchmarks.get(name)(config, data)
    reason = bench.unavailable()
    if reason:
        return reason
    t: dict[str, float] = defaultdict(float)
    samples = timed(bench.load_samples, t, "load data")()[:episodes]
    make_env = bench.make_env

    def make_timed_env(sample):
        env = timed(make_env, t, "env start")(sample)
        env.reset = timed(env.reset, t, "env start")
        env.step = timed(env.step, t, "env steps")
        env.close = timed(env.close, t, "env close")
        return env

    bench.make_env = make_timed_env  # type: ignore[method-assign]
    bench.score = timed(bench.score, t, "scoring")  # type: ignore[method-assign]
    backend = Instant()
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp))
        append = timed(store.append, t, "write transcripts")
        t0 = time.perf_counter()
        run_episodes(bench, samples, backend, config.generation(), 8, append)
        t["total"] = time.perf_counter() - t0
    if encoder is not None:
        enc = timed(encoder.encode, t, "tokenise (hf)")
        for req in backend.requests:
            enc(bench.fit_prompt(req.messages))
    t["turns"] = len(backend.requests)
    t["episodes"] = len(samples)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=4)
    ap.add_argument("--tasks", help="comma-separated (default: every registered task)")
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("AGENTFLAN_DATA_DIR"))
    a = ap.parse_args()
    config = RunConfig(data_dir=a.data_dir)
    data = DataResolver(a.data_dir, offline=True)
    from agentflan_eval.model_resolve import resolve
    from agentflan_eval.model_zoo.chat_encoder import ChatEncoder, load_path

    model = resolve(None)
    encoder = ChatEncoder.load(model, load_path(model), None)
    cols = ["env start", "env steps", "env close", "scoring", "write transcripts", "tokenise (hf)"]
    print(
        f"{'task':<10}{'eps':>4}{'turns':>6}{'load s':>8}{'s/episode':>10}  "
        + "".join(f"{c:>18}" for c in cols)
    )
    for name in a.tasks.split(",") if a.tasks else benchmarks.task_names():
        r = measure(name, config, data, a.episodes, encoder)
        if isinstance(r, str):
            print(f"{name:<10} not run: {r[:100]}")
            continue
        per = r["total"] / max(1, r["episodes"])
        shares = "".join(f"{r[c] / max(1, r['episodes']):>11.3f} s/ep " for c in cols)
        print(
            f"{name:<10}{int(r['episodes']):>4}{int(r['turns']):>6}{r['load data']:>8.2f}{per:>10.3f}  {shares}"
        )


if __name__ == "__main__":
    main()
