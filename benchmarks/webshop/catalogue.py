"""WebShop's product catalogue, human goals and BM25 product search, read from the official files.

Files (princeton-nlp/WebShop, ``setup.sh -d small``): ``items_shuffle_1000.json`` (the scraped products),
``items_ins_v2_1000.json`` (each product's attributes) and ``items_human_ins.json`` (the crowd-sourced
instructions per product). Products become typed ``Product`` records the way WebShop's loader reads them
(title, description, bullet points, price range, lower-cased options); goals are built from the human
instructions in catalogue order and shuffled with WebShop's fixed seed 233, so goal ``i`` is the
environment's session ``i``. The search index is BM25 over the same document text WebShop's Lucene
index holds (title, description, first bullet point, options), with Lucene's defaults k1=0.9, b=0.4.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

SEARCH_RETURN_N = 50  # WebShop returns at most 50 products per query
GOAL_SHUFFLE_SEED = 233  # WebShop shuffles its goal list with this seed
PRICE_STEPS = [10.0 * i for i in range(1, 100)]  # candidate price ceilings for the goals
NO_PRICE_LIMIT = 1_000_000.0


class Product(BaseModel):
    model_config = ConfigDict(frozen=True)

    asin: str
    title: str
    category: str = ""
    query: str = ""
    product_category: str = ""
    description: str = ""
    bullet_points: tuple[str, ...] = ("",)
    pricing: tuple[float, ...] = (100.0,)
    price_tag: str = "$100.0"
    options: dict[str, list[str]] = {}
    attributes: tuple[str, ...] = ("DUMMY_ATTR",)
    rating: str = "N.A."
    reviews: tuple[dict[str, Any], ...] = ()
    image: str = ""

    @property
    def price(self) -> float:
        """The price the reward compares with the goal's ceiling.

        WebShop draws a uniform price inside a two-price range with an unseeded generator; here the
        draw is seeded by the ASIN so every run (and every rescore) sees the same price.
        """
        if len(self.pricing) == 1:
            return self.pricing[0]
        return random.Random(self.asin).uniform(self.pricing[0], self.pricing[1])

    @property
    def search_text(self) -> str:
        opts = ", and ".join(f"{name}: {', '.join(values)}" for name, values in self.options.items())
        first_bullet = self.bullet_points[0] if self.bullet_points else ""
        return f"{self.title} {self.description} {first_bullet} {opts}".lower()


class Goal(BaseModel):
    """One shopping goal: what the instruction asks for and what the reward checks."""

    model_config = ConfigDict(extra="forbid")

    asin: str
    category: str
    query: str
    name: str
    product_category: str
    instruction_text: str
    attributes: list[str]
    price_upper: float
    goal_options: list[str] | dict[str, str]  # as the instruction gives them; the reward reads both forms


def _parse_pricing(raw: Any) -> tuple[tuple[float, ...], str]:
    """'$12.99' or '$10.99 - $15.99' → the one or two prices and WebShop's price tag."""
    if not raw:
        return (100.0,), "$100.0"
    prices = []
    for part in str(raw).split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        if digits and digits != ".":
            prices.append(float(digits))
    if not prices:
        return (100.0,), "$100.0"
    if len(prices) == 1:
        return (prices[0],), f"${prices[0]}"
    return (prices[0], prices[1]), f"${prices[0]} to ${prices[1]}"


def _parse_options(raw: Any) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for name, contents in (raw or {}).items():
        if contents is None:
            continue
        options[name.lower()] = [c["value"].strip().replace("/", " | ").lower() for c in contents]
    return options


def load_products(raw_products: Iterable[Mapping[str, Any]], attributes: Mapping[str, Any]) -> list[Product]:
    """Official product records → ``Product``; invalid or repeated ASINs are dropped as WebShop does."""
    out: list[Product] = []
    seen: set[str] = set()
    for p in raw_products:
        asin = str(p["asin"])
        if asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        pricing, tag = _parse_pricing(p.get("pricing"))
        small = p.get("small_description")
        bullets = tuple(small) if isinstance(small, list) else (small or "",)
        known = attributes.get(asin, {})
        attrs = known.get("attributes", ["DUMMY_ATTR"])  # an empty list stays empty, as in WebShop
        images = p.get("images") or [""]
        out.append(
            Product(
                asin=asin,
                title=p["name"],
                category=p.get("category", ""),
                query=str(p.get("query", "")).lower().strip(),
                product_category=p.get("product_category", ""),
                description=p.get("full_description") or "",
                bullet_points=bullets or ("",),
                pricing=pricing,
                price_tag=tag,
                options=_parse_options(p.get("customization_options")),
                attributes=tuple(attrs),
                rating=str(p.get("average_rating") or "N.A."),
                reviews=tuple(p.get("reviews") or ()),
                image=images[0] or "",
            )
        )
    return out


def human_goals(
    products: Iterable[Product], human_ins: Mapping[str, list[Mapping[str, Any]]], seed: int = 0
) -> list[Goal]:
    """Goals from the crowd-sourced instructions, in WebShop's (shuffled) session order.

    The price ceiling is the larger of two of the four price steps above the product's price, drawn
    from a generator seeded with ``seed`` (WebShop's own draw is unseeded, so its ceilings differ from
    run to run; the goal order does not, because the shuffle is seeded).
    """
    rng = random.Random(seed)
    goals: list[Goal] = []
    for product in products:
        for ins in human_ins.get(product.asin, []):
            attrs = list(ins.get("instruction_attributes") or [])
            if not attrs:
                continue
            steps = [p for p in PRICE_STEPS if p > product.price][:4]
            if len(steps) >= 2:
                upper = max(rng.sample(steps, 2))
                price_text = f", and price lower than {upper:.2f} dollars"
            else:
                upper, price_text = NO_PRICE_LIMIT, ""
            opts = ins.get("instruction_options") or []
            goals.append(
                Goal(
                    asin=product.asin,
                    category=product.category,
                    query=product.query,
                    name=product.title,
                    product_category=product.product_category,
                    instruction_text=str(ins["instruction"]).strip(".") + price_text,
                    attributes=attrs,
                    price_upper=upper,
                    goal_options=dict(opts) if isinstance(opts, dict) else list(opts),
                )
            )
    random.Random(GOAL_SHUFFLE_SEED).shuffle(goals)
    return goals


class ProductSearch:
    """BM25 (Lucene variant) over the products' search text; English stop words, Snowball stemming."""

    def __init__(self, products: Iterable[Product], k1: float = 0.9, b: float = 0.4):
        self.products = list(products)
        self.k1, self.b = k1, b

    @cached_property
    def _index(self):
        import bm25s
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(
            [p.search_text for p in self.products], stopwords="en", stemmer=stemmer, show_progress=False
        )
        retriever = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        retriever.index(tokens, show_progress=False)
        return retriever, stemmer

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> list[Product]:
        import bm25s

        retriever, stemmer = self._index
        tokens = bm25s.tokenize(
            [query.lower()], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
        )
        if not tokens[0]:
            return []
        k = min(k, len(self.products))
        docs, scores = retriever.retrieve(tokens, k=k, show_progress=False)
        return [self.products[int(d)] for d, s in zip(docs[0], scores[0]) if s > 0]
