"""Agent-FLAN fine-tuning: build the training data (build-data), fine-tune a model on it (train).

Plugged into ``python -m agentflan_eval`` as the ``finetune`` subcommand; heavy imports happen only
when a subcommand runs.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from agentflan_eval.errors import AgentFlanError

_EPILOG = """examples:
  python -m agentflan_eval finetune build-data --out ft_data --max-per-source 100
  python -m agentflan_eval finetune train --data ft_data --out ft_model --max-steps 40
  python -m agentflan_eval finetune train --config finetune/configs/llama2_7b_full.json   # on GPUs
  accelerate launch --config_file finetune/configs/accelerate_fsdp.yaml -m agentflan_eval finetune train ...
  python -m agentflan_eval run --model ft_model --tasks hotpotqa --limit 10"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _EPILOG
    sub = p.add_subparsers(dest="finetune_command", required=True)

    b = sub.add_parser("build-data", help="parse, align, decompose and mix the Agent-FLAN training data")
    b.add_argument("--out", type=Path, required=True, help="output folder (data.jsonl, dataset/, stats.json)")
    b.add_argument("--data-dir", type=Path, help="data root (default: $AGENTFLAN_DATA_DIR, then the cache)")
    b.add_argument(
        "--sources",
        default="fireact,toolbench,kg,alfworld,os",
        help="offline trajectory sources, comma-separated (default: all five)",
    )
    b.add_argument(
        "--fireact-files",
        default="multitask",
        help="FireAct gpt_format files: hotpotqa, hotpotqa_multimethod, multitask, multitask_multimethod",
    )
    b.add_argument(
        "--agentinstruct",
        nargs="?",
        const="hub",
        metavar="PATH",
        help="add THUDM/AgentInstruct: from the Hub, or a local parquet/JSONL file or folder",
    )
    b.add_argument(
        "--agentflan",
        nargs="?",
        const="hub",
        metavar="PATH",
        help="add the released internlm/Agent-FLAN rows: from the Hub, or a local JSONL file or folder",
    )
    b.add_argument(
        "--sharegpt",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="ShareGPT-style JSON/JSONL general chat to mix in (repeatable)",
    )
    b.add_argument("--no-oasst", action="store_true", help="leave out the OASST general chat")
    b.add_argument("--max-per-source", type=int, help="at most N trajectories per source (seeded sample)")
    b.add_argument("--react-share", type=float, default=0.1, help="share kept in ReAct format (default 0.1)")
    b.add_argument("--ratio-reasoning", type=float, default=1.0)
    b.add_argument("--ratio-retrieval", type=float, default=0.5)
    b.add_argument("--ratio-understanding", type=float, default=0.7)
    b.add_argument("--negatives-a", type=int, default=40, help="negative samples (a): no tools, plain answer")
    b.add_argument(
        "--negatives-b", type=int, default=40, help="negative samples (b): tools given, none needed"
    )
    b.add_argument(
        "--no-decontaminate", action="store_true", help="keep trajectories that share an eval question"
    )
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--tokenizer",
        help="model whose tokenizer measures token lengths (default: the embedded "
        "model; 'none' skips token statistics)",
    )
    b.add_argument("--chat-template", help="template for token statistics (default: as run chooses)")

    t = sub.add_parser("train", help="fine-tune a causal LM on build-data output (HF folder out)")
    t.add_argument("--config", type=Path, help="JSON file of TrainConfig fields; flags below override it")
    t.add_argument("--data", type=Path, help="build-data folder or JSONL (default: finetune_data)")
    t.add_argument("--out", type=Path, help="output HF folder (default: finetuned)")
    t.add_argument("--model", help="base model: HF folder, Hub id, .gguf, model_zoo name (default: embedded)")
    t.add_argument(
        "--chat-template", help="agentflan, chatml, llama2, agentlm or tokenizer (default: automatic)"
    )
    t.add_argument("--max-length", type=int)
    t.add_argument("--limit", type=int, help="first N samples of the data")
    t.add_argument("--epochs", type=float)
    t.add_argument("--max-steps", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--grad-accum", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--warmup-steps", type=int)
    t.add_argument(
        "--packing", action="store_true", default=None, help="padding-free packing (default: bucketing)"
    )
    t.add_argument("--lora", action="store_true", default=None, help="LoRA via peft, merged on save")
    t.add_argument("--lora-r", type=int)
    t.add_argument("--gradient-checkpointing", action="store_true", default=None)
    t.add_argument("--device", help="'cpu' forces CPU (default: GPU when available)")
    t.add_argument("--deepspeed", help="DeepSpeed JSON config (finetune/configs/ds_zero3.json)")
    t.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        default=None,
        help="start over even if OUT/checkpoints holds a checkpoint",
    )
    t.add_argument("--save-steps", type=int)
    t.add_argument("--seed", type=int)


