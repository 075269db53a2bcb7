"""model_zoo.baselines: the published tables as transcribed, and the --baselines selection flag."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentflan_eval.errors import UnknownNameError
from agentflan_eval.model_zoo import baselines as b

# The reference sheet of published numbers lives beside the data dir in shared/.
MAIN_HEADER = {
    "Held-In": "held_in",
    "HotpotQA": "hotpotqa",
    "SciWorld": "sciworld",
    "WebArena": "webarena",
    "T-Eval": "teval",
    "Agent-H": "agent_h",
    "Overall": "overall",
}
AT_ROWS = {
    "ALFWorld": "alfworld",
    "WebShop": "webshop",
    "Mind2Web": "mind2web",
    "KG": "kg",
    "OS": "os",
    "Database": "db",
    "Held-in Overall": "held_in",
    "SciWorld": "sciworld",
    "MiniWoB++": "miniwob",
    "WebArena": "webarena",
    "HotpotQA": "hotpotqa",
    "ReWOO": "rewoo",
    "DCG": "dcg",
    "Held-out Overall": "held_out",
    "MMLU": "mmlu",
    "HumanEval": "humaneval",
    "GSM8K": "gsm8k",
    "MT-Bench": "mt_bench",
}


@pytest.fixture(scope="module")
def reference_tables(data_dir: Path) -> list[list[list[str]]]:
    """Every Markdown table of shared/reference/published_scores.md as rows of cells."""
    path = data_dir.parent / "reference" / "published_scores.md"
    if not path.is_file():  # a checkout beside ../shared (CI) has it; a user's fresh clone does not
        pytest.skip(f"the published-scores reference sheet is not at {path}: nothing to compare with")
    tables, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r"-+", c) for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _num(cell: str) -> float | None:
    return None if cell in ("–", "-", "") else float(cell)


def test_agent_flan_main_table_matches_reference(reference_tables: list[list[list[str]]]) -> None:
    header, *rows = next(t for t in reference_tables if t[0][:2] == ["Model", "Held-In"])
    assert [r.model for r in b.AGENT_FLAN_MAIN] == [r[0] for r in rows]
    for cells, row in zip(rows, b.AGENT_FLAN_MAIN):
        for name, cell in zip(header[1:], cells[1:]):
            assert row.get(MAIN_HEADER[name]) == _num(cell), (row.model, name)
    assert b.AGENT_FLAN_MAIN[3].get("held_in") is None  # FireAct's Held-In is a gap, not 0


def test_agenttuning_table_matches_reference(reference_tables: list[list[list[str]]]) -> None:
    header, *rows = next(t for t in reference_tables if t[0][0] == "Task")
    assert [r.model for r in b.AGENTTUNING_TABLE] == header[1:]
    for cells in rows:
        for row, cell in zip(b.AGENTTUNING_TABLE, cells[1:]):
            assert row.get(AT_ROWS[cells[0]]) == _num(cell), (row.model, cells[0])


def test_every_table_names_its_source() -> None:
    assert set(b.SOURCES) == set(b.TABLES)
    assert "2403.12881" in b.SOURCES["agent-flan"].citation
    assert "THUDM/AgentTuning" in b.SOURCES["agenttuning"].location
    assert b.gpt4_reference().model == "GPT-4" and b.gpt4_reference().table == "agent-flan"


def test_selection_flag() -> None:
    assert b.select() == list(b.AGENT_FLAN_MAIN)  # default: the paper's table
    assert b.select("none") == []
    assert len(b.select("all")) == len(b.AGENT_FLAN_MAIN) + len(b.AGENTTUNING_TABLE)
    picked = b.select("agenttuning:agentlm-70b, gpt-4, agent-flan:gpt-4")
    assert [(r.table, r.model) for r in picked] == [("agenttuning", "AgentLM-70B"), ("agent-flan", "GPT-4")]
    with pytest.raises(UnknownNameError, match="Did you mean: agenttuning"):
        b.select("agentuning")
