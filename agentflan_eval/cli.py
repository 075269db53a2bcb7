"""``python -m agentflan_eval``: run, list, rescore (and the commands other modules plug in).

Every user-facing error is one line on stderr and exit status 2; scored episodes are already on
disk by then.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from agentflan_eval import flags
from agentflan_eval.benchmark import option_models
from agentflan_eval.config import SUITES, RunConfig
from agentflan_eval.errors import AgentFlanError

# Subcommands living in other modules: name → module with add_arguments(parser) and main(args) -> int.
PLUGIN_COMMANDS: dict[str, str] = {
    "report": "agentflan_eval.report.cli",
    "finetune": "agentflan_eval.finetune.cli",
    "data": "agentflan_eval.data_cli",
    "selftest": "agentflan_eval.selftest",
}

_RUN_EPILOG = """examples:
  python -m agentflan_eval run --tasks hotpotqa --limit 5          # embedded SmolLM2-135M, offline
  python -m agentflan_eval run --model ./my-checkpoint --suite held-out
  python -m agentflan_eval run --backend openai --model gpt-4o --api-base http://localhost:8000/v1
  python -m agentflan_eval run --backend vllm --model internlm/Agent-FLAN-7b --tensor-parallel-size 2
Re-running with the same model and settings resumes the same run dir: finished episodes are kept."""


# Argument groups of `run --help`, by the `group` key of a RunConfig field (no key: general).
_RUN_GROUPS = {
    "": ("general", None),
    "hf": ("hf backend", "local transformers model (--backend hf)"),
    "openai": ("openai backend", "an OpenAI-compatible server (--backend openai)"),
    "vllm": ("vLLM backend", "offline vllm.LLM engine (--backend vllm); prefix caching is on"),
    "task": ("task options", "settings of one task, declared by its benchmark"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agentflan_eval", description="Evaluate LLM agents on the Agent-FLAN benchmarks."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser(
        "run",
        help="score a model on tasks or suites",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_flags(r)

    ls = sub.add_parser("list", help="suites, tasks with sample counts and data status, known models")
    ls.add_argument("--data-dir", type=Path, help="benchmark data root")

    rs = sub.add_parser("rescore", help="recompute every score of a run from its saved transcripts")
    rs.add_argument("run_dir", type=Path)
    rs.add_argument("--data-dir", type=Path, help="override the data dir recorded in the run")

    for name, module in PLUGIN_COMMANDS.items():
        mod = importlib.import_module(module)
        mod.add_arguments(sub.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0]))
    return p


def add_run_flags(r: argparse.ArgumentParser) -> None:
    """RunConfig's fields, then each task's options (dest ``task.option``), as flags."""
    groups = {key: r.add_argument_group(title, about) for key, (title, about) in _RUN_GROUPS.items()}
    flags.add_flags(groups[""], RunConfig, groups)
    for task, options in option_models().items():
        flags.add_flags(groups["task"], options, dest_prefix=f"{task}.")


def config_from_args(a: argparse.Namespace) -> RunConfig:
    """The RunConfig of the flags given; flags not given keep RunConfig's defaults."""
    values = flags.given(a, RunConfig)
    fields = RunConfig.model_fields
    vllm_only = [n for n in values if flags.extra(fields[n]).get("group") == "vllm"]
    if vllm_only and values.get("backend", fields["backend"].default) != "vllm":
        names = ", ".join(flags.flag_name(n, fields[n]) for n in vllm_only)
        raise AgentFlanError(f"{names} apply only to --backend vllm")
    values["task_options"] = {
        task: flags.build(options, flags.given(a, options, f"{task}.")).model_dump(mode="json")
        for task, options in option_models().items()
    }
    return flags.build(RunConfig, values)


def cmd_run(a: argparse.Namespace, argv: Sequence[str]) -> int:
    from agentflan_eval.distributed import current_shard
    from agentflan_eval.runner import run, summary_lines

    config = config_from_args(a)
    if config.backend == "replay" and config.replay_file is None and config.model:
        config = config.model_copy(update={"replay_file": Path(config.model)})
    store, results = run(config, argv=["python", "-m", "agentflan_eval", *argv])
    if not current_shard().is_main:  # one process per GPU: the main one reports the merged run
        return 0
    print("\n".join(summary_lines(results)))
    print(f"run dir: {store.root}")
    if config.report and "report" in PLUGIN_COMMANDS:
        importlib.import_module(PLUGIN_COMMANDS["report"]).report_after_run(store)
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    from agentflan_eval import benchmarks
    from agentflan_eval.data import DataResolver
    from agentflan_eval.model_zoo.known_models import KNOWN_MODELS

    config = RunConfig(data_dir=a.data_dir)
    data = DataResolver(a.data_dir, offline=True)  # listing never downloads; `run` does when online
    print("suites: " + ", ".join(f"{s} ({', '.join(benchmarks.suite_tasks(s)) or '-'})" for s in SUITES))
    print(f"\n{'task':<12}{'suite':<15}{'samples':>8}  status")
    for name in benchmarks.task_names():
        bench = benchmarks.get(name)(config, data)
        reason = bench.unavailable()
        count = "-"
        if reason is None:
            try:
                count = str(len(bench.load_samples()))
            except AgentFlanError as e:
                reason = str(e)
        print(
            f"{name:<12}{bench.suite:<15}{count:>8}  {'ready' if reason is None else 'not runnable: ' + reason}"
        )
    print("\nknown models (--model NAME):")
    for m in KNOWN_MODELS:
        print(f"  {m.name:<24}{m.source:<32}template {m.template}")
    return 0


def cmd_rescore(a: argparse.Namespace) -> int:
    from agentflan_eval.rescore import rescore
    from agentflan_eval.runner import summary_lines

    outcome = rescore(a.run_dir, a.data_dir)
    print("\n".join(summary_lines(outcome.results)))
    print(f"rescored {outcome.episodes} episodes; {outcome.changed} scores changed")
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's time limit, `kill`), raised like Ctrl-C so the same cleanup runs."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Without this, SIGTERM ends Python at once: no ``finally`` runs, so vLLM's engine processes (and the
    memory they reserved) outlive the run. Finished episodes are on disk either way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# Flags of `run` that --concurrency replaced (one knob for every backend).
_REPLACED = {"--batch-size": "--concurrency", "--max-connections": "--concurrency"}


def _replaced_flag(argv: Sequence[str]) -> str | None:
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)  # the subcommand
    if command is None or argv[command] != "run":
        return None
    used = [a.split("=")[0] for a in argv[command + 1 :] if a.split("=")[0] in _REPLACED]
    if not used:
        return None
    return f"{used[0]} was replaced by {_REPLACED[used[0]]} (episodes in flight, for every backend)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if (replaced := _replaced_flag(argv)) is not None:
        print(f"error: {replaced}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        with _sigterm_as_interrupt():
            return _dispatch(args, argv)
    except AgentFlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        how = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"{how}: finished episodes are saved; run the same command again to resume", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130


def _dispatch(args: argparse.Namespace, argv: list[str]) -> int:
    if args.command == "run":
        return cmd_run(args, argv)
    if args.command == "list":
        return cmd_list(args)
    if args.command == "rescore":
        return cmd_rescore(args)
    return importlib.import_module(PLUGIN_COMMANDS[args.command]).main(args)
