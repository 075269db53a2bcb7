"""Markdown, CSV and JSON renderings of one :class:`ReportTables`.

Frames come from the tables and nothing else, so every format shows the same numbers; the
Markdown and HTML outputs format cells with :func:`display_frame`, CSV keeps raw floats.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import pandas as pd

from agentflan_eval.records import duration_text
from agentflan_eval.report.tables import ReportTables, RunSummary, Table

MISSING = "-"


def _fmt(value: float | None, digits: int, mark: str = "") -> str:
    return MISSING if value is None else f"{value:.{digits}f}{mark}"


def display_frame(table: Table) -> pd.DataFrame:
    """Formatted cells: fixed digits, '-' for missing, markers appended (see the notes)."""
    rows = [
        {
            "Model": r.label,
            **{
                h: _fmt(r.values.get(k), table.decimals(k), r.marks.get(k, ""))
                for k, h in table.columns.items()
            },
        }
        for r in table.rows
    ]
    return pd.DataFrame(rows, columns=["Model", *table.columns.values()])


def raw_frame(table: Table) -> pd.DataFrame:
    rows = [
        {
            "model": r.label,
            "kind": r.kind,
            "source": r.source,
            **{k: r.values.get(k) for k in table.columns},
            "marks": ";".join(f"{k}:{m}" for k, m in r.marks.items()),
        }
        for r in table.rows
    ]
    return pd.DataFrame(rows, columns=["model", "kind", "source", *table.columns, "marks"])


class TaskRow(TypedDict):
    """One task of one run, as tasks.csv stores it (the keys are its columns, in order)."""

    run: str
    task: str
    suite: str
    metric: str
    score: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    n_standard: int
    partial: bool
    statuses: str
    invalid_action_rate: float
    errors: int
    left_out: int
    strict_score: float | None
    wall_seconds: float | None
    truncated_prompts: int
    decoding: str
    repeats: int
    repeat_sd: float | None
    repeat_low: float | None
    repeat_high: float | None


def task_rows(runs: list[RunSummary]) -> list[TaskRow]:
    """Per-task scores of every run with sample count, bootstrap interval and episode statuses."""
    return [
        TaskRow(
            run=run.label,
            task=t,
            suite=c.suite,
            metric=c.metric,
            score=c.score,
            ci_low=c.ci_low,
            ci_high=c.ci_high,
            n=c.n,
            n_standard=c.n_standard,
            partial=c.partial,
            statuses=", ".join(f"{k} {v}" for k, v in sorted(c.statuses.items())),
            invalid_action_rate=c.invalid_action_rate,
            errors=c.errors,
            left_out=c.left_out,
            strict_score=c.strict_score,
            wall_seconds=c.wall_seconds,
            truncated_prompts=c.truncated_prompts,
            decoding=c.decoding,
            repeats=c.repeats,
            repeat_sd=c.repeat_spread.sd if c.repeat_spread else None,
            repeat_low=c.repeat_spread.low if c.repeat_spread else None,
            repeat_high=c.repeat_spread.high if c.repeat_spread else None,
        )
        for run in runs
        for t, c in run.tasks.items()
    ]


def task_display_frame(runs: list[RunSummary]) -> pd.DataFrame:
    rows = [
        {
            "Run": r["run"],
            "Task": r["task"],
            "Suite": r["suite"],
            "Metric": r["metric"],
            "Score": _fmt(r["score"], 2, "*" if r["partial"] else "") + _spread(r),
            "95% CI": MISSING if r["ci_low"] is None else f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]",
            "n / standard": f"{r['n']} / {r['n_standard']}" + (" (partial)" if r["partial"] else ""),
            "Statuses": r["statuses"],
            "Invalid actions": f"{r['invalid_action_rate']:.1%}",
            "Errors": r["errors"],
            "Left out (strict score)": (
                f"{r['left_out']} ({r['strict_score']:.2f})" if r["strict_score"] is not None else "0"
            ),
            "Wall time": duration_text(r["wall_seconds"]),
            "Truncated prompts": r["truncated_prompts"],
            "Decoding": r["decoding"] or MISSING,
        }
        for r in task_rows(runs)
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "Run",
            "Task",
            "Suite",
            "Metric",
            "Score",
            "95% CI",
            "n / standard",
            "Statuses",
            "Invalid actions",
            "Errors",
            "Left out (strict score)",
            "Wall time",
            "Truncated prompts",
            "Decoding",
        ],
    )


def _spread(r: TaskRow) -> str:
    """What follows a score averaged over repeats, e.g. " ± 1.30 sd, 3 repeats: 39.90 to 42.50"."""
    if r["repeat_sd"] is None:
        return ""
    return (
        f" ± {r['repeat_sd']:.2f} sd, {r['repeats']} repeats: {r['repeat_low']:.2f} to {r['repeat_high']:.2f}"
    )


def honesty_lines(tables: ReportTables) -> tuple[list[str], list[str]]:
    """Deviations from the original protocol and tasks not run, one line each, per run."""
    deviations = [
        f"{r.label} - {d.task}: {d.what}" + (f" ({d.why})" if d.why else "")
        for r in tables.runs
        for d in r.deviations
    ]
    not_run = [f"{r.label} - {n.task}: {n.reason}" for r in tables.runs for n in r.not_run]
    return deviations, not_run


def markdown(tables: ReportTables, charts: dict[str, str]) -> str:
    """The report as Markdown; ``charts`` maps a caption to an image path relative to the file."""
    out = ["# Agent-FLAN evaluation report", ""]
    if tables.runs:
        out += (
            ["Runs:", ""]
            + [
                f"- **{r.label}**: `{r.root}` (model {r.model}, backend {r.backend}, "
                f"tasks {', '.join(r.tasks) or 'none'})"
                for r in tables.runs
            ]
            + [""]
        )
    else:
        out += ["Published baselines only.", ""]
    for t in tables.tables:
        out += [f"## {t.title}", "", _md(display_frame(t)), ""]
    if tables.runs:
        out += [
            "## Per-task scores of our runs (95 % bootstrap interval)",
            "",
            _md(task_display_frame(tables.runs)),
            "",
        ]
    out += _bullets("Notes", tables.notes)
    deviations, not_run = honesty_lines(tables)
    if tables.runs:
        out += _bullets("Deviations from the original protocol", deviations or ["none recorded"])
        out += _bullets("Tasks not run", not_run or ["none"])
    out += _bullets("Sources", tables.sources)
    for caption, path in charts.items():
        out += [f"![{caption}]({path})", ""]
    return "\n".join(out)


def _md(frame: pd.DataFrame) -> str:
    """Cells as formatted (no re-parsing of '84.0' into '84'); text left, numbers right."""
    numeric = [bool(len(frame)) and frame[c].astype(str).str.match(r"[-\d\[.]").all() for c in frame.columns]
    align = ["right" if n else "left" for n in numeric]
    return frame.to_markdown(index=False, disable_numparse=True, colalign=align)


def _bullets(title: str, items: list[str]) -> list[str]:
    return [f"## {title}", "", *(f"- {i}" for i in items), ""]


def write_tables(tables: ReportTables, out: Path, charts: dict[str, str]) -> list[Path]:
    """report.md, tables.json and one CSV per table (plus tasks.csv when there are runs)."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {"report.md": markdown(tables, charts), "tables.json": tables.model_dump_json(indent=1) + "\n"}
    frames = {f"{t.name}.csv": raw_frame(t) for t in tables.tables}
    if tables.runs:
        frames["tasks.csv"] = pd.DataFrame(task_rows(tables.runs))
    for name, text in texts.items():
        (out / name).write_text(text, encoding="utf-8")
    for name, frame in frames.items():
        frame.to_csv(out / name, index=False)
    return [out / n for n in [*texts, *frames]]
