"""WebShop's reward for a purchase (Yao et al. 2022, section 3.1), as AgentBench's WebShop computes it.

    r = r_type * (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[price <= u_price]) / (|U_att| + |U_opt| + 1)

U are the goal's attributes and options, Y the purchased product's. A goal attribute counts as
covered when it fuzzily matches (token-set ratio > 85) one of the product's attributes, or appears
verbatim in its title, bullet points or description; a goal option counts when a chosen option
matches it fuzzily (> 85) after both are reduced to a basic colour word where they name one.
r_type guards against the right attributes on the wrong kind of product: it is 1 when the products
share their search query, two levels of the category path, or more than a fifth of the goal title's
nouns; 0.5 when none of these holds; 0.1 when under a tenth of the nouns match; 0 when none does.
Nouns come from TextBlob's Pattern tagger (WebShop used spaCy's ``en_core_web_lg``, which cannot be
installed from a package registry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from pydantic import BaseModel

from agentflan_eval.benchmarks.webshop.catalogue import Goal, Product

FUZZY_THRESHOLD = 85
# Basic colour words: an option such as "dark navy blue" is compared as its first listed colour word.
COLOURS = [
    "black",
    "white",
    "grey",
    "gray",
    "silver",
    "gold",
    "beige",
    "ivory",
    "cream",
    "khaki",
    "tan",
    "brown",
    "coffee",
    "chocolate",
    "camel",
    "bronze",
    "copper",
    "red",
    "burgundy",
    "wine",
    "maroon",
    "pink",
    "rose",
    "coral",
    "peach",
    "orange",
    "yellow",
    "mustard",
    "green",
    "olive",
    "mint",
    "teal",
    "turquoise",
    "aqua",
    "blue",
    "navy",
    "denim",
    "indigo",
    "purple",
    "violet",
    "lavender",
    "lilac",
    "plum",
    "magenta",
    "fuchsia",
    "nude",
    "multicolor",
    "rainbow",
    "clear",
    "transparent",
    "natural",
    "charcoal",
]


class RewardInfo(BaseModel):
    reward: float
    r_type: float
    attribute_matches: int
    option_matches: int
    price_ok: bool
    n_attributes: int
    n_options: int
    title_score: float
    query_match: bool
    category_match: bool


def basic_colour(text: str) -> str:
    for colour in COLOURS:
        if colour in text:
            return colour
    return text


@lru_cache(maxsize=1)
def _tagger():
    from textblob.en.taggers import PatternTagger

    return PatternTagger()


@lru_cache(maxsize=4096)
def nouns(text: str) -> frozenset[str]:
    """Lower-cased nouns and proper nouns of a product title."""
    return frozenset(w.lower() for w, tag in _tagger().tag(text) if tag.startswith("NN"))


def _fuzzy(a: str, b: str) -> float:
    from rapidfuzz import fuzz

    return fuzz.token_set_ratio(a, b)


def type_reward(product: Product, goal: Goal) -> tuple[float, float, bool, bool]:
    """(r_type, title score, query match, category match)."""
    query_match = product.query == goal.query
    cats_p = {c.strip() for c in product.product_category.split("›")}
    cats_g = {c.strip() for c in goal.product_category.split("›")}
    category_match = len(cats_p & cats_g) >= 2
    wanted = nouns(goal.name)
    title_score = len(nouns(product.title) & wanted) / len(wanted) if wanted else 0.2
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type, title_score, query_match, category_match


def attribute_matches(product: Product, goal_attributes: Iterable[str]) -> int:
    text = {
        "title": product.title.lower(),
        "bullets": " ".join(product.bullet_points).lower(),
        "description": product.description.lower(),
    }
    n = 0
    for attr in goal_attributes:
        if any(_fuzzy(p, attr) > FUZZY_THRESHOLD for p in product.attributes) or any(
            attr in t for t in text.values()
        ):
            n += 1
    return n


def option_matches(chosen: Iterable[str], goal_options: Iterable[str]) -> int:
    chosen_norm = [basic_colour(o) for o in chosen]
    return sum(
        1 for g in goal_options if any(_fuzzy(c, basic_colour(g)) > FUZZY_THRESHOLD for c in chosen_norm)
    )


def compute_reward(product: Product, goal: Goal, price: float, options: Mapping[str, str]) -> RewardInfo:
    r_type, title_score, query_match, category_match = type_reward(product, goal)
    n_att = attribute_matches(product, goal.attributes)
    n_opt = option_matches(options.values(), goal.goal_options)
    price_ok = price <= goal.price_upper
    total = (n_att + n_opt + int(price_ok)) / (len(goal.attributes) + len(goal.goal_options) + 1)
    return RewardInfo(
        reward=total * r_type,
        r_type=r_type,
        attribute_matches=n_att,
        option_matches=n_opt,
        price_ok=price_ok,
        n_attributes=len(goal.attributes),
        n_options=len(goal.goal_options),
        title_score=title_score,
        query_match=query_match,
        category_match=category_match,
    )
