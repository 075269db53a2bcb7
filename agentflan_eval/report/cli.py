"""Write a report: runs beside the published baselines (tables, radar, bars, HTML with transcripts)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from agentflan_eval.model_zoo.baselines import DEFAULT_SELECTION
from agentflan_eval.report import DEFAULT_TRANSCRIPTS, make_report
from agentflan_eval.report.bootstrap import DEFAULT_RESAMPLES
from agentflan_eval.store import RunStore

log = logging.getLogger(__name__)

EPILOG = """examples:
  python -m agentflan_eval report runs/smollm2-135m-instruct-hf-1a2b3c4d           # writes RUN_DIR/report/
  python -m agentflan_eval report runs/model-a runs/model-b --out cmp --baselines all
  python -m agentflan_eval report --out baselines                                # published baselines only
--baselines: paper (the Agent-FLAN main table, default), agenttuning (AgentTuning's per-task table),
all, none, or single rows as table:key, e.g. agenttuning:agentlm-70b,agent-flan:gpt-4."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = __doc__
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument(
        "run_dirs",
        nargs="*",
        type=Path,
        metavar="RUN_DIR",
        help="run dirs to report on (none: the published baselines alone)",
    )
    p.add_argument(
        "--out", type=Path, help="output folder (default: RUN_DIR/report for one run, else ./report)"
    )
    p.add_argument(
        "--baselines", default=DEFAULT_SELECTION, help="which published rows appear (default: paper)"
    )
    p.add_argument(
        "--transcripts",
        type=int,
        default=DEFAULT_TRANSCRIPTS,
        help=f"episodes per run and task in the HTML browser; -1 for all (default: {DEFAULT_TRANSCRIPTS})",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        help=f"bootstrap resamples for the 95 %% intervals (default: {DEFAULT_RESAMPLES})",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")


def main(args: argparse.Namespace) -> int:
    out = args.out or (args.run_dirs[0] / "report" if len(args.run_dirs) == 1 else Path("report"))
    report = make_report(
        args.run_dirs,
        out,
        baselines=args.baselines,
        transcripts=None if args.transcripts < 0 else args.transcripts,
        n_resamples=args.bootstrap,
        seed=args.seed,
    )
    print(f"report: {report.html} (tables: {report.out / 'report.md'})")
    return 0


def report_after_run(store: RunStore) -> None:
    """Called by ``run`` after every run (unless --no-report): the report goes to RUN_DIR/report/."""
    report = make_report([store.root], store.root / "report")
    print(f"report: {report.html}")
