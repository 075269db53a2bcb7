"""The browser layer: action parsing, the accessibility-tree observation, execution and isolation,
on small pages served on loopback in the real (system) Chromium."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agentflan_eval.benchmarks.common.browser.actions import (
    ANSWER_PHRASE,
    ActionParseError,
    BrowserAction,
    extract_action_text,
    parse_browser_action,
    parse_reply,
)
from agentflan_eval.benchmarks.common.browser.driver import (
    BrowserSession,
    browser_processes_open,
    hold,
    normalise_keys,
)
from agentflan_eval.benchmarks.common.browser.observation import render_tree
from agentflan_eval.benchmarks.common.browser.server import StaticServer

PAGES = {
    "form.html": """<html><head><title>Form page</title></head><body>
<h1>Sign up</h1><input id="name" aria-label="Name"><button onclick="document.title='clicked ' +
document.getElementById('name').value">Go</button><a href="next.html?x=1">Next page</a>
<div style="height:3000px"></div><button id="far">Far away</button></body></html>""",
    "next.html": "<html><head><title>Next</title></head><body><p>Second page</p></body></html>",
}


def chromium_children() -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(os.getpid()).children(recursive=True)
        if "chrom" in p.name().lower() or "headless_shell" in p.name().lower()
    ]


def assert_no_browser_left() -> None:
    assert browser_processes_open() == 0
    assert not chromium_children(), "a Chromium process outlived the tests"


@contextlib.contextmanager
def serve_pages(root: Path, pages: dict[str, str]) -> Iterator[str]:
    """Serve ``pages`` on loopback with one browser held for the block; then check none is left."""
    for name, text in pages.items():
        (root / name).write_text(text, encoding="utf-8")
    server = StaticServer(root)
    try:
        with hold():
            yield server.url
    finally:
        server.close()
    assert_no_browser_left()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    with serve_pages(tmp_path_factory.mktemp("site"), PAGES) as url:
        yield url


@pytest.fixture
def session(site: str):
    s = BrowserSession()
    s.page.goto(site + "form.html")
    yield s
    s.close()


# -- parsing (no browser) ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("click [12]", BrowserAction(type="click", element_id="12")),
        ("hover [3]", BrowserAction(type="hover", element_id="3")),
        ("type [7] [hello world]", BrowserAction(type="type", element_id="7", text="hello world\n")),
        ("type [7] [hello] [0]", BrowserAction(type="type", element_id="7", text="hello")),
        ("press [Ctrl+v]", BrowserAction(type="press", key_comb="Ctrl+v")),
        ("scroll [down]", BrowserAction(type="scroll", direction="down")),
        ("scroll up", BrowserAction(type="scroll", direction="up")),
        ("goto [http://a.b/c]", BrowserAction(type="goto", url="http://a.b/c")),
        ("tab_focus [2]", BrowserAction(type="tab_focus", tab=2)),
        ("new_tab", BrowserAction(type="new_tab")),
        ("close_tab", BrowserAction(type="close_tab")),
        ("go_back", BrowserAction(type="go_back")),
        ("go_forward", BrowserAction(type="go_forward")),
        ("stop [$279.49]", BrowserAction(type="stop", answer="$279.49")),
        ("stop", BrowserAction(type="stop", answer="")),
    ],
)
def test_parse_actions(text: str, expected: BrowserAction) -> None:
    assert parse_browser_action(text) == expected


@pytest.mark.parametrize(
    "text", ["click [abc]", "click", "type [3]", "jump [4]", "tab_focus [x]", "", "scroll [left]"]
)
def test_malformed_actions_raise_parse_error(text: str) -> None:
    with pytest.raises(ActionParseError):
        parse_browser_action(text)


def test_reply_extraction_prefers_the_answer_phrase() -> None:
    reply = f"I could ```click [1]``` but {ANSWER_PHRASE} ```type [5] [cmu] [1]```"
    assert extract_action_text(reply) == "type [5] [cmu] [1]"
    assert extract_action_text("no phrase, but ```go_back```") == "go_back"
    bad = parse_reply(f"{ANSWER_PHRASE} click [3]")  # no backticks
    assert not bad.valid and bad.name == "invalid" and bad.raw.endswith("click [3]")
    good = parse_reply(f"{ANSWER_PHRASE} ```click [3]```")
    assert good.valid and (good.name, good.argument) == ("click", "click [3]")


def test_describe_names_the_element() -> None:
    act = BrowserAction(type="click", element_id="9")
    assert act.describe("[9] button 'Go'") == "click [9] where [9] is [9] button 'Go'"
    assert BrowserAction(type="scroll", direction="up").describe() == "scroll [up]"


def test_key_names() -> None:
    assert normalise_keys("ctrl+a") == "Control+a"
    assert normalise_keys("Meta+Shift+Enter") == "Control+Shift+Enter"
    assert normalise_keys("esc") == "Escape"


def test_render_tree_rules() -> None:
    """Empty generic nodes vanish (children move up), offscreen nodes go, repeated StaticText goes."""
    nodes = [
        {"nodeId": "1", "role": {"value": "RootWebArea"}, "name": {"value": "Page"}, "childIds": ["2", "5"]},
        {
            "nodeId": "2",
            "role": {"value": "generic"},
            "name": {"value": ""},
            "backendDOMNodeId": 2,
            "childIds": ["3", "4"],
        },
        {
            "nodeId": "3",
            "role": {"value": "button"},
            "name": {"value": "Buy now"},
            "backendDOMNodeId": 3,
            "properties": [
                {"name": "focusable", "value": {"value": True}},
                {"name": "focused", "value": {"value": True}},
            ],
            "childIds": ["6"],
        },
        {"nodeId": "6", "role": {"value": "StaticText"}, "name": {"value": "Buy now"}, "backendDOMNodeId": 6},
        {"nodeId": "4", "role": {"value": "link"}, "name": {"value": "Offscreen"}, "backendDOMNodeId": 4},
        {
            "nodeId": "5",
            "role": {"value": "StaticText"},
            "name": {"value": "Price $3"},
            "backendDOMNodeId": 5,
        },
    ]
    boxes = {
        2: (0, 0, 100, 100),
        3: (0, 0, 50, 20),
        6: (0, 0, 40, 10),
        4: (0, 900, 50, 20),
        5: (0, 30, 40, 10),
    }
    text, infos = render_tree(nodes, boxes, viewport=(1280, 720))
    assert text == "[1] RootWebArea 'Page'\n\t[3] button 'Buy now' focused: True\n\t[5] StaticText 'Price $3'"
    assert set(infos) == {"3", "5", "6"} and infos["3"].box == (0, 0, 50, 20)  # as upstream: before cleaning
    text_all, _ = render_tree(nodes, boxes, viewport=None)
    assert "[4] link 'Offscreen'" in text_all


# -- the real browser -------------------------------------------------------------------------
def _id(view_text: str, needle: str) -> str:
    line = next(ln for ln in view_text.splitlines() if needle in ln)
    return line.strip().split("]")[0].lstrip("[")


def test_observation_has_tabs_url_and_ids(session: BrowserSession, site: str) -> None:
    view = session.observe()
    assert view.text.startswith("Tab 0 (current): Form page\n\n")
    assert view.url == site + "form.html"
    assert "textbox 'Name'" in view.text and "button 'Go'" in view.text and "link 'Next page'" in view.text
    assert "Far away" not in view.text  # below the viewport, as WebArena's current_viewport_only


def test_type_click_scroll_and_navigation(session: BrowserSession, site: str) -> None:
    view = session.observe()
    assert (
        session.execute(BrowserAction(type="type", element_id=_id(view.text, "textbox 'Name'"), text="Ada"))
        is None
    )
    assert session.execute(BrowserAction(type="click", element_id=_id(view.text, "button 'Go'"))) is None
    assert session.page.title() == "clicked Ada"
    for _ in range(5):
        session.execute(BrowserAction(type="scroll", direction="down"))
    view = session.observe()
    assert "button 'Far away'" in view.text and "button 'Go'" not in view.text
    session.execute(BrowserAction(type="scroll", direction="up"))
    session.execute(BrowserAction(type="goto", url=site + "next.html"))
    assert "StaticText 'Second page'" in session.observe().text
    session.execute(BrowserAction(type="go_back"))
    assert session.page.url == site + "form.html"
    session.execute(BrowserAction(type="go_forward"))
    assert session.page.url == site + "next.html"


def test_tabs(session: BrowserSession, site: str) -> None:
    session.execute(BrowserAction(type="new_tab"))
    session.execute(BrowserAction(type="goto", url=site + "next.html"))
    assert session.observe().text.startswith("Tab 0: Form page | Tab 1 (current): Next\n")
    session.execute(BrowserAction(type="tab_focus", tab=0))
    assert session.observe().text.startswith("Tab 0 (current): Form page | Tab 1: Next")
    assert "there are 2 tabs" in session.execute(BrowserAction(type="tab_focus", tab=5))
    session.execute(BrowserAction(type="close_tab"))
    assert session.observe().tabs == ["Next"]


def test_failed_actions_are_messages_not_crashes(session: BrowserSession) -> None:
    session.observe()
    assert "no matching element" in session.execute(BrowserAction(type="click", element_id="999999"))
    assert "failed" in session.execute(BrowserAction(type="press", key_comb="NoSuchKey"))
    assert "failed" in session.execute(BrowserAction(type="goto", url="notaurl"))


def test_network_is_loopback_only(session: BrowserSession, site: str) -> None:
    """A non-loopback host is refused (it goes to a dead proxy), even when it resolves locally."""
    port = site.rstrip("/").rsplit(":", 1)[1]
    msg = session.execute(BrowserAction(type="goto", url=f"http://blocked.test:{port}/next.html"))
    assert msg is not None and "ERR_PROXY_CONNECTION_FAILED" in msg
    assert session.execute(BrowserAction(type="goto", url=f"http://localhost:{port}/next.html")) is None


def test_sessions_are_isolated(site: str) -> None:
    a, b = BrowserSession(), BrowserSession()
    try:
        a.page.goto(site + "form.html")
        a.page.evaluate("() => { document.cookie = 'who=a'; }")
        b.page.goto(site + "form.html")
        assert b.page.evaluate("() => document.cookie") == ""
    finally:
        a.close()
        b.close()


# -- issue 22: what a model's browser can reach --------------------------------------------------------
@pytest.fixture
def host_service() -> Iterator[tuple[str, list[str]]]:
    """Another service on the host's loopback (e.g. a database admin page): records every request."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b"<html><body>HOST SERVICE SECRET</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/", seen
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def task_session(site: str) -> Iterator[BrowserSession]:
    s = BrowserSession(allowed_origins=[site])
    s.page.goto(site + "form.html")
    yield s
    s.close()


