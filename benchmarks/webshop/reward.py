"""WebShop's reward for a purchase (Yao et al. 2022, section 3.1), as AgentBench.old's WebShop computes it.

    r = r_type * (|U_att ∩ Y_att| + |U_opt ∩ Y_opt| + 1[price <= u_price]) / (|U_att| + |U_opt| + 1)

U are the goal's attributes and options, Y the purchased product's. Followed: ``get_reward``,
``get_type_reward``, ``get_attribute_reward`` and ``get_option_reward`` in
``web_agent_site/engine/goal.py`` and ``normalize_color`` in ``engine/normalize.py`` of AgentTuning's
frozen copy (THUDM/AgentTuning e33a45d, ``AgentBench.old/src/tasks/webshop/``; the same code as
princeton-nlp/WebShop 64fa2a5 bar the spaCy model name). Its rules, each kept here:

- Fuzzy matching is thefuzz's ``token_set_ratio`` (lower-cased, punctuation replaced by blanks, an
  integer score), a match when the score is above 85.
- A goal attribute counts when it matches one of the product's attributes, or else appears verbatim
  (as written in the goal) in the lower-cased title, bullet points or description.
- Options, chosen and wanted, are first reduced to the first word of WebShop's colour list (in its
  order) that they contain; a goal option counts when some chosen option matches it.
- r_type is 1 when the products share their search query, two parts of the category path, or more
  than a fifth of the goal title's nouns; 0.5 when none of these holds; 0.1 when under a tenth of the
  nouns match; 0 when none does. The nouns are lists: the overlap is counted on distinct words, the
  goal title's nouns with their repeats.

Nouns come from TextBlob's Pattern tagger: WebShop used spaCy's ``en_core_web_lg``, which no package
registry ships (recorded as a deviation by the benchmark).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

from pydantic import BaseModel

from agentflan_eval.benchmarks.webshop.catalogue import Goal, Product

FUZZY_THRESHOLD = 85  # goal.py: `score > 85`
# normalize.py COLOR_SET, in its order: the first entry contained in an option names its colour
COLOR_SET = [
    "alabaster",
    "apricot",
    "aqua",
    "ash",
    "asphalt",
    "azure",
    "banana",
    "beige",
    "black",
    "blue",
    "blush",
    "bordeaux",
    "bronze",
    "brown",
    "burgundy",
    "camel",
    "camo",
    "caramel",
    "champagne",
    "charcoal",
    "cheetah",
    "chestnut",
    "chocolate",
    "christmas",
    "coffee",
    "cognac",
    "copper",
    "coral",
    "cranberry",
    "cream",
    "crystal",
    "dark",
    "denim",
    "eggplant",
    "elephant",
    "espresso",
    "fuchsia",
    "gold",
    "granite",
    "grape",
    "graphite",
    "grass",
    "gray",
    "green",
    "grey",
    "heather",
    "indigo",
    "ivory",
    "ivy",
    "khaki",
    "lavender",
    "lemon",
    "leopard",
    "light",
    "lilac",
    "lime",
    "magenta",
    "maroon",
    "mauve",
    "merlot",
    "midnight",
    "mint",
    "mocha",
    "multicolor",
    "mushroom",
    "mustard",
    "natural",
    "navy",
    "nude",
    "olive",
    "orange",
    "peach",
    "pewter",
    "pink",
    "plum",
    "purple",
    "rainbow",
    "red",
    "rose",
    "royal",
    "rust",
    "sand",
    "sapphire",
    "seashell",
    "silver",
    "skull",
    "slate",
    "steel",
    "stone",
    "stonewash",
    "sunflower",
    "tan",
    "taupe",
    "teal",
    "tiger",
    "turquoise",
    "violet",
    "walnut",
    "wheat",
    "white",
    "wine",
    "yellow",
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


def normalize_color(option: str | tuple[str, str]) -> str:
    """The first colour of COLOR_SET found in the option, else the option's text.

    A goal's options may be a dict in WebShop's data; it then compares the ``(name, value)`` pairs,
    where ``in`` tests the two strings for equality and the scorer reads the pair as ``str(pair)``.
    """
    for colour in COLOR_SET:
        if colour in option:
            return colour
    return option if isinstance(option, str) else str(option)


def fuzzy_match(a: str, b: str) -> bool:
    """thefuzz's token_set_ratio above WebShop's threshold."""
    from thefuzz import fuzz

    return fuzz.token_set_ratio(a, b) > FUZZY_THRESHOLD


@lru_cache(maxsize=1)
def _tagger():
    from textblob.en.taggers import PatternTagger

    return PatternTagger()


@lru_cache(maxsize=4096)
def nouns(text: str) -> tuple[str, ...]:
    """Lower-cased nouns and proper nouns of a product title, in order, repeats kept."""
    return tuple(w.lower() for w, tag in _tagger().tag(text) if tag.startswith("NN"))


def type_reward(product: Product, goal: Goal) -> tuple[float, float, bool, bool]:
    """(r_type, title score, query match, category match)."""
    query_match = product.query == goal.query
    cats_p = {c.strip() for c in product.product_category.split("›")}
    cats_g = {c.strip() for c in goal.product_category.split("›")}
    category_match = len(cats_p & cats_g) >= 2
    wanted = nouns(goal.name)
    shared = set(nouns(product.title)) & set(wanted)
    title_score = len(shared) / len(wanted) if wanted else 0.2
    r_type = 1.0 if (query_match or category_match or title_score > 0.2) else 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type, title_score, query_match, category_match


def attribute_matches(product: Product, goal_attributes: Iterable[str]) -> int:
    texts = (
        product.title.lower(),
        " ".join(product.bullet_points).lower(),
        product.description.lower(),
    )
    return sum(
        1
        for attr in goal_attributes
        if any(fuzzy_match(p, attr) for p in product.attributes) or any(attr in t for t in texts)
    )


def goal_option_items(goal_options: list[str] | dict[str, str]) -> list[str | tuple[str, str]]:
    """What WebShop iterates: the list itself, or a dict's ``(name, value)`` items."""
    return list(goal_options.items()) if isinstance(goal_options, dict) else list(goal_options)


def option_matches(chosen: Iterable[str], goal_options: list[str] | dict[str, str]) -> int:
    chosen_norm = [normalize_color(o) for o in chosen]
    wanted = [normalize_color(g) for g in goal_option_items(goal_options)]
    return sum(1 for g in wanted if any(fuzzy_match(c, g) for c in chosen_norm))


def compute_reward(product: Product, goal: Goal, price: float, options: Mapping[str, str]) -> RewardInfo:
    r_type, title_score, query_match, category_match = type_reward(product, goal)
    n_att = attribute_matches(product, goal.attributes)
    n_opt = option_matches(options.values(), goal.goal_options)
    price_ok = price <= goal.price_upper  # every goal's ceiling is positive, so the price always counts
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
