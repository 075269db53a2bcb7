"""Mind2Web's page rendering for multiple choice (MindAct's format, which AgentBench's prompt uses).

A step's ``cleaned_html`` (elements carry ``backend_node_id``; text sits in ``<text>`` elements) is
pruned to the candidates and their neighbourhood: each candidate, its ancestors, its first 50
descendants down to six levels, and up to three siblings either side. Elements left without
attributes, text or more than one child are dissolved into their parent. The rendering keeps, per
element, a short "meta" of its descriptive attributes (role, type, aria label, title, value, ...)
and numbers the candidates ``id=0, 1, ...`` in document order. The question lists "A. None of the
above" and then each candidate (its first ten words) as B, C, ...
"""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Sequence

ID = "backend_node_id"
META_ATTRS = (
    "role",
    "aria_role",
    "type",
    "alt",
    "aria_description",
    "aria_label",
    "label",
    "title",
    "name",
    "text_value",
    "value",
    "placeholder",
    "input_checked",
    "input_value",
    "option_selected",
    "class",
)
_SKIP_VALUES = {"hidden", "none", "presentation", "null", "undefined"}


def _descendants(node, max_depth: int, depth: int = 0) -> list:
    """Pre-order descendants, ``max_depth + 1`` levels deep."""
    if depth > max_depth:
        return []
    out = []
    for child in node:
        out.append(child)
        out.extend(_descendants(child, max_depth, depth + 1))
    return out


def prune(
    root, candidate_ids: Sequence[str], max_depth: int = 5, max_children: int = 50, max_sibling: int = 3
):
    """A pruned copy of ``root`` that keeps the candidates' neighbourhoods (see the module doc)."""
    keep: set[str] = set()
    for cid in candidate_ids:
        found = root.xpath(f'//*[@{ID}="{cid}"]')
        if not found:
            continue
        node = found[0]
        keep.add(node.get(ID))
        keep.update(a.get(ID, "") for a in node.iterancestors())
        keep.update([d.get(ID, "") for d in _descendants(node, max_depth)][:max_children])
        parent = node.getparent()
        if parent is not None:
            sibs = [s for s in parent if s.tag != "text"]
            i = sibs.index(node)
            keep.update(s.get(ID, "") for s in sibs[max(0, i - max_sibling) : i + max_sibling + 1])
    cands = set(candidate_ids)
    tree = copy.deepcopy(root)
    for node in reversed(tree.xpath("//*")):
        owner = node.getparent() if node.tag == "text" else node
        owner_id = owner.get(ID, "") if owner is not None else ""
        parent = node.getparent()
        if owner_id not in keep and parent is not None:
            parent.remove(node)
            continue
        if owner_id not in cands or node.tag == "text":
            node.attrib.pop(ID, None)
        if (
            parent is not None
            and node.tag != "text"
            and not node.attrib
            and len(node) <= 1
            and not any(c.tag == "text" for c in node)
        ):
            for child in list(node):
                node.addprevious(child)
            parent.remove(node)
    return tree


def _meta(node, max_value_words: int, max_words: int) -> None:
    """Replace the element's attributes by ``id`` (its candidate number) and a short ``meta``."""
    values: list[str] = []
    for attr in META_ATTRS:
        raw = node.get(attr)
        if raw is None:
            continue
        value = raw.lower()
        if value in _SKIP_VALUES or value.startswith("http"):
            continue
        value = " ".join([w for w in value.split() if len(w) < 15][:max_value_words])
        if value and value not in values:
            values.append(value)
    uid = node.get(ID, "")
    node.attrib.clear()
    if uid:
        node.set("id", uid)
    meta = " ".join(" ".join(values).split()[:max_words])
    if meta:
        node.set("meta", meta)


def render(
    tree,
    id_mapping: dict[str, int],
    keep_html_brackets: bool = True,
    max_value_words: int = 5,
    max_words: int = 20,
) -> str:
    """The element's compact text form; candidates get numbers from ``id_mapping`` (filled in order)."""
    from lxml import etree

    tree = copy.deepcopy(tree)
    tree.tail = None
    for node in tree.iter():
        if not isinstance(node.tag, str):
            continue
        if node.tag == "text":
            node.text = " ".join((node.text or "").split()[:max_words])
            continue
        if ID in node.attrib:
            node.set(ID, str(id_mapping.setdefault(node.get(ID), len(id_mapping))))
        _meta(node, max_value_words, max_words)
    out = etree.tostring(tree, encoding="unicode").replace('"', " ")
    out = out.replace("meta= ", "").replace("id= ", "id=").replace(" >", ">")
    out = re.sub(r"<text>(.*?)</text>", r"\1", out)
    if not keep_html_brackets:
        out = out.replace("/>", "$/$>")
        out = re.sub(r"</(.+?)>", ")", out)
        out = re.sub(r"<(.+?)>", r"(\1", out).replace("$/$", ")")
    return re.sub(r"\s+", " ", html.unescape(out)).strip()


def multichoice(
    cleaned_html: str,
    task: str,
    previous_actions: Sequence[str],
    candidate_ids: Sequence[str],
    previous_k: int = 5,
) -> tuple[str, str, list[tuple[str, str]]]:
    """(page context, question, choices as (backend_node_id, text)) for one round of candidates."""
    from lxml import etree

    tree = prune(etree.fromstring(cleaned_html), candidate_ids)
    mapping: dict[str, int] = {}
    context = render(tree, mapping)
    choices = [(n.get(ID), " ".join(render(n, mapping).split()[:10])) for n in tree.xpath(f"//*[@{ID}]")]
    prev = "".join(f"{a}\n" for a in previous_actions[-previous_k:]) if previous_actions else "None\n"
    question = (
        "Based on the HTML webpage above, try to complete the following task:\n"
        f"Task: {task}\nPrevious actions:\n{prev}"
        "What should be the next action? Please select from the following choices "
        "(If the correct action is not in the page above, please select A. 'None of the above'):\n\n"
        "A. None of the above"
    )
    question += "".join(f"\n{chr(66 + i)}. {text}" for i, (_, text) in enumerate(choices))
    return context, question, choices


def operation_f1(pred: str, label: str) -> float:
    """F1 between the predicted and gold operation strings as word sets ("TYPE new york")."""
    p, g = set(pred.split()), set(label.split())
    if not p and not g:
        return 1.0
    tp = len(p & g)
    if tp == 0:
        return 0.0
    precision, recall = tp / len(p), tp / len(g)
    return 2 * precision * recall / (precision + recall)
