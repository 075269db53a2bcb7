"""Headless Chromium through Playwright's sync API, and one browser session per episode.

Playwright's own browser download does not work offline, so the system Chromium (Debian's
``chromium``, or ``$AGENTFLAN_CHROMIUM``) is launched by path. Networking is limited to loopback:
every request goes through a proxy address on 127.0.0.1 where nothing listens, and only loopback
and the hosts a task names (WebArena's sites) bypass it. One browser process serves all open
episodes (each gets its own context, so no cookies or tabs leak between them); it is closed as
soon as the last session using it closes, so no browser outlives the run or a test.

What a model can reach: ``goto`` takes only http(s) URLs (never ``file:``, ``chrome:``...), and a session
given ``allowed_origins`` (the task's own server, WebArena's sites) refuses a navigation anywhere else,
whether typed or clicked, so no other service on the host's loopback is reachable. Run as root, Chromium
runs as an unprivileged user of its own (``BROWSER_UID``), and reads no file only root may read.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agentflan_eval.benchmarks.common.browser.actions import BrowserAction
from agentflan_eval.benchmarks.common.browser.observation import (
    PageView,
    read_snapshot,
    render_tree,
    tab_strip,
)

log = logging.getLogger(__name__)

CHROMIUM_ENV = "AGENTFLAN_CHROMIUM"
VIEWPORT = {"width": 1280, "height": 720}  # WebArena's default viewport
TIMEOUT_MS = 15_000
_DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: connections are refused
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
BROWSER_UID = (1 << 30) - 2  # run as root: Chromium's own unprivileged user (no passwd entry needed)
# Playwright starts this as root: it gives the profile directory Playwright made to Chromium's user, then
# runs Chromium as that user, with no capability left.
_UNPRIVILEGED = """#!/bin/sh
for a in "$@"; do case "$a" in --user-data-dir=*) chown -R {uid}:{uid} "${{a#--user-data-dir=}}";; esac; done
export HOME={home}
exec setpriv --reuid={uid} --regid={uid} --clear-groups --inh-caps=-all --bounding-set=-all -- {chromium} "$@"
"""
# jQuery animations (MiniWoB++'s widgets, many real sites) move elements for a few hundred ms after a
# click; the next observation waits for them so that the boxes it records are where things end up.
_QUIET_JS = "() => !window.jQuery || !window.jQuery.timers || window.jQuery.timers.length === 0"
_KEYS = {
    "ctrl": "Control",
    "control": "Control",
    "cmd": "Control",
    "meta": "Control",
    "command": "Control",
    "alt": "Alt",
    "option": "Alt",
    "shift": "Shift",
    "enter": "Enter",
    "return": "Enter",
    "esc": "Escape",
    "escape": "Escape",
    "tab": "Tab",
    "space": "Space",
    "backspace": "Backspace",
    "delete": "Delete",
    "del": "Delete",
    "up": "ArrowUp",
    "down": "ArrowDown",
    "left": "ArrowLeft",
    "right": "ArrowRight",
    "pageup": "PageUp",
    "pagedown": "PageDown",
    "home": "Home",
    "end": "End",
}


def find_chromium() -> str | None:
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return env if os.path.exists(env) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_unavailable() -> str | None:
    """Why no browser can run here (missing playwright or Chromium), or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs playwright: pip install 'agentflan-eval[heldout]'"
    if find_chromium() is None:
        return f"needs Chromium: apt-get install chromium (or set ${CHROMIUM_ENV} to a Chrome binary)"
    return None


