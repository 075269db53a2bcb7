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

from agentflan_eval.config import SUITES, RunConfig
from agentflan_eval.errors import AgentFlanError

# Subcommands living in other modules: name → module with add_arguments(parser) and main(args) -> int.
PLUGIN_COMMANDS: dict[str, str] = {
    "report": "agentflan_eval.report.cli",
    "finetune": "agentflan_eval.finetune.cli",
}

_RUN_EPILOG = """examples:
  python -m agentflan_eval run --tasks hotpotqa --limit 5          # embedded SmolLM2-135M, offline
  python -m agentflan_eval run --model ./my-checkpoint --suite held-out
  python -m agentflan_eval run --backend openai --model gpt-4o --api-base http://localhost:8000/v1
  python -m agentflan_eval run --backend vllm --model internlm/Agent-FLAN-7b --tensor-parallel-size 2
Re-running with the same model and settings resumes the same run dir: finished episodes are kept."""


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
    r.add_argument(
        "--model",
        help="local HF folder, .gguf file or folder holding one, Hub id, or model_zoo "
        "name (default: the embedded SmolLM2-135M-Instruct GGUF); with --backend openai the "
        "served model name; with --backend replay the replay JSONL",
    )
    r.add_argument(
        "--backend",
        choices=["hf", "openai", "replay", "vllm"],
        default="hf",
        help="model backend (default: hf; vllm needs the [vllm] extra on a CUDA GPU, or "
        "scripts/install_vllm_cpu.sh on a CPU)",
    )
    r.add_argument("--suite", help=f"one of {', '.join(SUITES)}, all")
    r.add_argument("--tasks", help="comma-separated task names (see `list`)")
    r.add_argument("--limit", type=int, help="first N samples of each task (default: the whole standard set)")
    r.add_argument("--output-dir", type=Path, default=Path("runs"), help="where run dirs go (default: runs)")
    r.add_argument("--run-id", help="run dir name (default: derived from model and settings, so runs resume)")
    r.add_argument("--batch-size", type=int, default=8, help="episodes advanced together (default: 8)")
    r.add_argument(
        "--max-new-tokens",
        type=int,
        default=256,
        help="per model reply (default: 256); tasks whose protocol fixes "
        "its own budget keep it (OS, DB, ALFWorld, KG: 128; T-Eval: 1024)",
    )
    r.add_argument("--seed", type=int, default=0)
    r.add_argument(
        "--chat-template", help="agentflan, llama2, agentlm, chatml or tokenizer (default: automatic)"
    )
    r.add_argument(
        "--data-dir", type=Path, help="benchmark data root (default: $AGENTFLAN_DATA_DIR, then the cache)"
    )
    r.add_argument("--api-base", help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    r.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    r.add_argument(
        "--max-connections",
        type=int,
        default=8,
        help="--backend openai: requests in flight, summed over "
        "every --api-base (comma-separated list allowed); also the number of episodes run at once "
        "(default: 8; e.g. 64 for a vLLM/TGI server)",
    )
    r.add_argument(
        "--request-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="--backend openai: a request unanswered after this long is retried, then its episode "
        "is a model error (default: 300)",
    )
    r.add_argument("--replay-file", type=Path, help="scripted replies for --backend replay")
    r.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    r.add_argument(
        "--device-map", help="hf backend: 'auto' spreads a model too large for one GPU over all GPUs"
    )
    r.add_argument(
        "--no-prefix-cache",
        action="store_true",
        help="hf backend: re-read every prompt in full each turn instead of continuing the KV cache "
        "kept from the episode's previous turn (saves memory: about 2 x batch-size + 4 caches are kept)",
    )
    r.add_argument(
        "--kept-cache-gb",
        type=float,
        metavar="GB",
        help="hf backend: memory the kept KV caches may use, in GB (10^9 bytes); the least recently "
        "used go first; 0 keeps none, as --no-prefix-cache (default: 40%% of the memory free once "
        "the model is loaded, shared by the processes of a multi-process CPU run)",
    )
    r.add_argument("--dtype", help="torch dtype, e.g. bfloat16 (default: bfloat16 on GPU, float32 on CPU)")
    r.add_argument(
        "--search-backend",
        choices=["offline", "wikipedia"],
        default="offline",
        help="HotpotQA search: offline HotpotQA-paragraph corpus (default) or live Wikipedia",
    )
    r.add_argument("--db-url", help="Database task: MySQL/MariaDB URL (default: SQLite in memory)")
    r.add_argument("--kg-endpoint", help="Knowledge Graph task: Freebase SPARQL endpoint URL")
    r.add_argument("--webshop-url", help="WebShop task: URL of a running official WebShop server")
    r.add_argument("--webarena-urls", help="WebArena task: JSON mapping of site placeholders to URLs")
    r.add_argument("--no-report", action="store_true", help="do not write a report after the run")
    v = r.add_argument_group("vLLM backend", "offline vllm.LLM engine (--backend vllm); prefix caching is on")
    v.add_argument(
        "--tensor-parallel-size",
        type=int,
        metavar="N",
        help="GPUs each model copy is split across (default: 1)",
    )
    v.add_argument(
        "--pipeline-parallel-size", type=int, metavar="N", help="pipeline stages per model copy (default: 1)"
    )
    v.add_argument(
        "--data-parallel-size",
        type=int,
        metavar="N",
        help="model copies, each in its own process on its own GPUs (default: 1)",
    )
    v.add_argument(
        "--gpu-memory-utilization",
        type=float,
        metavar="F",
        help="share of GPU memory vLLM may take; with vllm-cpu, of RAM (default: 0.9)",
    )
    v.add_argument("--max-model-len", type=int, metavar="N", help="context length (default: the model's)")
    v.add_argument(
        "--engine-args",
        metavar="JSON",
        help="extra vllm.LLM arguments as a JSON object, e.g. '{\"enforce_eager\": true}'",
    )

    ls = sub.add_parser("list", help="suites, tasks with sample counts and data status, known models")
    ls.add_argument("--data-dir", type=Path, help="benchmark data root")

    rs = sub.add_parser("rescore", help="recompute every score of a run from its saved transcripts")
    rs.add_argument("run_dir", type=Path)
    rs.add_argument("--data-dir", type=Path, help="override the data dir recorded in the run")

    for name, module in PLUGIN_COMMANDS.items():
        mod = importlib.import_module(module)
        mod.add_arguments(sub.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0]))
    return p


