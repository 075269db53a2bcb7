"""RCI's instructions as browser actions on the task page (Playwright in place of Selenium).

Followed: THUDM/AgentTuning @ e33a45d7, ``eval_heldout/miniwob++/llm_agent.py`` ``convert_to_miniwob_action``
(l.589-629) and ``computergym/.../miniwob_interface/action.py`` (``MiniWoBType``, ``MiniWoBElementClickXpath``,
``MiniWoBElementClickOption``, ``MiniWoBMoveXpath``, ``MiniWoBElementClickId``). What an instruction does:

- ``type TEXT``: the keys of TEXT (double quotes removed) go to the focused element.
- ``press KEY``: Enter, space, arrows or backspace as a key press.
- ``clickxpath XPATH``: the first matching element that is visible and enabled is clicked (a ``<button>``
  by element click, which falls back to Enter on it when another element intercepts the click; an
  ``<option>`` by selecting its text in its ``<select>``; anything else by a mouse click at its centre).
  An invalid xpath or no clickable match does nothing.
- ``clickoption XPATH``: select that option's text in its parent ``<select>``.
- ``movemouse XPATH``: hover each match; none hoverable is an error.
An error while acting raises ``ActionFailed``: the episode ends there with reward -1, as computergym's
``step`` leaves its defaults (reward -1, done) when the instance thread raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_KEYS = {
    "enter": "Enter",
    "space": " ",
    "arrowleft": "ArrowLeft",
    "arrowright": "ArrowRight",
    "backspace": "Backspace",
    "arrowup": "ArrowUp",
    "arrowdown": "ArrowDown",
}
CLICKABLE_MS = 100  # WebDriverWait(driver, 0.1).until(element_to_be_clickable)


class InvalidInstruction(ValueError):
    """``convert_to_miniwob_action``'s ValueError: the episode fails with reward 0."""


class ActionFailed(RuntimeError):
    """The browser raised while acting: the episode fails with reward -1."""


@dataclass(frozen=True)
class RciAction:
    kind: str  # type | key | clickid | clickxpath | clickoption | movemouse
    arg: str


def convert(instruction: str) -> RciAction:
    parts = instruction.split(" ")
    kind, rest = parts[0].lower(), " ".join(parts[1:])
    if kind == "type":
        return RciAction("type", rest.replace('"', ""))
    if kind == "press":
        key = parts[1].lower() if len(parts) > 1 else ""
        if key not in _KEYS:  # upstream ``raise NotImplemented`` (a TypeError that ends the whole run)
            raise InvalidInstruction(f"press: unsupported key {key!r}")
        return RciAction("key", _KEYS[key])
    if kind in ("clickid", "movemouse", "clickxpath", "clickoption"):
        return RciAction(kind, rest)
    raise InvalidInstruction("Invalid instruction")


def perform(page: Any, action: RciAction) -> str:
    """Act on ``page``; returns what happened in a few words (for the transcript)."""
    from playwright.sync_api import Error

    try:
        match action.kind:
            case "type":
                _type(page, action.arg)
                return "typed"
            case "key":
                page.keyboard.press(action.arg)
                return "pressed"
            case "clickxpath":
                return _click_xpath(page, action.arg)
            case "clickoption":
                option = page.locator(f"xpath={action.arg}").first
                option.wait_for(state="attached", timeout=CLICKABLE_MS)
                _select(option.element_handle())
                return "selected"
            case "movemouse":
                return _hover(page, action.arg)
            case "clickid":
                page.locator(f"id={action.arg}").first.click(timeout=CLICKABLE_MS)
                return "clicked"
    except Error as e:
        raise ActionFailed(str(e).splitlines()[0]) from None
    raise InvalidInstruction(action.kind)


def _type(page: Any, text: str) -> None:
    """Selenium's send_keys: a newline is the Enter key."""
    for i, chunk in enumerate(text.split("\n")):
        if i:
            page.keyboard.press("Enter")
        if chunk:
            page.keyboard.type(chunk)


def _select(option: Any) -> None:
    """Selenium's ``Select(parent).select_by_visible_text(option.text)``: ChromeDriver clicks the option, so the
    page's body click listener stamps ``data-tampered`` on the ``<select>``, which the next HTML shows; an
    option already selected is left alone (no click)."""
    if option.evaluate("e => e.selected"):
        return
    select = option.evaluate_handle("e => e.parentElement").as_element()
    select.select_option(label=option.inner_text(), timeout=CLICKABLE_MS)
    select.dispatch_event("click")


def _handles(page: Any, xpath: str) -> list[Any]:
    from playwright.sync_api import Error

    try:
        return list(page.query_selector_all(f"xpath={xpath}"))
    except Error:
        return []


def _click_xpath(page: Any, xpath: str) -> str:
    from playwright.sync_api import Error

    handles = _handles(page, xpath)
    if not handles:
        return "invalid xpath"
    for h in handles:
        try:
            if not (h.is_visible() and h.is_enabled()):
                continue
            tag = h.evaluate("e => e.tagName.toLowerCase()")
            if tag == "button":
                h.click(timeout=CLICKABLE_MS * 10)
            elif tag == "option":
                _select(h)
            else:
                h.scroll_into_view_if_needed()
                box = h.bounding_box()
                if box is None:
                    continue
                page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            return "clicked"
        except Error as e:
            if "intercept" in str(e):
                h.press("Enter")
                return "pressed Enter on it (click intercepted)"
    return "click noninteractable element"


def _hover(page: Any, xpath: str) -> str:
    from playwright.sync_api import Error

    done = False
    for h in _handles(page, xpath):
        try:
            h.hover(timeout=CLICKABLE_MS * 10)
            done = True
        except Error:
            pass
    if not done:
        raise ActionFailed("Click noninteractable element")
    return "hovered"