class _Runtime:
    """The process's one Playwright driver and its browsers, counted by the sessions using them."""

    def __init__(self) -> None:
        self.playwright: Any = None
        self.browsers: dict[tuple[str, ...], Any] = {}
        self.refs: dict[tuple[str, ...], int] = {}

    def acquire(self, allowed_hosts: Iterable[str]) -> tuple[tuple[str, ...], Any]:
        key = tuple(sorted({h for h in allowed_hosts if h} - set(_LOOPBACK)))
        browser = self.browsers.get(key)
        if browser is None or not browser.is_connected():
            browser = self._launch(key)
            self.browsers[key] = browser
        self.refs[key] = self.refs.get(key, 0) + 1
        return key, browser

    def release(self, key: tuple[str, ...]) -> None:
        self.refs[key] = self.refs.get(key, 1) - 1
        if self.refs[key] > 0:
            return
        browser = self.browsers.pop(key, None)
        self.refs.pop(key, None)
        try:
            if browser is not None:
                browser.close()
        finally:
            if not self.browsers and self.playwright is not None:
                self.playwright.stop()  # ends the driver process, and any browser it still has
                self.playwright = None

    def _launch(self, allowed: tuple[str, ...]) -> Any:
        from playwright.sync_api import sync_playwright

        path = find_chromium()
        if path is None:
            raise RuntimeError(browser_unavailable() or "Chromium not found")
        if self.playwright is None:
            self.playwright = sync_playwright().start()
        bypass = ",".join((*_LOOPBACK, *allowed))
        log.info(
            "launching %s (network: loopback%s)", path, f" + {', '.join(allowed)}" if allowed else " only"
        )
        return self.playwright.chromium.launch(
            executable_path=_unprivileged(path) if os.geteuid() == 0 else path,
            headless=True,
            proxy={"server": _DEAD_PROXY, "bypass": bypass},
            args=[
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )


_RUNTIME = _Runtime()


@cache
def _unprivileged(chromium: str) -> str:
    """A launcher script that runs ``chromium`` as ``BROWSER_UID`` (made once per process, removed at exit)."""
    home = tempfile.mkdtemp(prefix="agentflan-chromium-home-")
    os.chown(home, BROWSER_UID, BROWSER_UID)
    launcher = Path(tempfile.mkdtemp(prefix="agentflan-chromium-")) / "chromium"
    launcher.write_text(_UNPRIVILEGED.format(uid=BROWSER_UID, home=home, chromium=chromium))
    launcher.chmod(stat.S_IRWXU)
    for d in (home, launcher.parent):
        atexit.register(shutil.rmtree, d, ignore_errors=True)
    return str(launcher)


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL, the port spelled out (``http://a`` -> ``http://a:80``)."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    except ValueError:  # a port out of range
        port = -1
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def browser_processes_open() -> int:
    """How many holders a browser has now (sessions and ``hold`` blocks; for leak checks)."""
    return sum(_RUNTIME.refs.values())


@contextlib.contextmanager
def hold(allowed_hosts: Iterable[str] = ()) -> Iterator[None]:
    """Keep the browser running across the episodes inside the block (e.g. a test module)."""
    key, _ = _RUNTIME.acquire(allowed_hosts)
    try:
        yield
    finally:
        _RUNTIME.release(key)


class BrowserSession:
    """One episode's browser context: its tabs, the current tab, and the last observation."""

    def __init__(
        self,
        allowed_hosts: Iterable[str] = (),
        storage_state: dict[str, Any] | str | None = None,
        viewport_only: bool = True,
        settle_s: float = 0.0,
        allowed_origins: Iterable[str] | None = None,
    ):
        """``allowed_origins``: the only places a page may be navigated to (None: any loopback or allowed
        host, for tests); subresources of those pages load as usual."""
        self.allowed_origins = None if allowed_origins is None else {origin(u) for u in allowed_origins}
        self._key, browser = _RUNTIME.acquire(allowed_hosts)
        try:
            self.context = browser.new_context(
                viewport=VIEWPORT, device_scale_factor=1, storage_state=storage_state
            )
            self.context.set_default_timeout(TIMEOUT_MS)
            if self.allowed_origins is not None:
                self.context.route("**/*", self._only_allowed)
            self.page = self.context.new_page()
        except Exception:
            _RUNTIME.release(self._key)
            raise
        self.viewport_only, self.settle_s = viewport_only, settle_s
        self.view: PageView | None = None
        self._cdp: dict[int, Any] = {}
        self._closed = False

    # -- observation ---------------------------------------------------------------------------
    def observe(self) -> PageView:
        page = self.page
        cdp = self._cdp_for(page)
        ax = cdp.send("Accessibility.getFullAXTree", {})["nodes"]
        snapshot = cdp.send("DOMSnapshot.captureSnapshot", {"computedStyles": []})
        sx, sy = page.evaluate("() => [window.scrollX, window.scrollY]")
        viewport = (VIEWPORT["width"], VIEWPORT["height"]) if self.viewport_only else None
        boxes, order = read_snapshot(snapshot, sx, sy)
        text, nodes = render_tree(ax, boxes, viewport, order)
        pages = self.context.pages
        titles = [self._title(p) for p in pages]
        strip = tab_strip(titles, pages.index(page) if page in pages else 0)
        self.view = PageView(text=f"{strip}\n\n{text}", url=page.url, tabs=titles, nodes=nodes)
        return self.view

    def _cdp_for(self, page: Any) -> Any:
        if id(page) not in self._cdp:
            self._cdp[id(page)] = self.context.new_cdp_session(page)
        return self._cdp[id(page)]

    @staticmethod
    def _title(page: Any) -> str:
        from playwright.sync_api import Error

        try:
            return page.title()
        except Error:
            return ""

    # -- actions -------------------------------------------------------------------------------
    def execute(self, action: BrowserAction) -> str | None:
        """Perform the action; returns a message for the agent when it could not be done."""
        from playwright.sync_api import Error

        try:
            msg = self._execute(action)
        except Error as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            msg = f'Attempt to perform "{action.type}" failed: {first}'
        self._settle()
        return msg

    def _execute(self, a: BrowserAction) -> str | None:
        page = self.page
        if a.type in ("click", "hover", "type"):
            center = self._center(a.element_id)
            if center is None:
                return (
                    f'Attempt to perfom "{a.type}" on element "[{a.element_id}]" but no matching element '
                    "found. Please check the observation more carefully."
                )
            if a.type == "hover":
                page.mouse.move(*center)
            else:
                page.mouse.click(*center)
            if a.type == "type":
                page.keyboard.type(a.text)
        elif a.type == "press":
            page.keyboard.press(normalise_keys(a.key_comb))
        elif a.type == "scroll":
            sign = "-" if a.direction == "up" else "+"
            page.evaluate(
                "() => { const s = document.scrollingElement || document.body;"
                f" s.scrollTop = s.scrollTop {sign} window.innerHeight; }}"
            )
        elif a.type == "new_tab":
            self.page = self.context.new_page()
        elif a.type == "tab_focus":
            pages = self.context.pages
            if not 0 <= a.tab < len(pages):
                return (
                    f"Attempt to focus tab {a.tab} failed: there are {len(pages)} tabs (0-{len(pages) - 1})."
                )
            self.page = pages[a.tab]
            self.page.bring_to_front()
        elif a.type == "close_tab":
            page.close()
            pages = self.context.pages
            self.page = pages[-1] if pages else self.context.new_page()
        elif a.type == "goto":
            return self._goto(a.url)
        elif a.type == "go_back":
            page.go_back()
        elif a.type == "go_forward":
            page.go_forward()
        return None

    def _only_allowed(self, route: Any) -> None:
        """Navigations (typed, clicked, in frames) to another origin are aborted; subresources load."""
        request = route.request
        if request.is_navigation_request() and not self.may_visit(request.url):
            route.abort("blockedbyclient")
        else:
            route.continue_()

    def may_visit(self, url: str) -> bool:
        if url == "about:blank":
            return True
        if urlsplit(url).scheme not in ("http", "https"):
            return False  # file:, chrome:, view-source:, javascript:, data:...
        return self.allowed_origins is None or origin(url) in self.allowed_origins

    def _goto(self, url: str) -> str | None:
        """``page.goto``; once more if a late error page from a failed navigation interrupted it."""
        from playwright.sync_api import Error

        if not self.may_visit(url):
            allowed = ", ".join(sorted(self.allowed_origins or ())) or "http(s) pages"
            return f'Attempt to perform "goto" failed: {url} is outside this task (allowed: {allowed})'
        try:
            self.page.goto(url)
        except Error as e:
            if "interrupted by another navigation" not in str(e):
                raise
            self.page.wait_for_load_state("load")
            self.page.goto(url)
        return None

    def _center(self, element_id: str) -> tuple[float, float] | None:
        node = self.view.nodes.get(element_id) if self.view else None
        if node is None or node.box is None:
            return None
        x, y, w, h = node.box
        return x + w / 2, y + h / 2

    def _settle(self) -> None:
        from playwright.sync_api import Error

        try:
            self.page.wait_for_load_state("load", timeout=5_000)
            self.page.wait_for_function(_QUIET_JS, timeout=3_000)
        except Error:
            log.debug("page still loading or animating after an action")
        if self.settle_s:
            time.sleep(self.settle_s)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.context.close()
        finally:
            _RUNTIME.release(self._key)


def normalise_keys(key_comb: str) -> str:
    """``Ctrl+v`` -> ``Control+v``: common names to Playwright's; Meta is Control off macOS, as upstream."""
    parts = [p.strip() for p in key_comb.split("+")] if key_comb.strip() != "+" else ["+"]
    return "+".join(_KEYS.get(p.lower(), p) if p else "+" for p in parts)
