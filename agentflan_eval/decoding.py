"""Which decoding a run applies to each task: its protocol's, or greedy, then the run's overrides.

Each benchmark declares how its original evaluation decoded (``Benchmark.decoding``; see
docs/original_protocols.md). ``--decoding greedy`` replaces that with greedy decoding everywhere, and
``--temperature`` / ``--top-p`` then override either for every task. The result is both what the backends
receive and what the manifest records, so the manifest never claims a decoding the run did not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentflan_eval.records import Decoding, GenerationConfig, RunManifest, TaskProtocol

if TYPE_CHECKING:
    from agentflan_eval.benchmark import Benchmark
    from agentflan_eval.config import RunConfig

GREEDY = Decoding(source="--decoding greedy")


def resolve(declared: Decoding, config: RunConfig) -> Decoding:
    """The decoding this run uses for a task that declares ``declared``."""
    base = declared if config.decoding == "protocol" else GREEDY
    overrides = {"temperature": config.temperature, "top_p": config.top_p}
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return base
    flags = ", ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in given.items())
    return base.model_copy(update={**given, "source": f"{base.source}; overridden by {flags}"})


def task_generation(bench: Benchmark, config: RunConfig) -> GenerationConfig:
    """The run's generation settings with the task's resolved temperature and top-p."""
    decoding = resolve(bench.decoding, config)
    return config.generation().model_copy(
        update={"temperature": decoding.temperature, "top_p": decoding.top_p}
    )


def run_key(config: RunConfig) -> str:
    """The part of the run id that decoding settings add; empty for all-greedy runs, whose replies are
    those of runs made before decoding was applied (every run was greedy then), so their ids stay."""
    if config.temperature == 0 or (config.decoding == "greedy" and config.temperature is None):
        return ""  # greedy everywhere: top-p changes nothing
    key = f"|decoding={config.decoding}"
    if config.temperature is not None:
        key += f"|T={config.temperature:g}"
    if config.top_p is not None:
        key += f"|top_p={config.top_p:g}"
    return key


def applied_protocols(manifest: RunManifest) -> dict[str, TaskProtocol]:
    """Each task's protocol as its run applied it. Manifests written before decoding was applied (no
    ``decoding`` in their config) recorded the declared decoding while every reply was greedy: corrected."""
    if "decoding" in manifest.config:
        return dict(manifest.protocols)
    greedy = Decoding(source="greedy: run before the protocol's decoding was applied")
    return {t: p.model_copy(update={"decoding": greedy}) for t, p in manifest.protocols.items()}
