"""WebArena's text observation: the accessibility tree with element ids, as its agents see it.

Written from WebArena's documented behaviour (``TextObervationProcessor`` with
``accessibility_tree`` and ``current_viewport_only``): every node of Chromium's full accessibility
tree (CDP ``Accessibility.getFullAXTree``) becomes a line ``[id] role 'name' prop: value ...``,
indented by depth; unnamed structural nodes are skipped (their children move up), nodes without a
DOM node or with under 60 % of their box inside the viewport are dropped, and a StaticText that
repeats one of the three lines above it is removed. The tab strip (``Tab 0 (current): title | ...``)
heads the tree. The boxes come from one ``DOMSnapshot.captureSnapshot`` instead of one call per node.
Element ids are the node's position in that snapshot (document order) rather than Chromium's node
id, which depends on the order the renderer happened to create nodes in: the same page always gets
the same ids, so recorded runs replay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

IGNORED_PROPERTIES = ("focusable", "editable", "readonly", "level", "settable", "multiline", "invalid")
_SKIP_IF_EMPTY = {
    "generic",
    "img",
    "list",
    "strong",
    "paragraph",
    "banner",
    "navigation",
    "Section",
    "LabelText",
    "Legend",
    "listitem",
}
IN_VIEWPORT_RATIO = 0.6
_STATIC = re.compile(r"\[\d+\] StaticText (.+)", re.DOTALL)

Box = tuple[float, float, float, float]  # x, y, width, height in viewport pixels


class NodeInfo(BaseModel):
    """What an action needs about an element the agent can name."""

    model_config = ConfigDict(extra="forbid")

    backend_id: int
    text: str
    box: Box | None = None  # where it was when observed (actions click its centre, as WebArena does)


class PageView(BaseModel):
    """One observation: the tab strip plus tree, the URL, and the ids the agent may act on."""

    model_config = ConfigDict(extra="forbid")

    text: str
    url: str
    tabs: list[str]
    nodes: dict[str, NodeInfo]


def tab_strip(titles: Sequence[str], current: int) -> str:
    return " | ".join(
        f"Tab {i} (current): {t}" if i == current else f"Tab {i}: {t}" for i, t in enumerate(titles)
    )


def read_snapshot(
    snapshot: Mapping[str, Any], scroll_x: float = 0.0, scroll_y: float = 0.0
) -> tuple[dict[int, Box], dict[int, int]]:
    """From a DOMSnapshot of the main document: backend node id -> box in viewport coordinates,
    and backend node id -> position in document order."""
    doc = snapshot["documents"][0]
    backend = doc["nodes"]["backendNodeId"]
    layout = doc["layout"]
    boxes: dict[int, Box] = {}
    for idx, (x, y, w, h) in zip(layout["nodeIndex"], layout["bounds"]):
        boxes.setdefault(backend[idx], (x - scroll_x, y - scroll_y, w, h))
    return boxes, {b: i for i, b in enumerate(backend)}


def in_viewport_ratio(box: Box, width: float, height: float) -> float:
    x, y, w, h = box
    overlap = max(0.0, min(x + w, width) - max(x, 0.0)) * max(0.0, min(y + h, height) - max(y, 0.0))
    return overlap / (w * h)


def _visible(node: Mapping[str, Any], boxes: Mapping[int, Box], viewport: tuple[float, float] | None) -> bool:
    if node.get("role", {}).get("value") == "RootWebArea":
        return True
    bid = node.get("backendDOMNodeId")
    if bid is None or bid not in boxes:
        return False
    box = boxes[bid]
    if box[2] == 0 or box[3] == 0:
        return False
    return viewport is None or in_viewport_ratio(box, *viewport) >= IN_VIEWPORT_RATIO


def _line(node: Mapping[str, Any], obs_id: str) -> str | None:
    """The node's line, or None when WebArena would not show it (its children are still shown)."""
    try:
        role, name = node["role"]["value"], node["name"]["value"]
    except KeyError:
        return None
    props = []
    for p in node.get("properties", []):
        if p.get("name") in IGNORED_PROPERTIES or "value" not in p.get("value", {}):
            continue
        props.append(f"{p['name']}: {p['value']['value']}")
    line = f"[{obs_id}] {role} {name!r}" + (" " + " ".join(props) if props else "")
    if not str(name).strip() and ((not props and role in _SKIP_IF_EMPTY) or role == "listitem"):
        return None
    return line


def render_tree(
    ax_nodes: Sequence[Mapping[str, Any]],
    boxes: Mapping[int, Box],
    viewport: tuple[float, float] | None,
    order: Mapping[int, int] | None = None,
) -> tuple[str, dict[str, NodeInfo]]:
    """The tree text and the id -> element map; ``viewport=None`` keeps nodes outside the viewport.
    ``order`` (backend node id -> document position) gives the ids; without it, Chromium's node ids."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for n in ax_nodes:
        by_id.setdefault(n["nodeId"], n)  # a few nodes are repeated
    if not by_id:
        return "", {}
    root = next(iter(by_id))
    lines: list[str] = []
    infos: dict[str, NodeInfo] = {}
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        nid, depth = stack.pop()
        node = by_id[nid]
        bid: int | None = node.get("backendDOMNodeId")
        shown = str(order[bid]) if order is not None and bid is not None and bid in order else nid
        line = _line(node, shown) if _visible(node, boxes, viewport) else None
        if line is not None:
            lines.append("\t" * depth + line)
            if bid is not None:
                infos[shown] = NodeInfo(backend_id=bid, text=line, box=boxes.get(bid))
        child_depth = depth + 1 if line is not None else depth
        stack.extend((c, child_depth) for c in reversed(node.get("childIds", [])) if c in by_id)
    return _drop_repeated_static_text(lines), infos


def _drop_repeated_static_text(lines: list[str]) -> str:
    kept: list[str] = []
    for line in lines:
        if "statictext" in line.lower():
            m = _STATIC.search(line)
            text = m.group(1)[1:-1] if m else ""
            if not text or any(text in prev for prev in kept[-3:]):
                continue
        kept.append(line)
    return "\n".join(kept)
