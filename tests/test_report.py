"""Reports: bootstrap intervals, the computed tables, honesty notes, reference regeneration, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agentflan_eval.benchmark import Benchmark
from agentflan_eval.cli import main as cli_main
from agentflan_eval.model_zoo.baselines import gpt4_reference, select
from agentflan_eval.records import (
    Action,
    Deviation,
    EpisodeRecord,
    EpisodeStatus,
    GenerationConfig,
    Message,
    NotRun,
    RunManifest,
    RunResults,
    Score,
    Step,
    TaskResult,
)
from agentflan_eval.report import make_report
from agentflan_eval.report.bootstrap import mean_interval, statistic_interval
from agentflan_eval.report.charts import radar_figure
from agentflan_eval.report.html import transcript_payload
from agentflan_eval.report.tables import AGENT_H_NOTE, AXES, build_tables, load_run
from agentflan_eval.scoring import HELD_IN_FITTED_DIVISORS
from agentflan_eval.store import RunStore

REPO = Path(__file__).resolve().parent.parent


# -- bootstrap --------------------------------------------------------------------------------------
def test_interval_contains_estimate_and_is_deterministic() -> None:
    x = np.random.default_rng(1).binomial(1, 0.3, size=60).astype(float)
    ci = mean_interval(x, seed=3)
    assert ci is not None and ci.low < x.mean() < ci.high
    assert mean_interval(x, seed=3) == ci
    assert mean_interval(x, seed=4) != ci


def test_interval_degenerate_cases() -> None:
    assert mean_interval([0.7]) is None and mean_interval([]) is None  # one episode says nothing about spread
    flat = mean_interval([0.5] * 20)
    assert flat is not None and flat.low == flat.high == 0.5


def test_interval_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(0)
    small, large = (mean_interval(rng.binomial(1, 0.3, size=n).astype(float)) for n in (25, 400))
    assert small is not None and large is not None
    ratio = (small.high - small.low) / (large.high - large.low)
    assert 2.5 < ratio < 6.0  # about sqrt(400 / 25) = 4


def test_interval_covers_the_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(7)
    hits = 0
    for i in range(200):
        ci = mean_interval(rng.binomial(1, 0.3, size=100).astype(float), n_resamples=500, seed=i)
        hits += ci is not None and ci.low <= 0.3 <= ci.high
    assert 0.88 <= hits / 200 <= 0.99


def test_statistic_path_matches_vectorised_mean() -> None:
    x = list(np.random.default_rng(2).random(30))
    ci = statistic_interval(x, lambda xs: sum(xs) / len(xs), n_resamples=300, seed=5)
    ref = mean_interval(x, n_resamples=300, seed=5)
    assert ci is not None and ref is not None
    assert ci.low == pytest.approx(ref.low) and ci.high == pytest.approx(ref.high)


# -- a run store built from realistic records -------------------------------------------------------
def _episode(task: str, i: int, value: float, scale: float) -> EpisodeRecord:
    ok = value >= scale
    return EpisodeRecord(
        task=task,
        sample_id=f"{task}-{i}",
        subset="a",
        status=EpisodeStatus.COMPLETED,
        prompt=[Message(role="user", content=f"You are an agent. Task {task} #{i}: do the thing.")],
        steps=[
            Step(
                reply="Thought: act.\nAction: act[x]",
                action=Action(name="act", argument="x", raw="act[x]"),
                observation="done",
            )
        ],
        score=Score(value=value, success=ok, details={"gold": "x"}),
        env_info={"final": i},
    )


def write_run(
    root: Path,
    model: str,
    tasks: dict[str, tuple[str, list[float], int, float]],
    not_run: dict[str, str],
    deviations: list[Deviation],
) -> RunStore:
    """tasks: name → (suite, episode values, n_standard, scale)."""
    store = RunStore(root)
    store.write_manifest(
        RunManifest(
            run_id=root.name,
            created="2026-01-01T00:00:00+00:00",
            model=model,
            backend="replay",
            chat_template="none",
            generation=GenerationConfig(),
            config={"model": model, "backend": "replay"},
            tasks=list(tasks),
            command_line=["test"],
            package_versions={},
            deviations=deviations,
        )
    )
    results = {}
    for name, (suite, values, n_std, scale) in tasks.items():
        for i, v in enumerate(values):
            store.append(_episode(name, i, v, scale))
        results[name] = TaskResult(
            task=name,
            suite=suite,
            metric="success rate",
            scale=scale,
            score=sum(values) / len(values),
            n=len(values),
            n_standard=n_std,
            statuses={"completed": len(values)},
        )
    store.write_results(
        RunResults(
            run_id=root.name,
            model=model,
            tasks=results,
            not_run=[NotRun(task=t, reason=r) for t, r in not_run.items()],
        )
    )
    return store


FULL_TASKS = {
    **{t: ("held-in", [100.0, 0.0, 100.0, 0.0], 4, 100.0) for t in HELD_IN_FITTED_DIVISORS},
    "hotpotqa": ("held-out", [1.0, 0.0, 0.5], 300, 1.0),  # partial: 3 of 300
    "miniwob": ("held-out", [1.0, 1.0, 0.0, 1.0], 4, 1.0),
    "teval": ("held-out", [60.0, 70.0], 2, 100.0),
    "agent_h": ("hallucination", [1.0, 0.0, 1.0, 1.0], 4, 1.0),
}
NOT_RUN = {
    "sciworld": "needs scienceworld (pip install scienceworld) and Java",
    "webarena": "needs --webarena-urls pointing at the hosted WebArena sites",
}
DEVIATIONS = [
    Deviation(task="hotpotqa", what="offline search corpus instead of live Wikipedia", why="no internet"),
    Deviation(task="db", what="SQLite instead of MySQL"),
]


@pytest.fixture
def full_run(tmp_path: Path) -> Path:
    write_run(tmp_path / "run-a", "model-a", FULL_TASKS, NOT_RUN, DEVIATIONS)
    return tmp_path / "run-a"


def test_tables_for_a_run_beside_the_paper(full_run: Path) -> None:
    run = load_run(full_run, n_resamples=200)
    tables = build_tables([run], select("paper"))
    main = tables.table("main")
    row = next(r for r in main.rows if r.kind == "run")
    assert [r.label for r in main.rows if r.kind == "baseline"] == [b.model for b in select("paper")]
    assert row.values["hotpotqa"] == pytest.approx(50.0) and row.marks["hotpotqa"] == "*"
    assert row.values["held_in"] == pytest.approx(sum(50.0 / d for d in HELD_IN_FITTED_DIVISORS.values()))
    assert "held_in" not in row.marks  # the six held-in tasks ran their (test-sized) standard sets
    assert row.values["webarena"] is None and row.values["sciworld"] is None  # not run: a gap, not 0
    assert row.values["overall"] is None
    assert main.columns["miniwob"] == "MiniWoB++ (not WebArena)" and row.values["miniwob"] == pytest.approx(
        75.0
    )
    assert main.columns["agent_h"] == "Agent-H ‡" and row.marks["agent_h"] == "‡"
    assert any(AGENT_H_NOTE in n for n in tables.notes)
    norm = next(r for r in tables.table("normalised").rows if r.kind == "run")
    assert norm.values["hotpotqa"] == pytest.approx(50.0 / gpt4_reference().get("hotpotqa") * 100)
    assert "miniwob" not in tables.table("normalised").columns
    cell = run.tasks["hotpotqa"]
    assert cell.partial and cell.ci_low is not None and cell.ci_low <= 50.0 <= cell.ci_high
    assert not run.tasks["teval"].partial


def test_radar_leaves_a_gap_for_tasks_not_run(full_run: Path) -> None:
    tables = build_tables([load_run(full_run, n_resamples=50)], select("gpt-4"))
    fig = radar_figure(tables.table("normalised"))
    lines = {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in fig.axes[0].lines}
    ours = lines["model-a (* partial)"]
    keys = list(AXES)
    assert np.isnan(ours[keys.index("sciworld")]) and np.isnan(ours[keys.index("webarena")])
    assert ours[keys.index("hotpotqa")] == pytest.approx(50.0 / 52.1 * 100)
    assert not np.isnan(lines["GPT-4"]).any()


def test_report_files_list_deviations_and_tasks_not_run(full_run: Path, tmp_path: Path) -> None:
    report = make_report([full_run], tmp_path / "out", n_resamples=100)
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    for text in (
        "model-a - hotpotqa: offline search corpus instead of live Wikipedia (no internet)",
        "model-a - db: SQLite instead of MySQL",
        "model-a - sciworld: needs scienceworld",
        "model-a - webarena: needs --webarena-urls",
        "3 / 300 (partial)",
        AGENT_H_NOTE,
    ):
        assert text in md
    html = report.html.read_text(encoding="utf-8")
    assert "SQLite instead of MySQL" in html and "needs --webarena-urls" in html
    main = pd.read_csv(tmp_path / "out" / "main.csv")
    assert main.loc[main["kind"] == "run", "hotpotqa"].item() == pytest.approx(50.0)
    tasks = pd.read_csv(tmp_path / "out" / "tasks.csv")
    assert set(tasks["task"]) == set(FULL_TASKS)
    data = json.loads((tmp_path / "out" / "tables.json").read_text(encoding="utf-8"))
    assert data["runs"][0]["not_run"][0]["task"] == "sciworld"
    for name in ("radar.png", "radar.svg", "relative_accuracy.png", "relative_accuracy.svg"):
        assert (tmp_path / "out" / name).stat().st_size > 5000


class MedianBench(Benchmark):
    """A benchmark whose task score is not a plain mean (only task_score matters here)."""

    name, suite, metric, max_turns, n_standard = "median", "held-out", "median", 1, 10

    def task_score(self, scores):
        return float(np.median([s.value for _, s in scores])), {}

    def load_samples(self):
        raise NotImplementedError

    def make_env(self, sample):
        raise NotImplementedError

    def parse_action(self, reply):
        raise NotImplementedError

    def score(self, sample, steps, env_info):
        raise NotImplementedError


def test_interval_uses_the_benchmarks_own_statistic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentflan_eval import benchmarks

    monkeypatch.setitem(benchmarks.REGISTRY, "median", f"{__name__}:MedianBench")
    values = [100.0] * 6 + [0.0] * 4
    write_run(tmp_path / "run", "m", {"median": ("held-out", values, 10, 100.0)}, {}, [])
    cell = load_run(tmp_path / "run", n_resamples=300).tasks["median"]
    assert cell.ci_low in (0.0, 50.0, 100.0) and cell.ci_high in (0.0, 50.0, 100.0)  # medians, not means
    assert cell.ci_low < cell.ci_high


class PickyBench(MedianBench):
    def task_score(self, scores):
        return {"a": 1.0}[scores[0][0]], {}  # rejects resamples whose first episode is not in subset "a"


def test_a_statistic_that_fails_on_a_resample_gives_no_interval_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentflan_eval import benchmarks

    monkeypatch.setitem(benchmarks.REGISTRY, "median", f"{__name__}:PickyBench")
    store = write_run(tmp_path / "run", "m", {"median": ("held-out", [100.0, 0.0], 2, 100.0)}, {}, [])
    with open(store.episode_path("median"), "a", encoding="utf-8") as fh:  # a second subset, "b"
        rec = _episode("median", 9, 0.0, 100.0).model_copy(update={"subset": "b"})
        fh.write(rec.model_dump_json() + "\n")
    cell = load_run(tmp_path / "run", n_resamples=50).tasks["median"]
    assert cell.score == 50.0 and cell.ci_low is None


def test_no_interval_when_the_statistic_is_unknown(tmp_path: Path) -> None:
    store = write_run(
        tmp_path / "run", "m", {"unregistered": ("held-in", [100.0, 0.0, 0.0], 3, 100.0)}, {}, []
    )
    results = store.read_results()
    assert results is not None
    results.tasks["unregistered"].score = 50.0  # e.g. a mean over per-type accuracies, not over episodes
    store.write_results(results)
    cell = load_run(tmp_path / "run", n_resamples=100).tasks["unregistered"]
    assert cell.score == 50.0 and cell.ci_low is None and cell.ci_high is None


# -- the reference report ---------------------------------------------------------------------------
def test_regenerating_the_baselines_reference_report_gives_the_same_tables(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "make_reference_reports.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = REPO / "reports" / "baselines"
    for name in ("report.md", "tables.json", "main.csv", "normalised.csv", "held_in.csv"):
        assert (tmp_path / "baselines" / name).read_text(encoding="utf-8") == (committed / name).read_text(
            encoding="utf-8"
        ), name


# -- the CLI on real HotpotQA episodes driven by the replay backend ---------------------------------
def replay_file(path: Path, data_dir: Path, correct: bool) -> Path:
    from agentflan_eval import benchmarks
    from agentflan_eval.config import RunConfig
    from agentflan_eval.data import DataResolver

    samples = benchmarks.get("hotpotqa")(RunConfig(data_dir=data_dir), DataResolver(data_dir)).load_samples()[
        :3
    ]
    lines = []
    for i, s in enumerate(samples):
        answer = s.answer if correct and i < 2 else "nobody"  # type: ignore[attr-defined]
        replies = [  # each step a Thought, then an Action
            " Let me look.",
            f" Search[{s.question[:30]}]",  # type: ignore[attr-defined]
            " I know it.",
            f" Finish[{answer}]",
        ]
        lines.append(json.dumps({"task": "hotpotqa", "sample_id": s.id, "replies": replies}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def replay_run(tmp_path: Path, data_dir: Path, name: str, correct: bool, *extra: str) -> int:
    """`run` on 3 HotpotQA questions, the replay file ``name`` playing the model."""
    replay = replay_file(tmp_path / name, data_dir, correct)
    return cli_main(
        [
            "run",
            "--backend",
            "replay",
            "--model",
            str(replay),
            "--tasks",
            "hotpotqa",
            "--limit",
            "3",
            "--output-dir",
            str(tmp_path / "runs"),
            "--data-dir",
            str(data_dir),
            *extra,
        ]
    )


def test_run_writes_its_report_and_report_overlays_two_runs(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = []
    for name, correct in (("good-agent.jsonl", True), ("bad-agent.jsonl", False)):
        assert replay_run(tmp_path, data_dir, name, correct) == 0
        out = capsys.readouterr().out
        run_dir = Path(next(line for line in out.splitlines() if line.startswith("run dir: "))[9:])
        assert f"report: {run_dir / 'report' / 'report.html'}" in out
        assert (run_dir / "report" / "report.md").is_file()
        assert re.search(r"^wall time \d+m\d\ds, model loading included", out, re.MULTILINE)
        runs.append(run_dir)
    good = (runs[0] / "report" / "report.md").read_text(encoding="utf-8")
    assert "| good-agent.jsonl" in good and "66.67*" in good and "offline search corpus" in good
    assert "Wall time" in good and re.search(r"\| +0m\d\ds \|", good), (
        "the task table shows what the task took"
    )
    assert cli_main(["report", *map(str, runs), "--out", str(tmp_path / "cmp")]) == 0
    main = pd.read_csv(tmp_path / "cmp" / "main.csv")
    assert list(main.loc[main["kind"] == "run", "model"]) == ["good-agent.jsonl", "bad-agent.jsonl"]
    assert main.loc[main["kind"] == "run", "hotpotqa"].tolist() == pytest.approx([200 / 3, 0.0])
    assert len(main[main["kind"] == "baseline"]) == 7
    svg = (tmp_path / "cmp" / "radar.svg").read_text(encoding="utf-8")
    assert "good-agent.jsonl" in svg and "bad-agent.jsonl" in svg and "Agent-FLAN-7B" in svg
    payload, shown = transcript_payload([load_run(runs[0], n_resamples=10)], None)
    originals = {r.sample_id: r.prompt for r in RunStore(runs[0]).episodes("hotpotqa")}
    assert payload["pool"] and shown == ["good-agent.jsonl - hotpotqa: 3 of 3 episodes"]
    for e in payload["episodes"]:  # the shared instructions are stored once and rebuild every prompt exactly
        pool = payload["pool"]
        rebuilt = [(pool[m["prefix"]] if m["prefix"] is not None else "") + m["content"] for m in e["prompt"]]
        assert rebuilt == [m.content for m in originals[e["sample_id"]]]
    html = (tmp_path / "cmp" / "report.html").read_text(encoding="utf-8")
    assert html.count('"sample_id"') == 6
