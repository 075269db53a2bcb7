"""The HTML report in a real headless Chromium (Debian's ``chromium``), networking limited to loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_report import replay_run

from agentflan_eval.report import make_report

CHROMIUM_ARGS = ["--no-sandbox", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def test_html_report_renders_offline_in_chromium(tmp_path: Path, data_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian package chromium is not installed (scripts/install.sh installs it)")
    assert replay_run(tmp_path, data_dir, "agent.jsonl", True, "--no-report") == 0
    run_dir = next((tmp_path / "runs").iterdir())
    report = make_report([run_dir], tmp_path / "report", n_resamples=100)

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith(("file:", "data:"))
                    else problems.append(f"network request: {r.url}")
                ),
            )
            page.goto(report.html.as_uri())
            page.wait_for_selector("#episode-view .episode-turn")
            tables = page.eval_on_selector_all("table.tbl", "ts => ts.map(t => t.dataset.table)")
            main_rows = page.locator("table[data-table=main] tbody tr").all_inner_texts()
            radar = page.eval_on_selector(
                "#chart-radar", "i => [i.complete, i.naturalWidth, i.naturalHeight]"
            )
            page.click("#episode-view details summary")  # unfold the prompt
            first = page.locator("#episode-view").inner_text()
            page.fill("#f-min", "50")
            count = page.locator("#episode-count").inner_text()
            page.locator("#episode-rows tr").last.click()
            opened = page.locator("#episode-view h3").inner_text()
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()

    assert problems == []
    assert tables == ["main", "normalised", "tasks"]
    assert any(r.startswith("agent.jsonl") and "66.7*" in r for r in main_rows)
    assert any(r.startswith("Agent-FLAN-7B") and "41.7" in r for r in main_rows)
    assert radar[0] is True and radar[1] > 500 and radar[2] > 300
    assert (
        "solving a question-answering exercise" in first and "Question: " in first
    )  # prompt rebuilt from the pool
    assert "Turn 1" in first and "Search[" in first and "observation" in first and "Finish[" in first
    assert count == "2 of 3 episodes"  # the score filter keeps the two correct answers
    assert opened.startswith("agent.jsonl / hotpotqa /")
    assert (tmp_path / "report.png").stat().st_size > 50_000
    shutil.copy(tmp_path / "report.png", Path("/tmp/agentflan_report_screenshot.png"))
