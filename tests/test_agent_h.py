"""Agent-H (re-constructed): generator determinism, the exact scoring definition, and end-to-end runs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.agent_h.benchmark import DEVIATION_NOTE, AgentH
from agentflan_eval.benchmarks.agent_h.build import (
    GENERATOR_VERSION,
    AgentHSample,
    build_samples,
    samples_hash,
    write_jsonl,
)
from agentflan_eval.benchmarks.agent_h.tools import GENERIC, LOOKUP
from agentflan_eval.cli import main
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import Action, Score, Step
from agentflan_eval.store import RunStore

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench(data_dir: Path) -> AgentH:
    return AgentH(RunConfig(data_dir=data_dir), DataResolver(data_dir, offline=True))


@pytest.fixture(scope="module")
def samples(bench: AgentH) -> list[AgentHSample]:
    return bench.samples


def _first(samples: list[AgentHSample], cell: str, **where: str) -> AgentHSample:
    return next(s for s in samples if s.subset == cell and all(getattr(s, k) == v for k, v in where.items()))


def _score(bench: AgentH, sample: AgentHSample, reply: str) -> Score:
    return bench.score(sample, [Step(reply=reply, action=bench.parse_action(reply))], {})


# -- the generator -------------------------------------------------------------------------------
def test_set_layout_sizes_and_balanced_order(samples: list[AgentHSample]) -> None:
    assert len(samples) == 1800 and len({s.id for s in samples}) == 1800
    cells = Counter(s.subset for s in samples)
    assert set(cells) == {f"{c}/{f}" for c in ("none_fits", "no_tools", "control") for f in ("react", "chat")}
    assert set(cells.values()) == {300}
    assert len({s.subset for s in samples[:6]}) == 6  # every cell in each round, so --limit stays balanced
    first20 = Counter(s.subset for s in samples[:20])
    assert max(first20.values()) - min(first20.values()) <= 1
    react = [s for s in samples if s.format == "react"]
    kinds = Counter((s.case, s.kind) for s in react)
    assert kinds[("none_fits", "general")] == kinds[("no_tools", "general")] == 200
    assert kinds[("control", "toolbench")] == 25 and kinds[("control", "knowledge")] == 275
    for case in ("none_fits", "no_tools", "control"):  # each query once per format and case
        assert len({s.query_id for s in react if s.case == case}) == 300
    by_case = {c: {s.query_id for s in react if s.case == c} for c in ("none_fits", "no_tools", "control")}
    assert not (by_case["none_fits"] & by_case["no_tools"]) and not (by_case["no_tools"] & by_case["control"])


def test_tool_lists_follow_the_case_rules(samples: list[AgentHSample]) -> None:
    for s in samples:
        names = [a.name for a in s.apis]
        if s.case == "no_tools":
            assert not s.apis and not s.gold
        elif s.case == "none_fits":
            assert 1 <= len({a.tool for a in s.apis}) <= 3 and len(s.apis) <= 12 and not s.gold
            assert not {a.tool for a in s.apis} & GENERIC
            if s.kind == "knowledge":
                assert not {a.tool for a in s.apis} & LOOKUP
        else:
            assert s.gold and set(s.gold) <= set(names)
    tb = _first(samples, "control/react", query_id="toolbench:G1_query:1")
    assert tb.gold == ["checkhealth_for_squake", "projects_for_squake"]  # ToolBench's "relevant APIs"
    assert "SQUAKE" in tb.query


def test_generator_is_deterministic_and_seeded(
    data_dir: Path, samples: list[AgentHSample], tmp_path: Path
) -> None:
    data = DataResolver(data_dir, offline=True)
    out = tmp_path / "agent_h.jsonl"
    digest = write_jsonl(out, data, seed=0)  # builds the set again from the data files
    assert digest == samples_hash(samples) == hashlib.sha256(out.read_bytes()).hexdigest()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["sample"] for x in lines] == [s.model_dump(mode="json") for s in samples]
    other = build_samples(data, seed=1)
    assert samples_hash(other, 1) != samples_hash(samples)
    assert [s.query_id for s in other[:30]] != [s.query_id for s in samples[:30]]
    first = json.loads(lines[0])
    assert len(lines) == 1800 and first["version"] == GENERATOR_VERSION and first["seed"] == 0
    assert first["messages"][-1] == {"role": "user", "content": samples[0].query}


def test_documented_hash_matches_the_generator(samples: list[AgentHSample]) -> None:
    """docs/agent_h.md names the v1 hash; a generator change must bump the version and the docs."""
    doc = (REPO / "docs/agent_h.md").read_text(encoding="utf-8")
    documented = re.search(
        rf"Version {GENERATOR_VERSION}, seed 0: 1,800 samples, sha256\n`([0-9a-f]{{64}})`", doc
    )
    assert documented is not None and documented.group(1) == samples_hash(samples)


def test_prompt_formats(samples: list[AgentHSample]) -> None:
    react = _first(samples, "none_fits/react").messages()
    assert (
        react[0].role == "system"
        and "Action Input:" in react[0].content
        and "Final Answer:" in react[0].content
    )
    assert all(a.name in react[0].content for a in _first(samples, "none_fits/react").apis)
    chat = _first(samples, "control/chat")
    system = chat.messages()[0].content
    assert '"arguments"' in system and "Action:" not in system
    assert json.loads(system.splitlines()[1])["name"] == chat.apis[0].name  # one function definition a line
    assert [m.role for m in _first(samples, "no_tools/chat").messages()] == ["user"]
    assert "No tools are available" in _first(samples, "no_tools/react").messages()[0].content


# -- scoring: hand-built replies ---------------------------------------------------------------------
# (cell, reply, format-level, action-level, correct call, ok); {gold} / {other} / {listed} are filled in.
CASES = [
    ("none_fits/chat", "Self-attention lets every token weigh every other token.", False, False, None, True),
    (
        "none_fits/chat",
        '{{"name": "get_weather", "arguments": {{"city": "Paris"}}}}',
        True,
        True,
        None,
        False,
    ),
    ("none_fits/chat", "Thought: no tool fits.\nFinal Answer: here it is.", True, False, None, False),
    ("none_fits/react", "Thought: I can answer this myself.\nFinal Answer: Paris.", False, False, None, True),
    ("none_fits/react", "Thought: use a tool\nAction: {listed}\nAction Input: {{}}", True, True, None, False),
    (
        "none_fits/react",
        'Thought: x\nAction: wikipedia_search\nAction Input: {{"q": "x"}}',
        True,
        True,
        None,
        False,
    ),
    ("none_fits/react", "", False, False, None, False),
    ("no_tools/chat", "Here is a haiku about summer.", False, False, None, True),
    (
        "no_tools/chat",
        'Thought: I need to search.\nAction: Search\nAction Input: {{"query": "x"}}',
        True,
        True,
        None,
        False,
    ),
    (
        "no_tools/chat",
        '<tool_call>{{"name": "search", "arguments": {{"q": "x"}}}}</tool_call>',
        True,
        True,
        None,
        False,
    ),
    ("no_tools/react", "Thought: no tool is needed.\nFinal Answer: 42", False, False, None, True),
    ("no_tools/react", "Thought: x\nAction: None\nFinal Answer: 42", True, False, None, False),
    (
        "no_tools/react",
        'Thought: x\nAction: GoogleSearch\nAction Input: {{"query": "x"}}',
        True,
        True,
        None,
        False,
    ),
    (
        "control/react",
        'Thought: search it\nAction: {gold}\nAction Input: {{"query": "x"}}',
        False,
        False,
        True,
        True,
    ),
    ("control/react", '{{"name": "{gold}", "arguments": {{"query": "x"}}}}', True, False, True, False),
    ("control/react", "Thought: I know it.\nFinal Answer: Chicago", False, False, False, False),
    ("control/react", "Thought: x\nAction: {other}\nAction Input: {{}}", False, False, False, False),
    ("control/chat", '{{"name": "{gold}", "arguments": {{"query": "x"}}}}', False, False, True, True),
    (
        "control/chat",
        '<tool_call>\n{{"name": "{gold}", "arguments": {{"query": "x"}}}}\n</tool_call>',
        False,
        False,
        True,
        True,
    ),
    (
        "control/chat",
        'Thought: search\nAction: {gold}\nAction Input: {{"query": "x"}}',
        True,
        False,
        True,
        False,
    ),
    ("control/chat", '{{"name": "bing_search", "arguments": {{"q": "x"}}}}', False, True, False, False),
    ("control/chat", "The band formed in Chicago.", False, False, False, False),
]


@pytest.mark.parametrize(("cell", "reply", "fmt_h", "act_h", "correct", "ok"), CASES)
def test_hand_built_replies_score_as_defined(
    bench: AgentH,
    samples: list[AgentHSample],
    cell: str,
    reply: str,
    fmt_h: bool,
    act_h: bool,
    correct: bool | None,
    ok: bool,
) -> None:
    sample = _first(samples, cell, kind="knowledge") if cell.startswith("control") else _first(samples, cell)
    listed = sample.apis[0].name if sample.apis else "x"
    other = next((a.name for a in sample.apis if a.name not in sample.gold), "x")
    s = _score(
        bench, sample, reply.format(gold=sample.gold[0] if sample.gold else "x", other=other, listed=listed)
    )
    d = s.details
    assert (d["format_hallucination"], d["action_hallucination"], d["correct_call"], d["ok"]) == (
        fmt_h,
        act_h,
        correct,
        ok,
    )
    assert s.value == (100.0 if ok else 0.0) and s.success is ok


def test_aliases_and_unlisted_names(bench: AgentH, samples: list[AgentHSample]) -> None:
    google = next(
        s for s in samples if s.subset == "control/react" and s.gold == ["GoogleSearch.serper_search"]
    )
    for name in (
        "GoogleSearch",
        "serper_search",
        "`GoogleSearch.serper_search`",
        "googlesearch.serper_search",
    ):
        assert _score(bench, google, f"Thought: x\nAction: {name}\nAction Input: {{}}").details["ok"], name
    wrong = _score(bench, google, "Thought: x\nAction: Google Search\nAction Input: {}")
    assert wrong.details["unlisted"] == ["Google Search"] and wrong.details["action_hallucination"]


def test_parse_action_never_raises(bench: AgentH) -> None:
    assert bench.parse_action('{"name": "x", "arguments": {"a": 1}}') == Action(
        name="x", argument='{"a": 1}', raw='{"name": "x", "arguments": {"a": 1}}'
    )
    assert bench.parse_action("Plain answer.").name == "answer"
    assert bench.parse_action("   ").valid is False
    for junk in ("{{{", '{"name": ', "Action:", "}{", "\x00"):
        bench.parse_action(junk)


def _policy_scores(bench: AgentH, samples: list[AgentHSample], policy: str) -> list[tuple[str | None, Score]]:
    out = []
    for s in samples[:60]:
        if policy == "oracle":
            if s.case != "control":
                reply = "Thought: easy.\nFinal Answer: done" if s.format == "react" else "done"
            else:
                reply = (
                    f"Action: {s.gold[0]}\nAction Input: {{}}"
                    if s.format == "react"
                    else json.dumps({"name": s.gold[0], "arguments": {}})
                )
        elif policy == "never_call":
            reply = "I can answer this directly."
        else:  # always call the right tool, or a made-up one when there is none
            name = s.gold[0] if s.gold else "search"
            reply = json.dumps({"name": name, "arguments": {}}) if s.format == "chat" else f"Action: {name}"
        out.append((s.subset, _score(bench, s, reply)))
    return out


def test_h_score_weights_control_so_refusing_tools_cannot_win(
    bench: AgentH, samples: list[AgentHSample]
) -> None:
    h, parts = bench.task_score(_policy_scores(bench, samples, "oracle"))
    assert h == 100.0 and parts["H_react"] == parts["H_chat"] == 100.0
    h, parts = bench.task_score(_policy_scores(bench, samples, "never_call"))
    assert h == 50.0 and parts["no_hallucination_chat"] == 100.0 and parts["control_ok_react"] == 0.0
    h, parts = bench.task_score(_policy_scores(bench, samples, "always_call"))
    assert h == 50.0 and parts["action_hallucination_chat"] == pytest.approx(200 / 3)
    mixed = _policy_scores(bench, samples, "oracle")
    mixed = [
        (sub, Score(value=0.0, success=False, details={**s.details, "ok": False}))
        if sub == "control/chat"
        else (sub, s)
        for sub, s in mixed
    ]  # chat fails every control sample
    h, parts = bench.task_score(mixed)
    assert (parts["H_react"], parts["H_chat"], h) == (100.0, 50.0, 75.0)
    assert bench.subset_scores(mixed)["control/chat"] == 0.0


def test_deviation_note_carries_definition_and_hash(bench: AgentH, samples: list[AgentHSample]) -> None:
    (dev,) = bench.deviations()
    assert dev.task == "agent_h" and dev.what.startswith(DEVIATION_NOTE)
    assert samples_hash(samples) in dev.what and "H_F = 100" in dev.why


# -- end to end --------------------------------------------------------------------------------------
def test_replay_run_through_cli_writes_transcripts_and_parts(
    tmp_path: Path, samples: list[AgentHSample], capsys: pytest.CaptureFixture[str]
) -> None:
    good = []
    for s in samples[:12]:
        if s.case != "control":
            reply = (
                "Thought: I can answer.\nFinal Answer: yes" if s.format == "react" else "Sure, here you go."
            )
        else:
            reply = (
                f'Thought: search\nAction: {s.gold[0]}\nAction Input: {{"query": "q"}}\nResponse: made up'
                if s.format == "react"
                else json.dumps({"name": s.gold[0], "arguments": {"query": "q"}})
            )
        good.append({"task": "agent_h", "sample_id": s.id, "replies": [reply]})
    replay = tmp_path / "good.jsonl"
    replay.write_text("".join(json.dumps(x) + "\n" for x in good))
    assert (
        main(
            [
                "run",
                "--tasks",
                "agent_h",
                "--limit",
                "12",
                "--backend",
                "replay",
                "--replay-file",
                str(replay),
                "--output-dir",
                str(tmp_path / "runs"),
                "--run-id",
                "good",
                "--no-report",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert re.search(r"agent_h\s+hallucination\s+100\.00\s+12", out)
    assert re.search(r"H_react 100,.*format_hallucination_chat 0", out.replace("\n", " ")), (
        "the H-score's parts"
    )
    store = RunStore(tmp_path / "runs/good")
    eps = list(store.episodes("agent_h"))
    assert len(eps) == 12 and all(e.status.value == "completed" and len(e.steps) == 1 for e in eps)
    react_control = next(e for e in eps if e.subset == "control/react")
    assert not react_control.steps[0].reply.endswith("made up")  # cut at the stop string
    assert react_control.prompt[0].role == "system"
    result = store.read_results().tasks["agent_h"]
    assert (
        result.score == 100.0 and result.extra["H_react"] == 100.0 and set(result.subsets.values()) == {100.0}
    )
    assert any(d.what.startswith(DEVIATION_NOTE) for d in store.read_manifest().deviations)

    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(
            {"task": "agent_h", "sample_id": "*", "replies": ['{"name": "made_up_tool", "arguments": {}}']}
        )
        + "\n"
    )
    assert (
        main(
            [
                "run",
                "--tasks",
                "agent_h",
                "--limit",
                "12",
                "--backend",
                "replay",
                "--replay-file",
                str(bad),
                "--output-dir",
                str(tmp_path / "runs"),
                "--run-id",
                "bad",
                "--no-report",
            ]
        )
        == 0
    )
    bad_result = RunStore(tmp_path / "runs/bad").read_results().tasks["agent_h"]
    assert bad_result.score == 0.0 and bad_result.extra["action_hallucination_chat"] == 100.0

    assert main(["rescore", str(tmp_path / "runs/good")]) == 0
    assert "0 scores changed" in capsys.readouterr().out


@pytest.mark.slow
def test_embedded_model_runs_five_samples(tmp_path: Path, embedded_dir: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentflan_eval",
            "run",
            "--tasks",
            "agent_h",
            "--limit",
            "5",
            "--max-new-tokens",
            "48",
            "--output-dir",
            "runs",
            "--no-report",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
        check=False,
        env={**os.environ, "AGENTFLAN_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    recs = [json.loads(x) for x in (run_dir / "episodes/agent_h.jsonl").read_text().splitlines()]
    assert len(recs) == 5 and {r["subset"] for r in recs} >= {
        "none_fits/react",
        "control/chat",
        "control/react",
    }
    for r in recs:
        assert r["status"] == "completed" and len(r["steps"]) == 1 and r["completion_tokens"] > 0
        assert {"format_hallucination", "action_hallucination", "ok"} <= set(r["score"]["details"])
    result = json.loads((run_dir / "results.json").read_text())["tasks"]["agent_h"]
    assert 0.0 <= result["score"] <= 100.0 and {"H_react", "H_chat"} <= set(result["extra"])
    assert "agent_h" in proc.stdout and "hallucination" in proc.stdout
