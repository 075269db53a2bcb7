"""``finetune train``: supervised fine-tuning on a build-data output, nanoGPT-style — one config
model, one linear ``train()``, the full config saved inside every checkpoint.

Any causal LM that ``run`` can load (HF folder, Hub id, GGUF file dequantised once, or the embedded
model), rendered with the chosen model_zoo chat template; loss only on the assistant tokens the data
marks; length bucketing (default) or padding-free packing; full fine-tuning or LoRA (merged on save);
gradient checkpointing; bf16 on GPU; resume from the last checkpoint; DDP/FSDP/DeepSpeed through
``accelerate launch`` (configs in ``finetune/configs``). The output folder is an HF model folder with
the tokenizer, a chat template ``run`` picks up, ``training_config.json`` and ``loss_curve.png``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentflan_eval.errors import AgentFlanError, MissingDependencyError
from agentflan_eval.finetune.records import Conversation
from agentflan_eval.flags import build

log = logging.getLogger(__name__)
CONFIG_FILE = "training_config.json"


_FILE_ONLY: dict[str, Any] = {"cli": False}  # set in a --config file, no flag


class TrainConfig(BaseModel):
    """Everything a training run depends on; each field with a flag is a ``finetune train`` option."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    data: Path = Field(default=Path("finetune_data"), description="build-data folder or JSONL")
    out: Path = Field(default=Path("finetuned"), description="output HF folder")
    model: str | None = Field(
        default=None, description="base model: HF folder, Hub id, .gguf, model_zoo name (default: embedded)"
    )
    chat_template: str | None = Field(
        default=None, description="agentflan, chatml, llama2, agentlm or tokenizer (default: automatic)"
    )
    max_length: int = Field(default=1024, ge=1, description="tokens per sample, longer ones cut")
    limit: int | None = Field(default=None, ge=1, description="first N samples of the data")
    epochs: float = Field(default=1.0, gt=0, description="passes over the data")
    max_steps: int = Field(default=-1, description="optimizer steps; > 0 overrides --epochs")
    batch_size: int = Field(default=4, ge=1, description="samples per device and step")
    grad_accum: int = Field(default=1, ge=1, description="gradient accumulation steps")
    lr: float = Field(default=2e-5, gt=0, description="peak learning rate")
    lr_scheduler: str = Field(default="cosine", json_schema_extra=_FILE_ONLY)
    warmup_steps: int = Field(default=0, ge=0, description="learning-rate warm-up steps")
    weight_decay: float = Field(default=0.0, json_schema_extra=_FILE_ONLY)
    packing: bool = Field(default=False, description="padding-free packing (default: length bucketing)")
    lora: bool = Field(default=False, description="LoRA via peft, merged on save")
    lora_r: int = Field(default=16, ge=1, description="LoRA rank")
    lora_alpha: int = Field(default=32, json_schema_extra=_FILE_ONLY)
    lora_dropout: float = Field(default=0.05, json_schema_extra=_FILE_ONLY)
    gradient_checkpointing: bool = Field(default=False, description="recompute activations to save memory")
    bf16: bool | None = Field(default=None, json_schema_extra=_FILE_ONLY)  # None: on when a CUDA GPU is used
    device: str | None = Field(default=None, description="'cpu' forces CPU (default: GPU when available)")
    deepspeed: str | None = Field(
        default=None, description="DeepSpeed JSON config (finetune/configs/ds_zero3.json)"
    )
    fsdp: str = Field(default="", json_schema_extra=_FILE_ONLY)  # e.g. "full_shard auto_wrap"
    fsdp_config: dict[str, Any] | None = Field(default=None, json_schema_extra=_FILE_ONLY)
    resume: bool = Field(default=True, description="start over even if OUT/checkpoints holds a checkpoint")
    save_steps: int = Field(default=50, ge=1, description="checkpoint every N steps")
    save_total_limit: int = Field(default=2, json_schema_extra=_FILE_ONLY)
    logging_steps: int = Field(default=1, json_schema_extra=_FILE_ONLY)
    seed: int = Field(default=0, description="data order and initialisation seed")

    @classmethod
    def from_file(cls, path: Path, **overrides: Any) -> TrainConfig:
        """A JSON config file (any subset of the fields), then ``overrides`` (None means not given)."""
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        unknown = set(raw) - set(cls.model_fields)
        if unknown:
            raise AgentFlanError(f"unknown training config keys in {path}: {', '.join(sorted(unknown))}")
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return build(cls, raw)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def load_tokenizer(model: str | None, template_name: str | None) -> tuple[Any, Any, str]:
    """(tokenizer, chat template, path to load the model from), resolved as ``run`` resolves models."""
    from agentflan_eval.model_resolve import resolve
    from agentflan_eval.model_zoo.chat_encoder import ChatEncoder, load_path

    resolved = resolve(model)
    load = load_path(resolved)
    encoder = ChatEncoder.load(resolved, load, template_name)
    tok = encoder.tokenizer
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok, encoder.template, load