@pytest.mark.parametrize(
    "url", ["file:///etc/shadow", "file:///etc/passwd", "chrome://version", "view-source:file:///etc/passwd"]
)
@pytest.mark.parametrize("restricted", [True, False], ids=["task-origin", "any-origin"])
def test_goto_never_opens_host_files(site: str, url: str, restricted: bool) -> None:
    """Probe: ``goto [file:///etc/shadow]`` and other non-web schemes are refused in every session."""
    s = BrowserSession(allowed_origins=[site] if restricted else None)
    try:
        s.page.goto(site + "form.html")
        msg = s.execute(BrowserAction(type="goto", url=url))
        text = s.observe().text
    finally:
        s.close()
    assert msg is not None and "outside this task" in msg
    assert "root:" not in text and "Sign up" in text  # still on the task's page


def test_goto_other_loopback_services_is_refused(
    task_session: BrowserSession, site: str, host_service: tuple[str, list[str]]
) -> None:
    """Probe: ``goto [http://127.0.0.1:PORT/]`` of another service on the host, typed or through a link."""
    url, seen = host_service
    port = url.rstrip("/").rsplit(":", 1)[1]
    for target in (url, f"http://localhost:{port}/", f"http://[::1]:{port}/", f"http://0.0.0.0:{port}/"):
        msg = task_session.execute(BrowserAction(type="goto", url=target))
        assert msg is not None and "outside this task" in msg
    task_session.page.evaluate(f"() => {{ document.body.innerHTML += '<a id=out href=\"{url}x\">Out</a>'; }}")
    task_session.page.click("#out")  # a link on the task's own page
    task_session.page.wait_for_timeout(300)
    assert "HOST SERVICE SECRET" not in task_session.observe().text
    assert seen == []  # measured at the service: not one request reached it
    assert task_session.execute(BrowserAction(type="goto", url=site + "next.html")) is None  # its own origin


def test_chromium_runs_unprivileged(task_session: BrowserSession) -> None:
    """Probe: run as root, the browser (and every process it starts) is not root."""
    procs = chromium_children()
    assert procs
    if os.geteuid() == 0:
        assert all(p.uids().real != 0 and p.uids().effective != 0 for p in procs)
