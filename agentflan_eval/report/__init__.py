"""Reports: runs beside the published baselines, as the Agent-FLAN paper shows them.

One :class:`~agentflan_eval.report.tables.ReportTables` is computed from the run stores and
``model_zoo.baselines``; Markdown, CSV, JSON, the charts and the HTML are all rendered from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentflan_eval.model_zoo.baselines import DEFAULT_SELECTION, select
from agentflan_eval.report.bootstrap import DEFAULT_RESAMPLES
from agentflan_eval.report.tables import ReportTables, build_tables, load_run

DEFAULT_TRANSCRIPTS = 200  # episodes per run and task embedded in the HTML
_CHARTS = {
    "radar": "GPT-4-normalised scores (radar)",
    "relative_accuracy": "Relative accuracy vs GPT-4 (bars)",
}


@dataclass(frozen=True)
class Report:
    out: Path
    tables: ReportTables
    files: list[Path]

    @property
    def html(self) -> Path:
        return self.out / "report.html"


def make_report(
    run_dirs: Sequence[Path],
    out: Path,
    baselines: str = DEFAULT_SELECTION,
    transcripts: int | None = DEFAULT_TRANSCRIPTS,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Report:
    """Write report.md, report.html, tables.json, CSVs and radar/bar charts (PNG and SVG) to ``out``."""
    from agentflan_eval.report.charts import radar, relative_bars
    from agentflan_eval.report.html import render_html
    from agentflan_eval.report.writers import write_tables

    rows = select(baselines)  # a misspelt selection fails before any run is read
    tables = build_tables([load_run(d, n_resamples, seed) for d in run_dirs], rows)
    out.mkdir(parents=True, exist_ok=True)
    normalised = tables.table("normalised")
    files = radar(normalised, out / "radar") + relative_bars(normalised, out / "relative_accuracy")
    files += write_tables(tables, out, {caption: f"{stem}.png" for stem, caption in _CHARTS.items()})
    html = render_html(
        tables, {caption: out / f"{stem}.png" for stem, caption in _CHARTS.items()}, transcripts
    )
    (out / "report.html").write_text(html, encoding="utf-8")
    return Report(out, tables, [*files, out / "report.html"])
