"""Regenerate the reference reports in reports/.

    python scripts/make_reference_reports.py                       # reports/baselines/ (published numbers)
    python scripts/make_reference_reports.py --run-dir RUN_DIR     # also reports/embedded/ from that run

reports/baselines/ holds both published tables (Agent-FLAN's main table, AgentTuning's per-task table).
reports/embedded/ puts a run of the embedded SmolLM2-135M-Instruct on the default offline suites beside the
paper's table; make that run first with (every task that can run offline; the others are listed as not run):

    AGENTFLAN_DATA_DIR=../shared/data python -m agentflan_eval run --limit 3 --no-report

Only a few transcripts per task go into the committed HTML, to keep reports/ small.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agentflan_eval.errors import AgentFlanError
from agentflan_eval.report import make_report

REPO = Path(__file__).resolve().parent.parent
BASELINES = "all"  # selection for reports/baselines
EMBEDDED_BASELINES = "paper"
TRANSCRIPTS = 3  # per task, in reports/embedded/report.html


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--run-dir", type=Path, help="a finished run of the embedded model (writes reports/embedded)"
    )
    p.add_argument("--out", type=Path, default=REPO / "reports", help="default: reports/ of this repository")
    a = p.parse_args(argv)
    try:
        if a.run_dir is not None:  # read the run first: a wrong path fails before anything is rewritten
            embedded = make_report(
                [a.run_dir], a.out / "embedded", baselines=EMBEDDED_BASELINES, transcripts=TRANSCRIPTS
            )
            print(f"wrote {embedded.out}")
        print(f"wrote {make_report([], a.out / 'baselines', baselines=BASELINES).out}")
    except AgentFlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
