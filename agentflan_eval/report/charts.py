"""The radar chart and the paper-style relative-accuracy bars, from the GPT-4-normalised table.

Figures are built on ``matplotlib.figure.Figure`` (no pyplot, no GUI backend). A missing value is a
break in the radar's line and an absent bar, never a 0.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.projections.polar import PolarAxes

from agentflan_eval.report.tables import PARTIAL_MARK, Row, Table

_SAVE: dict[str, dict[str, Any]] = {
    "png": {"dpi": 110, "metadata": {"Software": None}},
    "svg": {"metadata": {"Date": None}},
}
_RUN_COLOURS = ("#d62728", "#1f3fbf", "#e67e00", "#2ca02c", "#9467bd", "#8c564b")


def _label(row: Row) -> str:
    return (
        f"{row.label} ({PARTIAL_MARK} partial)"
        if any(PARTIAL_MARK in m for m in row.marks.values())
        else row.label
    )


def _colours(table: Table) -> dict[str, str]:
    """One colour per row label, the same in both charts: tab10 for baselines, strong colours for runs."""
    baselines = [r.label for r in table.rows if r.kind != "run"]
    runs = [r.label for r in table.rows if r.kind == "run"]
    cmap = matplotlib.colormaps["tab10" if len(baselines) <= 10 else "tab20"]
    out = {label: matplotlib.colors.to_hex(cmap(i % cmap.N)) for i, label in enumerate(baselines)}
    out.update({label: _RUN_COLOURS[i % len(_RUN_COLOURS)] for i, label in enumerate(runs)})
    return out


def _save(fig: Figure, stem: Path) -> list[Path]:
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "agentflan-eval", "svg.fonttype": "none"}):
        for ext, kwargs in _SAVE.items():
            path = stem.with_suffix(f".{ext}")
            fig.savefig(path, **kwargs)  # fixed margins: a "tight" bbox would draw every figure twice
            paths.append(path)
    return paths


def radar(table: Table, stem: Path) -> list[Path]:
    return _save(radar_figure(table), stem)


def radar_figure(table: Table) -> Figure:
    """Axes Held-In, HotpotQA, SciWorld, WebArena, T-Eval, Agent-H on the GPT-4-normalised scale."""
    keys, headers = list(table.columns), list(table.columns.values())
    rows = [r for r in table.rows if any(r.values.get(k) is not None for k in keys)]
    angles = np.linspace(0, 2 * math.pi, len(keys), endpoint=False)
    closed = np.append(angles, angles[0])
    top = max([110.0, *(v * 1.1 for r in rows for v in r.values.values() if v is not None)])
    fig = Figure(figsize=(9.5, 6.6))
    fig.subplots_adjust(left=0.07, right=0.6, top=0.88, bottom=0.08)
    ax = fig.add_subplot(projection="polar")
    assert isinstance(ax, PolarAxes)  # matplotlib's stubs type every non-3d projection as plain Axes
    ax.set_theta_offset(math.pi / 2)  # first axis on top, then clockwise, as the paper draws it
    ax.set_theta_direction(-1)
    colours = _colours(table)
    for row in rows:
        colour = colours[row.label]
        vals = np.array([np.nan if row.values.get(k) is None else row.values[k] for k in keys], dtype=float)
        vals = np.append(vals, vals[0])
        is_run, is_gpt4 = row.kind == "run", row.reference
        ax.plot(
            closed,
            vals,
            color="grey" if is_gpt4 else colour,
            linestyle="--" if is_gpt4 else "-",
            linewidth=2.6 if is_run else 1.2,
            alpha=1.0 if is_run else 0.8,
            marker="o" if is_run else ".",
            markersize=7 if is_run else 4,
            label=_label(row),
            zorder=3 if is_run else 2,
        )
        if not np.isnan(vals).any() and not is_gpt4:
            ax.fill(closed, vals, color=colour, alpha=0.04)
    ax.set_xticks(angles, headers)
    ax.set_ylim(0, top)
    ax.set_rlabel_position(90)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title("GPT-4-normalised score (GPT-4 = 100)", pad=18)
    ax.legend(loc="upper left", bbox_to_anchor=(1.12, 1.05), fontsize=8, frameon=False)
    fig.text(0.01, 0.01, "A gap in a line is a task not run (never 0).", fontsize=7, color="dimgray")
    return fig


def relative_bars(table: Table, stem: Path) -> list[Path]:
    """Grouped bars per column, one per model; GPT-4 is the dashed line at 100 (the paper's Figure 1)."""
    keys, headers = list(table.columns), list(table.columns.values())
    rows = [r for r in table.rows if not r.reference and any(r.values.get(k) is not None for k in keys)]
    fig = Figure(figsize=(max(11.0, 2.0 + 0.16 * len(rows) * len(keys)), 4.8))
    fig.subplots_adjust(left=0.06, right=1.0 - 2.4 / fig.get_figwidth(), top=0.9, bottom=0.08)
    ax = fig.add_subplot()
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(keys))
    colours = _colours(table)
    for i, row in enumerate(rows):
        colour = colours[row.label]
        vals = [row.values.get(k) for k in keys]
        pos = [x[j] - 0.4 + width * (i + 0.5) for j, v in enumerate(vals) if v is not None]
        present = [v for v in vals if v is not None]
        bars = ax.bar(
            pos,
            present,
            width,
            color=colour,
            label=_label(row),
            edgecolor="black" if row.kind == "run" else None,
            linewidth=0.8,
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=5.5, rotation=90, padding=2)
    ax.axhline(100, color="grey", linestyle="--", linewidth=1, label="GPT-4 = 100")
    ax.set_xticks(x, headers)
    ax.set_ylabel("Rel. Accuracy (%)")
    top = max([110.0, *(v for r in rows for v in r.values.values() if v is not None)])
    ax.set_ylim(0, top * 1.15)
    ax.set_title("Relative accuracy: score / GPT-4 score x 100")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, frameon=False)
    return _save(fig, stem)
