"""Agent-FLAN on this machine, end to end: build-data → fine-tune SmolLM2-135M on CPU → `run` the base and
the fine-tuned model → one report with both.

    python scripts/finetune_demo.py [--out runs/finetune_demo] [--limit 10] [--max-steps 40] [--lora]

Tasks: hotpotqa, os and agent_h, each only where it is registered and runnable here (a skipped task is
named with its reason). Every stage is the public CLI, printed before it runs; a second invocation resumes
(build-data is redone, training continues from its last checkpoint, runs keep finished episodes).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from agentflan_eval import benchmarks
from agentflan_eval.cli import PLUGIN_COMMANDS, main
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.errors import AgentFlanError
from agentflan_eval.store import RunStore

TASKS = ("hotpotqa", "os", "agent_h")
CONFIG = Path(__file__).resolve().parent.parent / "finetune" / "configs" / "smollm2_cpu_demo.json"


def runnable_tasks(names: list[str], data_dir: Path | None) -> list[str]:
    out = []
    for name in names:
        try:
            bench = benchmarks.get(name)(RunConfig(data_dir=data_dir), DataResolver(data_dir))
            reason = bench.unavailable()
        except (AgentFlanError, ImportError) as e:
            reason = f"{type(e).__name__}: {e}"
        if reason is None:
            out.append(name)
        else:
            print(f"skipping {name}: {reason}")
    return out


def stage(argv: list[str]) -> None:
    print("\n$ python -m agentflan_eval " + " ".join(argv), flush=True)
    t0 = time.perf_counter()
    rc = main(argv)
    print(f"[{time.perf_counter() - t0:.0f} s]")
    if rc != 0:
        raise SystemExit(rc)


def compare(runs: dict[str, Path]) -> None:
    """Score, invalid-action rate and episode statuses of each run, task by task."""
    print(f"\n{'task':<10}{'model':<12}{'score':>8}{'invalid':>9}  statuses")
    results = {name: RunStore(path).read_results() for name, path in runs.items()}
    tasks = sorted({t for r in results.values() if r for t in r.tasks})
    for task in tasks:
        for name, r in results.items():
            tr = r.tasks.get(task) if r else None
            if tr is None:
                continue
            score = "-" if tr.score is None else f"{tr.score / tr.scale * 100:.1f}"
            print(
                f"{task:<10}{name:<12}{score:>8}{tr.invalid_action_rate * 100:>8.1f}%  {json.dumps(tr.statuses)}"
            )


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/finetune_demo"))
    p.add_argument("--data-dir", type=Path, help="benchmark data root (default: $AGENTFLAN_DATA_DIR)")
    p.add_argument("--max-per-source", type=int, default=60, help="trajectories per source (default 60)")
    p.add_argument(
        "--max-steps", type=int, default=40, help="training steps (default 40, about 5-8 min on 2 cores)"
    )
    p.add_argument("--lora", action="store_true", help="LoRA instead of full fine-tuning")
    p.add_argument("--tasks", default=",".join(TASKS), help=f"tasks to compare (default: {','.join(TASKS)})")
    p.add_argument("--limit", type=int, default=10, help="episodes per task (default 10)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    return p.parse_args()


def demo() -> int:
    a = parse_args()
    logging.basicConfig(level=logging.WARNING)
    data, model, runs = a.out / "data", a.out / "model", a.out / "runs"
    data_dir = ["--data-dir", str(a.data_dir)] if a.data_dir else []
    stage(
        [
            "finetune",
            "build-data",
            "--out",
            str(data),
            "--max-per-source",
            str(a.max_per_source),
            "--negatives-a",
            "20",
            "--negatives-b",
            "20",
            *data_dir,
        ]
    )
    stage(
        [
            "finetune",
            "train",
            "--config",
            str(CONFIG),
            "--data",
            str(data),
            "--out",
            str(model),
            "--max-steps",
            str(a.max_steps),
            *(["--lora"] if a.lora else []),
        ]
    )
    tasks = runnable_tasks([t for t in a.tasks.split(",") if t], a.data_dir)
    if not tasks:
        print("no demo task can run here")
        return 2
    common = [
        "--tasks",
        ",".join(tasks),
        "--limit",
        str(a.limit),
        "--max-new-tokens",
        str(a.max_new_tokens),
        "--output-dir",
        str(runs),
        "--no-report",
        *data_dir,
    ]
    stage(["run", *common, "--run-id", "base"])
    stage(["run", "--model", str(model), *common, "--run-id", "finetuned"])
    compare({"base": runs / "base", "finetuned": runs / "finetuned"})
    trained = json.loads((model / "training_config.json").read_text())["metrics"]
    print(
        f"\ntraining: {trained['steps']} steps, {trained['tokens_seen']} tokens in {trained['train_seconds']} s "
        f"= {trained['tokens_per_second']} tokens/s; loss {trained['first_loss']:.3f} -> {trained['last_loss']:.3f}"
    )
    if "report" in PLUGIN_COMMANDS:
        stage(["report", str(runs / "base"), str(runs / "finetuned"), "--out", str(a.out / "report")])
    else:
        print("the report command is not available in this build; compare the two run dirs above")
    return 0


if __name__ == "__main__":
    sys.exit(demo())
