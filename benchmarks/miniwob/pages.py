"""The MiniWoB++ task pages, served on loopback, and what both protocols do with an open task page.

Two page sets: the PyPI package ``miniwob`` (the WebArena-style subset) and AgentTuning's own copy
(``eval_heldout/miniwob++/computergym/.../miniwob_interface/html``), whose tasks differ from PyPI's in
ways that change the score (click-checkboxes* all-or-nothing, fewer e-mails and posts, simple-algebra
addition only), so the AgentTuning protocol serves its own.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

EPISODE_MS = 1_000_000_000  # the pages' own timers (10 s to 25 min) would run out while a CPU model thinks
_SERVERS: dict[Path, Any] = {}

# computergym ``MiniWoBInstance.begin_task``: seed, data mode, ``core.startEpisodeReal()``; the timer is
# stretched (see EPISODE_MS) after the page's script has set its own. ``episode``: how many episodes the page
# has ended before (upstream reuses one page per task, so its k-th episode stamps ``data-wob_eps="ek"``).
START_JS = """({seed, ms, episode}) => {
  WOB_EPISODE_ID = episode; Math.seedrandom(seed); core.EPISODE_MAX_TIME = ms; core.setDataMode('train'); core.startEpisodeReal();
}"""
STATE_JS = (
    "() => ({done: WOB_DONE_GLOBAL, env_reward: WOB_REWARD_GLOBAL, raw_reward: WOB_RAW_REWARD_GLOBAL,"
    " reason: WOB_REWARD_REASON == null ? null : String(WOB_REWARD_REASON)})"
)


# Images (``<img>``, CSS ``content``/``background-image`` URLs) load after the task builds its elements, and an
# element sized by its image (social-media's icons) has no box until then, so ``core.getDOMInfo`` would skip
# it. Upstream read pages from file:// through Selenium's slower round trips, by when they had loaded; here
# the observation waits for them (at most ``IMAGES_MS``).
IMAGES_MS = 3000
IMAGES_JS = """async (ms) => {
  const urls = new Set();
  for (const el of document.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    for (const v of [style.content, style.backgroundImage]) {
      for (const m of (v || '').matchAll(/url\\(["']?([^"')]+)["']?\\)/g)) urls.add(m[1]);
    }
    if (el.tagName === 'IMG' && el.src) urls.add(el.src);
  }
  const load = (u) => new Promise((done) => { const i = new Image(); i.onload = i.onerror = done; i.src = u; });
  await Promise.race([Promise.all([...urls].map(load)), new Promise((r) => setTimeout(r, ms))]);
  await new Promise((r) => requestAnimationFrame(() => r()));
}"""


def images_loaded(page: Any) -> None:
    page.evaluate(IMAGES_JS, IMAGES_MS)


def pypi_root() -> Path:
    spec = importlib.util.find_spec("miniwob")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "html"


def base_url(root: Path) -> str:
    """The loopback server for ``root``'s pages, started once per process and root."""
    if root not in _SERVERS:
        from agentflan_eval.benchmarks.common.browser.server import StaticServer

        _SERVERS[root] = StaticServer(root)
    return str(_SERVERS[root].url)


def open_task(page: Any, url: str, task: str, seed: int, episode: int = 0) -> str:
    """Load ``task``, start a seeded episode, and return its utterance."""
    page.goto(f"{url}miniwob/{task}.html")
    page.wait_for_selector("#sync-task-cover")
    page.evaluate(START_JS, {"seed": seed, "ms": EPISODE_MS, "episode": episode})
    page.wait_for_function("() => WOB_TASK_READY === true")
    utterance = page.evaluate("() => core.getUtterance()")
    return utterance["utterance"] if isinstance(utterance, dict) else str(utterance)


def metadata(page: Any) -> dict[str, Any]:
    """computergym ``get_metadata``: done, the time-scaled ``env_reward``, ``raw_reward`` and the reason."""
    return dict(page.evaluate(STATE_JS))
