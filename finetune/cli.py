"""Agent-FLAN fine-tuning: build the training data (build-data), fine-tune a model on it (train).

Plugged into ``python -m agentflan_eval`` as the ``finetune`` subcommand; heavy imports happen only
when a subcommand runs.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from agentflan_eval import flags
from agentflan_eval.errors import AgentFlanError

_EPILOG = """examples:
  python -m agentflan_eval finetune build-data --out ft_data --max-per-source 100
  python -m agentflan_eval finetune train --data ft_data --out ft_model --max-steps 40
  python -m agentflan_eval finetune train --config finetune/configs/llama2_7b_full.json   # on GPUs
  accelerate launch --config_file finetune/configs/accelerate_fsdp.yaml -m agentflan_eval finetune train ...
  python -m agentflan_eval run --model ft_model --tasks hotpotqa --limit 10"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The subcommands' flags, one per field of BuildConfig and TrainConfig (see ``flags.py``)."""
    from agentflan_eval.finetune.build_data import BuildConfig
    from agentflan_eval.finetune.train import TrainConfig

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _EPILOG
    sub = p.add_subparsers(dest="finetune_command", required=True)
    b = sub.add_parser("build-data", help="parse, align, decompose and mix the Agent-FLAN training data")
    flags.add_flags(b, BuildConfig)
    t = sub.add_parser("train", help="fine-tune a causal LM on build-data output (HF folder out)")
    t.add_argument("--config", type=Path, help="JSON file of TrainConfig fields; flags below override it")
    flags.add_flags(t, TrainConfig)


def main(args: argparse.Namespace) -> int:
    if args.finetune_command == "build-data":
        return _build_data(args)
    return _train(args)


def _build_data(a: argparse.Namespace) -> int:
    from agentflan_eval.finetune.build_data import BuildConfig, build, stats_lines

    cfg = flags.build(BuildConfig, flags.given(a, BuildConfig))
    try:
        result = build(cfg)
    except ValueError as e:
        raise AgentFlanError(str(e)) from None
    print("\n".join(stats_lines(result.stats)))
    print(f"wrote {cfg.out / 'data.jsonl'}, {cfg.out / 'dataset'}, {cfg.out / 'stats.json'}")
    return 0


def _train(a: argparse.Namespace) -> int:
    from agentflan_eval.finetune.train import TrainConfig, train

    overrides = flags.given(a, TrainConfig)
    cfg = TrainConfig.from_file(a.config, **overrides) if a.config else flags.build(TrainConfig, overrides)
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
