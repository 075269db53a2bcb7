"""The one run configuration passed whole from the CLI to the core and stored in the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agentflan_eval.records import GenerationConfig

Backend = Literal["hf", "openai", "replay", "vllm"]
SUITES = ("held-in", "held-out", "hallucination")


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = None  # None: the embedded default model
    backend: Backend = "hf"
    suite: str | None = None
    tasks: list[str] = Field(default_factory=list)
    limit: int | None = None
    output_dir: Path = Path("runs")
    run_id: str | None = None
    batch_size: int = 8
    max_new_tokens: int = 256
    seed: int = 0
    chat_template: str | None = None  # None: chosen automatically
    data_dir: Path | None = None
    api_base: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_connections: int = 8
    request_timeout: float = 300.0  # seconds one model request may take before it is retried (openai backend)
    replay_file: Path | None = None
    device: str | None = None
    device_map: str | None = None  # hf backend: "auto" spreads a model over every visible GPU
    prefix_cache: bool = True  # hf backend: start each prompt from the kept KV cache of its earlier turn
    kept_cache_gb: float | None = None  # hf backend: memory for kept caches (None: 40 % of what is free)
    dtype: str | None = None
    # vLLM backend (ignored by the others): parallelism and engine settings, passed to vllm.LLM.
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1  # engine replicas, each on its own tensor × pipeline GPUs
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    engine_args: str | None = None  # JSON object of extra vllm.LLM keyword arguments, kept as given
    search_backend: Literal["offline", "wikipedia"] = "offline"
    report: bool = True
    # Task-specific services; a task that needs one and lacks it is reported as not run.
    db_url: str | None = None  # Database: a MySQL/MariaDB URL instead of in-memory SQLite
    kg_endpoint: str | None = None  # Knowledge Graph: a Freebase SPARQL endpoint
    webshop_url: str | None = None  # WebShop: a running official WebShop server
    webarena_urls: str | None = None  # WebArena: JSON file or string mapping site placeholders to URLs

    def generation(self) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=self.max_new_tokens, seed=self.seed)
