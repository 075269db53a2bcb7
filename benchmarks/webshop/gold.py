"""WebShop's gold solution: buy the goal's own product with the goal's options.

Every WebShop goal is written for one catalogue product (``Goal.asin``) and the options its annotator
picked, so buying that product with those options is the gold purchase (its reward is 1 unless a goal
attribute is found neither among the product's attributes nor in its text, as WebShop's reward reads
them). The agent reads the latest observation and its available actions, remembers the options it has
clicked, and answers in AgentBench's ``Thought: ... Action:`` format: search for the product's title,
page on until its ASIN is listed, open it, click the option value that best matches each goal option,
then buy.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from agentflan_eval.benchmarks.webshop.catalogue import Goal
from agentflan_eval.benchmarks.webshop.reward import FUZZY_THRESHOLD, goal_option_items, normalize_color
from agentflan_eval.records import Message

NAVIGATION = {"search", "back to search", "next >", "< prev", "description", "features", "reviews", "buy now"}


def _reply(thought: str, action: str) -> str:
    return f"Thought:\nI think I should {thought}.\n\nAction:\n{action}"


def _available(observation: str) -> tuple[bool, list[str]]:
    """(has_search_bar, clickables) from an observation's ``Available Actions:`` dict."""
    _, _, tail = observation.rpartition("Available Actions:\n")
    try:
        actions = ast.literal_eval(tail.strip())
    except (ValueError, SyntaxError):
        return False, []
    return bool(actions.get("has_search_bar")), [str(c) for c in actions.get("clickables", [])]


class WebShopGoldAgent:
    """Plays the gold purchase for one goal, one reply per call."""

    def __init__(self, goal: Goal):
        self.goal = goal
        self.chosen: set[str] = (
            set()
        )  # option values clicked on the product's page (a history window may hide them)

    def _query(self) -> str:
        return " ".join(self.goal.name.replace("[", " ").replace("]", " ").split()).lower()

    def _option_value(self, wanted: str | tuple[str, str], values: list[str]) -> str | None:
        """The listed option value that scores best against a goal option, if the reward would count it."""
        from thefuzz import fuzz

        target = normalize_color(wanted)
        scored = [(fuzz.token_set_ratio(normalize_color(v), target), v) for v in values]
        score, value = max(scored, default=(0, None))
        return value if score > FUZZY_THRESHOLD else None

    def __call__(self, messages: Sequence[Message]) -> str:
        search_bar, clickables = _available(messages[-1].content)
        asin = self.goal.asin.lower()
        if search_bar:
            return _reply("search for the product by its title", f"search[{self._query()}]")
        if asin in clickables:
            self.chosen.clear()  # a product page opens with no option chosen
            return _reply(f"open the product {self.goal.asin}", f"click[{self.goal.asin}]")
        if "buy now" in clickables:
            values = [c for c in clickables if c not in NAVIGATION]
            for wanted in goal_option_items(self.goal.goal_options):
                value = self._option_value(wanted, values)
                if value is not None and value not in self.chosen:
                    self.chosen.add(value)
                    return _reply(f"choose the option '{value}'", f"click[{value}]")
            return _reply("buy the product", "click[Buy Now]")
        if "next >" in clickables:
            return _reply("look at the next page of results", "click[Next >]")
        return _reply("search again", "click[Back to Search]")