def load_conversations(path: Path, limit: int | None = None) -> list[Conversation]:
    from agentflan_eval.data import read_jsonl

    if path.is_dir() and (path / "dataset").is_dir():
        from datasets import load_from_disk

        rows = list(load_from_disk(str(path / "dataset")))
    else:
        jsonl = path / "data.jsonl" if path.is_dir() else path
        if not jsonl.is_file():
            raise AgentFlanError(f"no training data at {path}: expected a build-data folder or a JSONL file")
        rows = [r for _, r in read_jsonl(jsonl)]
    return [Conversation.from_row(r) for r in rows[:limit]]


def tokenized_dataset(convs: list[Conversation], tokenizer: Any, template: Any, max_length: int) -> Any:
    """A ``datasets`` dataset of input_ids/labels/length; samples with no supervised token left are dropped."""
    from datasets import Dataset

    from agentflan_eval.finetune.render import IGNORE, tokenize

    rows: list[dict[str, Any]] = []
    for c in convs:
        enc = tokenize(c.turns, template, tokenizer, max_length)
        if any(x != IGNORE for x in enc["labels"]):
            rows.append({**enc, "length": len(enc["input_ids"])})
    if not rows:
        raise AgentFlanError("no training sample has a supervised token within max_length")
    log.info("%d of %d samples tokenized (%d tokens)", len(rows), len(convs), sum(r["length"] for r in rows))
    return Dataset.from_list(rows)


