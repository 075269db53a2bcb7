"""One self-contained HTML file: tables, charts inline, and a transcript browser (plain inline JS).

Transcripts are embedded as JSON in a ``<script type="application/json">`` block with every ``<``
escaped, and shown by ``assets/browser.js`` through DOM calls only; the file needs no server and
makes no network request. Long prompt prefixes shared by a task's episodes (instructions, few-shot
examples) are stored once.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from agentflan_eval.records import EpisodeRecord
from agentflan_eval.report.tables import ReportTables, RunSummary, Table
from agentflan_eval.report.writers import display_frame, honesty_lines, task_display_frame
from agentflan_eval.store import RunStore

_MIN_SHARED_PREFIX = 200  # characters; shorter shared prefixes are not worth a pool entry


def _asset(name: str) -> str:
    return (resources.files("agentflan_eval.report") / "assets" / name).read_text(encoding="utf-8")


def _table_html(table: Table) -> str:
    frame = display_frame(table)
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row, cells in zip(table.rows, frame.itertuples(index=False)):
        tds = "".join(f"<td>{escape(str(c))}</td>" for c in cells)
        body.append(f'<tr class="{row.kind}">{tds}</tr>')
    return (
        f'<h2 id="table-{table.name}">{escape(table.title)}</h2>\n'
        f'<table class="tbl" data-table="{table.name}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _frame_html(frame: Any, name: str) -> str:
    return frame.to_html(index=False, border=0, classes=["tbl"], escape=True).replace(
        "<table", f'<table data-table="{name}"', 1
    )


def _list(title: str, anchor: str, items: list[str]) -> str:
    lis = "".join(f"<li>{escape(i)}</li>" for i in items)
    return f'<h2 id="{anchor}">{escape(title)}</h2><ul>{lis}</ul>'


def _img(path: Path, alt: str, ident: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img id="{ident}" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


# -- transcripts -----------------------------------------------------------------------------------
def _episodes(
    runs: list[RunSummary], limit: int | None
) -> Iterator[tuple[RunSummary, str, list[EpisodeRecord], int]]:
    for run in runs:
        store = RunStore(Path(run.root))
        for task in run.tasks:
            records = list(store.episodes(task))
            yield run, task, records if limit is None else records[:limit], len(records)


def transcript_payload(runs: list[RunSummary], limit: int | None) -> tuple[dict[str, Any], list[str]]:
    """Episodes as plain JSON for the browser, plus one line per task saying how many are shown."""
    pool: list[str] = []
    episodes: list[dict[str, Any]] = []
    shown: list[str] = []
    for run, task, records, total in _episodes(runs, limit):
        scale = 100.0 / run.tasks[task].scale
        prefixes = _shared_prefixes(records, pool)
        for rec in records:
            episodes.append(_episode_json(run, rec, scale, prefixes))
        shown.append(f"{run.label} - {task}: {len(records)} of {total} episodes")
    return {"pool": pool, "episodes": episodes}, shown


def _shared_prefixes(records: list[EpisodeRecord], pool: list[str]) -> dict[int, tuple[int, int]]:
    """Prompt position → (pool index, length) of the prefix every episode shares there."""
    out = {}
    width = min((len(r.prompt) for r in records), default=0)
    for i in range(width):
        prefix = os.path.commonprefix([r.prompt[i].content for r in records])
        if len(records) > 1 and len(prefix) >= _MIN_SHARED_PREFIX:
            out[i] = (len(pool), len(prefix))
            pool.append(prefix)
    return out


def _episode_json(
    run: RunSummary, rec: EpisodeRecord, scale: float, prefixes: dict[int, tuple[int, int]]
) -> dict[str, Any]:
    prompt = []
    for i, m in enumerate(rec.prompt):
        pool_index, cut = prefixes.get(i, (None, 0))
        prompt.append({"role": m.role, "prefix": pool_index, "content": m.content[cut:]})
    return {
        "run": run.label,
        "task": rec.task,
        "sample_id": rec.sample_id
        + (f" (repeat {rec.repeat})" if rec.repeat else ""),  # as the browser shows it
        "subset": rec.subset,
        "status": rec.status.value,
        "score": rec.score.value * scale,
        "success": rec.score.success,
        "details": rec.score.details,
        "env_info": rec.env_info,
        "error": f"{rec.error.type}: {rec.error.message}" if rec.error else None,
        "search": rec.prompt[-1].content[-300:] if rec.prompt else "",
        "prompt": prompt,
        "steps": [
            {
                "reply": s.reply,
                "action": s.action.name,
                "argument": s.action.argument,
                "valid": s.action.valid,
                "observation": s.observation,
            }
            for s in rec.steps
        ],
    }


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_script(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, ensure_ascii=False).replace("<", "\\u003c")
    text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)  # not UTF-8; valid as JSON escapes
    return f'<script type="application/json" id="episodes-data">{text}</script>'


_BROWSER = """<h2 id="transcripts">Transcripts</h2>
<p class="muted">{shown}</p>
<div id="controls">
 <label>run <select id="f-run"><option value="">all</option></select></label>
 <label>task <select id="f-task"><option value="">all</option></select></label>
 <label>status <select id="f-status"><option value="">all</option></select></label>
 <label>score from <input id="f-min" type="number" min="0" max="100" step="any"></label>
 <label>to <input id="f-max" type="number" min="0" max="100" step="any"></label>
 <label>outcome <select id="f-outcome"><option value="">all</option><option value="success">success</option>
  <option value="failure">failure</option></select></label>
 <label>search <input id="f-text" type="search" placeholder="sample id or question"></label>
 <span id="episode-count" class="muted"></span>
