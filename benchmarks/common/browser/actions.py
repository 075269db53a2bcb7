"""WebArena's id-based action space: parsing a CoT reply into a typed browser action, and back to text.

Follows WebArena's documented grammar (``browser_env/actions.py``, ``create_id_based_action``):
``click [id]``, ``type [id] [text] [press_enter_after=0|1]`` (Enter by default), ``hover [id]``,
``press [key_comb]``, ``scroll [up|down]``, ``new_tab``, ``tab_focus [i]``, ``close_tab``,
``goto [url]``, ``go_back``, ``go_forward``, ``stop [answer]`` (an empty answer is allowed).
The action is taken from the first ```...``` block after the answer phrase (anywhere, as upstream,
when the phrase is missing).
"""

from __future__ import annotations

import re
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from agentflan_eval.records import Action

ANSWER_PHRASE = "In summary, the next action I will perform is"
ActionType = Literal[
    "click",
    "type",
    "hover",
    "press",
    "scroll",
    "new_tab",
    "tab_focus",
    "close_tab",
    "goto",
    "go_back",
    "go_forward",
    "stop",
]
NAMES: tuple[ActionType, ...] = get_args(ActionType)
_TYPES: dict[str, ActionType] = {n: n for n in NAMES}
_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)
_PATTERNS: dict[str, re.Pattern[str]] = {
    "click": re.compile(r"click ?\[(\d+)\]"),
    "hover": re.compile(r"hover ?\[(\d+)\]"),
    "type": re.compile(r"type ?\[(\d+)\] ?\[(.+)\] ?\[(\d+)\]", re.DOTALL),
    "press": re.compile(r"press ?\[(.+)\]"),
    "scroll": re.compile(r"scroll ?\[?(up|down)\]?"),
    "goto": re.compile(r"goto ?\[(.+)\]"),
    "tab_focus": re.compile(r"tab_focus ?\[(\d+)\]"),
    "stop": re.compile(r"stop ?\[(.*)\]", re.DOTALL),
}


class ActionParseError(ValueError):
    pass


class BrowserAction(BaseModel):
    """One parsed action. ``text`` already ends with a newline when Enter is to be pressed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ActionType
    element_id: str = ""
    text: str = ""
    key_comb: str = ""
    direction: str = ""
    url: str = ""
    tab: int = 0
    answer: str = ""

    def describe(self, element: str = "") -> str:
        """WebArena's ``action2str``: the PREVIOUS ACTION line, naming the element it acted on."""
        where = f" where [{self.element_id}] is {element}" if element else ""
        match self.type:
            case "click" | "hover":
                return f"{self.type} [{self.element_id}]{where}"
            case "type":
                return f"type [{self.element_id}] [{self.text}]{where}"
            case "press":
                return f"press [{self.key_comb}]"
            case "scroll":
                return f"scroll [{self.direction}]"
            case "goto":
                return f"goto [{self.url}]"
            case "tab_focus":
                return f"tab_focus [{self.tab}]"
            case "stop":
                return f"stop [{self.answer}]"
        return self.type


def extract_action_text(reply: str) -> str:
    """The text inside the first ```...``` block after the answer phrase (else anywhere)."""
    cut = reply.find(ANSWER_PHRASE)
    m = _BLOCK.search(reply, max(cut, 0)) or _BLOCK.search(reply)
    if m is None:
        raise ActionParseError(f'no action in ``` ``` after "{ANSWER_PHRASE}"')
    return m.group(1).strip()


def parse_browser_action(action_str: str) -> BrowserAction:
    """``create_id_based_action``: one action string (without the backticks) to a typed action."""
    s = action_str.strip()
    head = (s.split("[")[0] if "[" in s else (s.split() or [""])[0]).strip()
    kind = _TYPES.get(head)
    if kind is None:
        raise ActionParseError(f"invalid action {s!r}")
    if kind == "type" and not s.endswith(("[0]", "[1]")):
        s += " [1]"  # Enter is pressed by default
    g = _arguments(kind, s)
    match kind:
        case "click" | "hover":
            return BrowserAction(type=kind, element_id=g[0])
        case "type":
            return BrowserAction(type="type", element_id=g[0], text=g[1] + ("\n" if g[2] == "1" else ""))
        case "press":
            return BrowserAction(type="press", key_comb=g[0])
        case "scroll":
            return BrowserAction(type="scroll", direction=g[0])
        case "goto":
            return BrowserAction(type="goto", url=g[0])
        case "tab_focus":
            return BrowserAction(type="tab_focus", tab=int(g[0]))
        case "stop":
            return BrowserAction(type="stop", answer=g[0])
    return BrowserAction(type=kind)


def _arguments(kind: ActionType, s: str) -> tuple[str, ...]:
    """The bracketed arguments of an action with a pattern; () for one without, ("",) for a bare stop."""
    pattern = _PATTERNS.get(kind)
    if pattern is None:
        return ()
    m = pattern.search(s)
    if m is None:
        if kind == "stop":
            return ("",)
        raise ActionParseError(f"invalid {kind} action {s!r}")
    return m.groups()


def parse_reply(reply: str) -> Action:
    """A model reply to the harness's Action record: ``argument`` keeps the action string."""
    try:
        text = extract_action_text(reply)
        act = parse_browser_action(text)
    except ActionParseError as e:
        return Action(name="invalid", argument=str(e), valid=False, raw=reply)
    return Action(name=act.type, argument=text, raw=reply)


def answer_of(steps_actions: list[Action]) -> str | None:
    """The answer of the first valid ``stop`` action, or None when the agent never stopped."""
    for a in steps_actions:
        if a.valid and a.name == "stop":
            return parse_browser_action(a.argument).answer
    return None