def main(args: argparse.Namespace) -> int:
    if args.finetune_command == "build-data":
        return _build_data(args)
    return _train(args)


def _build_data(a: argparse.Namespace) -> int:
    from agentflan_eval.finetune.build_data import BuildConfig, build, stats_lines

    hub_or_path = {"agentinstruct": a.agentinstruct, "agentflan": a.agentflan}
    cfg = BuildConfig(
        out=a.out,
        data_dir=a.data_dir,
        sources=_names(a.sources),
        fireact_files=_names(a.fireact_files),
        agentinstruct=a.agentinstruct is not None,
        agentflan=a.agentflan is not None,
        agentinstruct_path=_local(hub_or_path["agentinstruct"]),
        agentflan_path=_local(hub_or_path["agentflan"]),
        sharegpt=tuple(a.sharegpt),
        oasst=not a.no_oasst,
        max_per_source=a.max_per_source,
        react_share=a.react_share,
        negatives_a=a.negatives_a,
        negatives_b=a.negatives_b,
        ratios={
            "reasoning": a.ratio_reasoning,
            "retrieval": a.ratio_retrieval,
            "understanding": a.ratio_understanding,
        },
        decontaminate=not a.no_decontaminate,
        seed=a.seed,
        tokenizer=a.tokenizer,
        chat_template=a.chat_template,
    )
    try:
        result = build(cfg)
    except ValueError as e:
        raise AgentFlanError(str(e)) from None
    print("\n".join(stats_lines(result.stats)))
    print(f"wrote {cfg.out / 'data.jsonl'}, {cfg.out / 'dataset'}, {cfg.out / 'stats.json'}")
    return 0


def _train(a: argparse.Namespace) -> int:
    from agentflan_eval.finetune.train import TrainConfig, train

    overrides = {
        k: getattr(a, k)
        for k in (
            "data",
            "out",
            "model",
            "chat_template",
            "max_length",
            "limit",
            "epochs",
            "max_steps",
            "batch_size",
            "grad_accum",
            "lr",
            "warmup_steps",
            "packing",
            "lora",
            "lora_r",
            "gradient_checkpointing",
            "device",
            "deepspeed",
            "resume",
            "save_steps",
            "seed",
        )
    }
    if a.config:
        cfg = TrainConfig.from_file(a.config, **overrides)
    else:
        cfg = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
    metrics = train(cfg)
    logging.getLogger(__name__).debug("metrics: %s", json.dumps(metrics))
    tps = metrics["tokens_per_second"]
    print(
        f"trained {metrics['steps']} steps on {metrics['samples']} samples in {metrics['train_seconds']} s "
        f"({tps if tps is not None else '-'} tokens/s); loss {metrics['first_loss']} -> {metrics['last_loss']}"
    )
    print(f"model saved to {cfg.out} (loss curve: {cfg.out / 'loss_curve.png'})")
    print(f"score it: python -m agentflan_eval run --model {cfg.out} --tasks hotpotqa --limit 10")
    return 0


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _local(value: str | None) -> Path | None:
    return None if value in (None, "hub") else Path(value)