def training_arguments(cfg: TrainConfig) -> Any:
    """The transformers TrainingArguments for ``cfg`` (also what the configs test builds on CPU)."""
    import dataclasses as dc

    import torch
    from transformers import TrainingArguments

    on_gpu = cfg.device != "cpu" and torch.cuda.is_available()
    names = {f.name for f in dc.fields(TrainingArguments)}
    # transformers 5 renamed these; keep working on 4.x too
    bucketing: dict[str, Any] = (
        {"train_sampling_strategy": "group_by_length"}
        if "train_sampling_strategy" in names
        else {"group_by_length": True}
    )
    ckpt = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    renamed: dict[str, Any] = {ckpt: cfg.gradient_checkpointing, **({} if cfg.packing else bucketing)}
    return TrainingArguments(
        output_dir=str(cfg.out / "checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        bf16=cfg.bf16 if cfg.bf16 is not None else on_gpu,
        use_cpu=cfg.device == "cpu",
        deepspeed=cfg.deepspeed,
        fsdp=cfg.fsdp,
        fsdp_config=cfg.fsdp_config,
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        seed=cfg.seed,
        report_to=[],
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        length_column_name="length",
        **renamed,
    )


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Fine-tune, save the HF folder to ``cfg.out`` and return the run's metrics."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        DataCollatorWithFlattening,
        Trainer,
        TrainerCallback,
    )
    from transformers.trainer_utils import get_last_checkpoint

    tokenizer, template, load_path = load_tokenizer(cfg.model, cfg.chat_template)
    convs = load_conversations(cfg.data, cfg.limit)
    dataset = tokenized_dataset(convs, tokenizer, template, cfg.max_length)
    args = training_arguments(cfg)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(load_path, dtype=dtype)
    if cfg.gradient_checkpointing:
        model.config.use_cache = False
    if cfg.lora:
        model = _with_lora(model, cfg)
    collator = _WithoutLength(
        DataCollatorWithFlattening()
        if cfg.packing
        else DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)
    )

    class SaveConfig(TrainerCallback):
        """Every checkpoint carries the full training config."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if ckpt.is_dir():
                (ckpt / CONFIG_FILE).write_text(json.dumps(cfg.to_json(), indent=2) + "\n", encoding="utf-8")

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[SaveConfig()],
    )
    last = get_last_checkpoint(args.output_dir) if cfg.resume and Path(args.output_dir).is_dir() else None
    if last:
        log.info("resuming from %s", last)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - t0
    metrics = _metrics(trainer, result, dataset, seconds, resumed_from=last)
    _save(trainer, tokenizer, template, cfg, metrics)
    return metrics


@dataclass
class _WithoutLength:
    """The ``length`` column feeds the length-bucketing sampler; it must not reach the model."""

    collator: Any

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        return self.collator([{k: v for k, v in f.items() if k != "length"} for f in features])


def _with_lora(model: Any, cfg: TrainConfig) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise MissingDependencyError("peft", "finetune", "LoRA fine-tuning") from None
    if cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    return get_peft_model(
        model,
        LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )


def _metrics(
    trainer: Any, result: Any, dataset: Any, seconds: float, resumed_from: str | None
) -> dict[str, Any]:
    history = [h for h in trainer.state.log_history if "loss" in h]
    tokens = int(getattr(trainer.state, "num_input_tokens_seen", 0) or 0)
    return {
        "steps": trainer.state.global_step,
        "samples": len(dataset),
        "train_seconds": round(seconds, 1),
        "tokens_seen": tokens,
        "tokens_per_second": round(tokens / seconds, 1) if seconds and tokens else None,
        "first_loss": history[0]["loss"] if history else None,
        "last_loss": history[-1]["loss"] if history else None,
        "train_loss": result.training_loss if not math.isnan(result.training_loss) else None,
        "loss_history": [(h["step"], h["loss"]) for h in history],
        "resumed_from": resumed_from,
    }


def _save(trainer: Any, tokenizer: Any, template: Any, cfg: TrainConfig, metrics: dict[str, Any]) -> None:
    """The HF folder ``run --model`` loads: full weights (LoRA merged; gathered from DeepSpeed/FSDP
    shards by ``Trainer.save_model``), the tokenizer with the training chat template, the config,
    the metrics and the loss curve."""
    from agentflan_eval.finetune.render import jinja_template

    if template.name != "tokenizer":
        adds_bos = not template.adds_bos and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]
        jinja = jinja_template(template.name, tokenizer.bos_token if adds_bos else "")
        if jinja is None:
            log.warning(
                "no tokenizer chat template written for %r: run the model with --chat-template %s",
                template.name,
                template.name,
            )
        else:
            tokenizer.chat_template = jinja
    trainer.model.config.use_cache = True
    if cfg.lora:  # merging needs the whole adapter in one process: LoRA runs use DDP, not ZeRO-3/FSDP
        if trainer.is_world_process_zero():
            trainer.model.merge_and_unload().save_pretrained(cfg.out)
            tokenizer.save_pretrained(cfg.out)
    else:
        trainer.save_model(str(cfg.out))
    if trainer.is_world_process_zero():
        meta = {**cfg.to_json(), "chat_template_used": template.name, "metrics": metrics}
        (cfg.out / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        plot_loss(metrics["loss_history"], cfg.out / "loss_curve.png")


def plot_loss(history: list[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    if history:
        ax.plot([s for s, _ in history], [v for _, v in history], marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title("fine-tuning loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