</div>
<div id="browser">
 <div id="episode-list"><table><thead><tr><th>run</th><th>task</th><th>sample</th><th>score</th>
  <th>status</th><th>turns</th></tr></thead><tbody id="episode-rows"></tbody></table></div>
 <div id="episode-view"><p class="muted">Select an episode.</p></div>
</div>"""


def render_html(tables: ReportTables, charts: dict[str, Path], transcripts: int | None) -> str:
    """``charts`` maps a caption to a PNG; ``transcripts`` caps the episodes shown per run and task."""
    parts = [
        "<h1>Agent-FLAN evaluation report</h1>",
        '<nav><a href="#tables">Tables</a><a href="#charts">Charts</a><a href="#notes">Notes</a>'
        + ('<a href="#transcripts">Transcripts</a>' if tables.runs else "")
        + "</nav>",
    ]
    if tables.runs:
        parts.append(
            _list(
                "Runs",
                "runs",
                [f"{r.label}: {r.root} (model {r.model}, backend {r.backend})" for r in tables.runs],
            )
        )
    else:
        parts.append("<p>Published baselines only.</p>")
    parts.append('<div id="tables">' + "\n".join(_table_html(t) for t in tables.tables) + "</div>")
    if tables.runs:
        parts.append(
            '<h2 id="table-tasks">Per-task scores of our runs (95 % bootstrap interval)</h2>'
            + _frame_html(task_display_frame(tables.runs), "tasks")
        )
    imgs = "".join(
        f"<figure>{_img(p, c, 'chart-' + p.stem)}<figcaption class='muted'>{escape(c)}</figcaption></figure>"
        for c, p in charts.items()
    )
    parts.append(f'<h2 id="charts">Charts</h2><div class="charts">{imgs}</div>')
    parts.append(_list("Notes", "notes", tables.notes))
    if tables.runs:
        deviations, not_run = honesty_lines(tables)
        parts.append(
            _list("Deviations from the original protocol", "deviations", deviations or ["none recorded"])
        )
        parts.append(_list("Tasks not run", "not-run", not_run or ["none"]))
    parts.append(_list("Sources", "sources", tables.sources))
    script = ""
    if tables.runs:
        payload, shown = transcript_payload(tables.runs, transcripts)
        parts.append(_BROWSER.format(shown=escape("; ".join(shown))))
        script = _json_script(payload) + f"\n<script>{_asset('browser.js')}</script>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>Agent-FLAN evaluation report</title><style>{_asset('report.css')}</style></head>"
        f"<body>\n{chr(10).join(parts)}\n{script}\n</body></html>\n"
    )