_VLLM_FLAGS = (
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "data_parallel_size",
    "gpu_memory_utilization",
    "max_model_len",
    "engine_args",
)


def config_from_args(a: argparse.Namespace) -> RunConfig:
    tasks = [t.strip() for t in (a.tasks or "").split(",") if t.strip()]
    vllm = {k: getattr(a, k) for k in _VLLM_FLAGS if getattr(a, k) is not None}
    if vllm and a.backend != "vllm":
        flags = ", ".join("--" + k.replace("_", "-") for k in vllm)
        raise AgentFlanError(f"{flags} apply only to --backend vllm")
    if a.kept_cache_gb is not None and a.kept_cache_gb < 0:
        raise AgentFlanError(f"--kept-cache-gb must be 0 or more, not {a.kept_cache_gb}")
    return RunConfig(
        model=a.model,
        backend=a.backend,
        suite=a.suite,
        tasks=tasks,
        limit=a.limit,
        output_dir=a.output_dir,
        run_id=a.run_id,
        batch_size=a.batch_size,
        max_new_tokens=a.max_new_tokens,
        seed=a.seed,
        chat_template=a.chat_template,
        data_dir=a.data_dir,
        api_base=a.api_base,
        api_key_env=a.api_key_env,
        max_connections=a.max_connections,
        request_timeout=a.request_timeout,
        replay_file=a.replay_file,
        device=a.device,
        device_map=a.device_map,
        prefix_cache=not a.no_prefix_cache,
        kept_cache_gb=a.kept_cache_gb,
        dtype=a.dtype,
        search_backend=a.search_backend,
        db_url=a.db_url,
        kg_endpoint=a.kg_endpoint,
        webshop_url=a.webshop_url,
        webarena_urls=a.webarena_urls,
        report=not a.no_report,
        **vllm,
    )


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
