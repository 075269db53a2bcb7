"""WebShop: catalogue, BM25 search, official-format pages, reward, replay episodes, HTTP client.

The official catalogue is not in shared/data, so the tests build a small one in its format
(``items_shuffle_1000.json`` records) for real ASINs of ``items_ins_v2_1000.json`` (real, from
shared/data), with ``items_human_ins.json``-style instructions taken from that file's instructions.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from gold_replay import replay_gold

from agentflan_eval.benchmarks.webshop.benchmark import WebShop, WebShopSample
from agentflan_eval.benchmarks.webshop.browser import SiteTransport, WebShopBrowser
from agentflan_eval.benchmarks.webshop.catalogue import Goal, ProductSearch, human_goals, load_products
from agentflan_eval.benchmarks.webshop.reward import compute_reward, type_reward
from agentflan_eval.benchmarks.webshop.site import WebShopSite
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import Action, EpisodeStatus
from agentflan_eval.rescore import rescore
from agentflan_eval.runner import run

BEAUTY = "Beauty & Personal Care"


def _product(asin, name, query, cats, price, desc, bullets, options=None, rating=None):
    return {
        "asin": asin,
        "name": name,
        "query": query,
        "category": "beauty",
        "product_category": cats,
        "pricing": price,
        "full_description": desc,
        "small_description": bullets,
        "images": [f"https://m.media-amazon.com/images/I/{asin}.jpg"],
        "customization_options": options,
        "average_rating": rating,
        "brand": "n/a",
        "seller_id": "x",
    }


def _opts(**named):
    return {
        name.replace("_", " "): [{"value": v, "image": None} for v in values]
        for name, values in named.items()
    }


PRODUCTS = [
    _product(
        "B07DJJXGB5",
        "Tea Tree Oil Body Scrub with Dead Sea Salt - Exfoliating Foot Scrub, 12 oz",
        "scrubs & body treatments",
        f"{BEAUTY} › Skin Care › Body › Scrubs & Body Treatments",
        "$15.99",
        "Beauty scrub made with natural ingredients: tea tree oil, dead sea salt and coconut oil.",
        ["Natural ingredients, no parabens", "Tea tree essential oil soothes the skin"],
        _opts(size=["12 Ounce", "6 Ounce"], scent=["Tea Tree", "Lavender/Mint"]),
    ),
    _product(
        "B08D4MH7XQ",
        "Body Scrub for Dead Skin, Oil Free Exfoliator, 10 Fl Oz",
        "scrubs & body treatments",
        f"{BEAUTY} › Skin Care › Body › Scrubs & Body Treatments",
        "$22.50",
        "A clinically proven, paraben free beauty scrub that lifts dead skin.",
        ["Oil free formula", "Clinically proven"],
    ),
    _product(
        "B00OYBADQ2",
        "Organic Coffee Body Scrub, Certified Organic Exfoliator 8 oz",
        "scrubs & body treatments",
        f"{BEAUTY} › Skin Care › Body › Scrubs & Body Treatments",
        "$9.99 - $14.99",
        "Certified organic, non toxic, cruelty free beauty scrub for dead skin.",
        ["Cruelty free"],
        _opts(size=["4 oz", "8 oz"]),
    ),
    _product(
        "B08LD3XCPQ",
        "Tongue Scraper with Storage Case, Stainless Steel Tongue Cleaner (2 Pack)",
        "tongue cleaners",
        f"{BEAUTY} › Oral Care › Tongue Cleaners",
        "$7.99",
        "BPA free, easy clean beauty tongue cleaner that fights bad breath.",
        ["Comes with a storage case"],
        _opts(color=["Blue/Green", "Pink"]),
    ),
    _product(
        "B09MW563KN",
        "Tongue Cleaner Brush for Fresh Breath, 4 Count",
        "tongue cleaners",
        f"{BEAUTY} › Oral Care › Tongue Cleaners",
        "$5.49",
        "Beauty care for oral hygiene and fresh breath.",
        ["Soft brush head"],
    ),
    _product(
        "B07N864Q64",
        "Eyeshadow Palette 35 Colors, Long Lasting Makeup Palette",
        "makeup palettes",
        f"{BEAUTY} › Makeup › Makeup Palettes",
        "$12.99",
        "Easy apply, cruelty free beauty palette.",
        ["Long lasting pigment"],
        _opts(color=["Nude", "Smoky Black"]),
    ),
    _product(
        "B07CXTNVRJ",
        "Stainless Steel Makeup Mixing Palette with Spatula",
        "makeup palettes",
        f"{BEAUTY} › Makeup › Makeup Palettes",
        "$6.99",
        "Easy clean beauty mixing palette.",
        ["Stainless steel"],
    ),
    _product(
        "B07BFLJQCX",
        "Coconut Oil Hair Growth Serum for Hair Loss, 2 Fl Oz",
        "hair loss products",
        f"{BEAUTY} › Hair Care › Hair Loss Products",
        "$18.00",
        "Beauty serum with coconut oil.",
        ["For hair loss"],
    ),
    _product(
        "B08WG7VLQF",
        "Fragrance Free Styling Cream for Dry Hair, 5 oz",
        "styling products",
        f"{BEAUTY} › Hair Care › Styling Products",
        "$11.25",
        "Beauty styling cream, fragrance free.",
        ["Dry hair"],
    ),
    _product(
        "B08X2PKKB2",
        "Rose Gold Refillable Lip Balm Containers, 10 Pack",
        "refillable containers",
        f"{BEAUTY} › Tools & Accessories › Refillable Containers",
        "$8.99 - $12.99",
        "Easy carry, high quality beauty containers.",
        "Refillable",
    ),
    _product(
        "B08J3WFRBT",
        "Leak Proof Travel Bottles Set, BPA Free Silicone Containers",
        "refillable containers",
        f"{BEAUTY} › Tools & Accessories › Refillable Containers",
        "$13.49",
        "Beauty travel bottles: leak proof, bpa free, easy clean.",
        ["Travel bottles"],
    ),
    _product(
        "B084PCSG5H",
        "Moisturizing Gel Socks for Dry Skin, Non Slip",
        "foot, hand & nail care",
        f"{BEAUTY} › Foot, Hand & Nail Care",
        "$10.99",
        "Beauty gel socks for dry skin.",
        ["Non slip"],
        rating=4.4,
    ),
]
# instruction_options as WebShop's human instructions carry them
GOAL_OPTIONS = {"B07DJJXGB5": ["12 ounce", "tea tree"], "B08LD3XCPQ": ["pink"], "B07N864Q64": ["nude"]}


@pytest.fixture(scope="module")
def attributes(data_dir: Path) -> dict:
    return json.loads((data_dir / "webshop/data/items_ins_v2_1000.json").read_text())


def write_catalogue(root: Path, attributes: dict) -> Path:
    """Make ``root`` a data dir holding the test catalogue in the official small-configuration layout."""
    (root / "webshop/data").mkdir(parents=True)
    human = {}
    for p in PRODUCTS:
        a = attributes[p["asin"]]
        if "instruction" in a:
            human[p["asin"]] = [
                {
                    "asin": p["asin"],
                    "instruction": a["instruction"].lower() + ".",
                    "instruction_attributes": a["instruction_attributes"],
                    "instruction_options": GOAL_OPTIONS.get(p["asin"], []),
                }
            ]
    human["B09MW563KN"].append(
        {"instruction": "tongue cleaner", "instruction_attributes": [], "instruction_options": []}
    )  # no attributes: WebShop skips it
    for name, data in (
        ("items_shuffle_1000.json", PRODUCTS),
        ("items_human_ins.json", human),
        ("items_ins_v2_1000.json", attributes),
    ):
        (root / "webshop/data" / name).write_text(json.dumps(data))
    return root


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory, attributes: dict) -> Path:
    return write_catalogue(tmp_path_factory.mktemp("webshop_data"), attributes)


@pytest.fixture(scope="module")
def bench(shop_dir: Path) -> WebShop:
    return WebShop(RunConfig(data_dir=shop_dir), DataResolver(shop_dir))


def _goal_index(bench: WebShop, asin: str) -> int:
    return next(i for i, g in enumerate(bench.site.goals) if g.asin == asin)


def test_products_read_as_webshop_reads_them(bench: WebShop, attributes: dict) -> None:
    products = bench.site.products
    assert len(products) == len(PRODUCTS)
    scrub = products["B07DJJXGB5"]
    assert scrub.options == {"size": ["12 ounce", "6 ounce"], "scent": ["tea tree", "lavender | mint"]}
    assert scrub.attributes == tuple(attributes["B07DJJXGB5"]["attributes"])
    assert scrub.price == 15.99 and scrub.price_tag == "$15.99" and scrub.rating == "N.A."
    jars = products["B08X2PKKB2"]
    assert jars.pricing == (8.99, 12.99) and jars.price_tag == "$8.99 to $12.99"
    assert 8.99 <= jars.price <= 12.99 and jars.price == products["B08X2PKKB2"].price  # seeded draw
    assert jars.bullet_points == ("Refillable",)
    assert products["B084PCSG5H"].rating == "4.4"
    assert (
        load_products([{**PRODUCTS[0], "asin": "nan"}, PRODUCTS[1], PRODUCTS[1]], attributes)[0].asin
        == "B08D4MH7XQ"
    )


def test_goals_follow_the_human_instructions(bench: WebShop, shop_dir: Path) -> None:
    goals = bench.site.goals
    human = json.loads((shop_dir / "webshop/data/items_human_ins.json").read_text())
    assert len(goals) == sum(1 for ins in human.values() for i in ins if i["instruction_attributes"])
    g = goals[_goal_index(bench, "B07DJJXGB5")]
    assert g.instruction_text.startswith(
        "find me scrubs & body treatments with tea tree, natural ingredients"
    )
    assert g.instruction_text.endswith(f", and price lower than {g.price_upper:.2f} dollars")
    assert g.price_upper in (20.0, 30.0, 40.0, 50.0) and g.price_upper > 15.99  # 2nd of 2 of the next 4 steps
    assert g.goal_options == ["12 ounce", "tea tree"] and g.attributes == ["tea tree", "natural ingredients"]
    again = human_goals(list(bench.site.products.values()), human)
    assert [x.asin for x in again] == [x.asin for x in goals]  # seeded: the same order every run


def test_bm25_search_ranks_matching_products_first(bench: WebShop) -> None:
    search = ProductSearch(list(bench.site.products.values()))
    top = [p.asin for p in search.search("tongue cleaner")]
    assert set(top[:2]) == {"B08LD3XCPQ", "B09MW563KN"}
    assert search.search("the of and") == []
    assert len(search.search("beauty")) == len(PRODUCTS)


def test_pages_in_webshop_text_format(bench: WebShop) -> None:
    g = _goal_index(bench, "B07DJJXGB5")
    b = WebShopBrowser(SiteTransport(bench.site), f"t1_fixed_{g}")
    instr = bench.site.goals[g].instruction_text
    assert b.reset().text == f"WebShop [SEP] Instruction: [SEP] {instr} [SEP] Search"
    assert str(b.available_actions()) == "{'has_search_bar': True, 'clickables': ['search']}"
    page, reward, done = b.step("search[beauty]")
    assert page.text.startswith(
        f"Instruction: [SEP] {instr} [SEP] Back to Search [SEP] Page 1 (Total results: 12) "
        "[SEP] Next > [SEP] B"
    )
    assert list(page.clickables)[:2] == ["back to search", "next >"] and len(page.clickables) == 12
    page, _, _ = b.step("click[Next >]")
    assert "Page 2 (Total results: 12) [SEP] < Prev [SEP] B" in page.text and "next >" not in page.clickables
    b.step("search[tea tree body scrub]")
    page, _, _ = b.step("click[B07DJJXGB5]")
    assert page.text.endswith(
        "[SEP] Back to Search [SEP] < Prev [SEP] size [SEP] 12 ounce [SEP] 6 ounce [SEP] scent "
        "[SEP] tea tree [SEP] lavender | mint [SEP] Tea Tree Oil Body Scrub with Dead Sea Salt - "
        "Exfoliating Foot Scrub, 12 oz [SEP] Price: $15.99 [SEP] Rating: N.A. [SEP] Description "
        "[SEP] Features [SEP] Reviews [SEP] Buy Now"
    )
    assert list(page.clickables) == [
        "back to search",
        "< prev",
        "description",
        "features",
        "reviews",
        "buy now",
        "12 ounce",
        "6 ounce",
        "tea tree",
        "lavender | mint",
    ]
    assert b.step("click[not a button]")[0].text == page.text  # invalid click: nothing happens
    assert b.step("click[features]")[0].text.endswith(
        "< Prev [SEP] Natural ingredients, no parabens [SEP] Tea tree essential oil soothes the skin"
    )
    assert b.step("click[< Prev]")[0].text == page.text
    assert b.step("click[reviews]")[0].text.endswith("< Prev [SEP] No reviews found")
    b.step("click[< Prev]")
    b.step("click[12 ounce]")
    assert b.step("click[tea tree]")[0].text == page.text  # a chosen option does not change the page text
    page, reward, done = b.step("click[Buy Now]")
    assert (
        done
        and reward == 1.0
        and page.purchased == {"asin": "B07DJJXGB5", "options": {"size": "12 ounce", "scent": "tea tree"}}
    )


def test_reward_cases_checked_by_hand(bench: WebShop) -> None:
    goal = bench.site.goals[_goal_index(bench, "B07DJJXGB5")]
    products = bench.site.products
    scrub = products["B07DJJXGB5"]
    # 2 attributes + 2 options + price = 5 parts
    assert compute_reward(scrub, goal, scrub.price, {"size": "12 ounce", "scent": "tea tree"}).reward == 1.0
    assert compute_reward(
        scrub, goal, scrub.price, {"size": "6 ounce", "scent": "tea tree"}
    ).reward == pytest.approx(0.8)
    assert compute_reward(scrub, goal, scrub.price, {}).reward == pytest.approx(0.6)
    assert compute_reward(
        scrub, goal, 99.0, {"size": "12 ounce", "scent": "tea tree"}
    ).reward == pytest.approx(0.8)
    # same category path, other product: attributes "tea tree" and "natural ingredients" not in it
    other = products["B08D4MH7XQ"]
    info = compute_reward(other, goal, other.price, {})
    assert (
        info.category_match
        and info.attribute_matches == 0
        and info.reward == pytest.approx(0.2 * info.r_type)
    )
    # a tongue cleaner shares no noun with the scrub's title: r_type 0, reward 0 whatever matched
    cleaner = products["B08LD3XCPQ"]
    assert compute_reward(cleaner, goal, cleaner.price, {"color": "pink"}).reward == 0.0
    # r_type 0.5: other query and category, 1 of 6 title nouns shared (0.1 < 1/6 <= 0.2)
    g = Goal(
        asin="X",
        category="c",
        query="q1",
        name="Cotton Towel Rack Hook Shelf Basket",
        product_category="A › B",
        instruction_text="",
        attributes=[],
        price_upper=10,
        goal_options=[],
    )
    p = scrub.model_copy(update={"title": "Bamboo Basket", "query": "q2", "product_category": "C › D"})
    assert type_reward(p, g)[0] == 0.5
    # colour options compare as their basic colour word
    tongue_goal = bench.site.goals[_goal_index(bench, "B08LD3XCPQ")]
    assert compute_reward(cleaner, tongue_goal, cleaner.price, {"color": "pink"}).option_matches == 1
    assert compute_reward(cleaner, tongue_goal, cleaner.price, {"color": "blue | green"}).option_matches == 0


def _script(path: Path, scripts: dict[int, list[str]]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"task": "webshop", "sample_id": str(i), "replies": r}) + "\n"
            for i, r in scripts.items()
        )
    )
    return path


def _act(a: str) -> str:
    return f"Thought:\nI think I should do this.\n\nAction:\n{a}"


CORRECT = [
    _act("search[tea tree body scrub natural]"),
    _act("click[B07DJJXGB5]"),
    _act("click[12 ounce]"),
    _act("click[tea tree]"),
    _act("click[Buy Now]"),
]
WRONG = [_act("search[tongue cleaner]"), _act("click[B09MW563KN]"), _act("click[Buy Now]")]
MALFORMED = [_act("search[scrub]"), "I would like to buy the scrub please."]


def _run(shop_dir: Path, tmp_path: Path, scripts: dict[int, list[str]], **extra) -> tuple:
    config = RunConfig(
        tasks=["webshop"],
        backend="replay",
        replay_file=_script(tmp_path / "r.jsonl", scripts),
        data_dir=shop_dir,
        output_dir=tmp_path / "runs",
        report=False,
        **extra,
    )
    store, results = run(config)
    return {r.sample_id: r for r in store.episodes("webshop")}, results, store


def test_replay_correct_wrong_and_malformed(bench: WebShop, shop_dir: Path, tmp_path: Path) -> None:
    scrub, cleaner, palette = (_goal_index(bench, a) for a in ("B07DJJXGB5", "B08LD3XCPQ", "B07N864Q64"))
    eps, results, store = _run(shop_dir, tmp_path, {scrub: CORRECT, cleaner: WRONG, palette: MALFORMED})
    assert eps[str(scrub)].score.value == 1.0 and eps[str(scrub)].status == EpisodeStatus.COMPLETED
    assert (
        eps[str(cleaner)].score.value < 1.0
        and eps[str(cleaner)].env_info["purchased"]["asin"] == "B09MW563KN"
    )
    bad = eps[str(palette)]
    assert (
        bad.status == EpisodeStatus.INVALID_ACTION
        and bad.score.value == 0.0
        and not bad.steps[-1].action.valid
    )
    first = eps[str(scrub)].prompt[-1].content
    assert first.startswith("Observation:\nWebShop [SEP] Instruction: [SEP] find me scrubs")
    assert first.endswith("Available Actions:\n{'has_search_bar': True, 'clickables': ['search']}")
    assert results.tasks["webshop"].n == len(bench.site.goals)  # unscripted goals end as model errors
    again = rescore(store.root)  # rewards recomputed from the goals, the catalogue and the stored purchases
    assert again.episodes == len(bench.site.goals) and again.changed == 0


# AgentBench.old's WebShop reads a reply with `[Aa]ction: *\n *((search|click)\[.+?])` (AgentTuning e33a45d,
# src/tasks/webshop/__init__.py); these pairs are what that pattern accepts and refuses, worked out by hand.
ACCEPTED = [
    ("Thought:\nI think so.\n\nAction:\nclick[Buy Now]", "click", "Buy Now"),
    ("action:\nsearch[red shoes] and more", "search", "red shoes"),  # lower-case label, text after the ]
    ("Action:   \n   click[b07djjxgb5]", "click", "b07djjxgb5"),  # blanks before and after the line break
    ("Action:\nclick[a]b]", "click", "a"),  # up to the first ]
    ("Action:\nsearch[x]\nAction:\nclick[y]", "search", "x"),  # the first action
    ("Action: first\nAction:\nclick[y]", "click", "y"),  # a label with nothing usable is passed over
]
REFUSED = [
    "Action: search[red shoes]",  # on the label's line: the pattern needs one line break
    "Action:\n\nclick[Buy Now]",  # two line breaks
    "Action:\r\nclick[Buy Now]",  # a carriage return is neither a blank nor the line break
    "Action:\n\tclick[Buy Now]",  # a tab is not a blank
    "ACTION:\nclick[Buy Now]",
    "Action :\nclick[Buy Now]",
    "Action:\nClick[Buy Now]",
    "Action:\nclick[]",
    "Action:\nclick[Buy\nNow]",  # the argument ends on its line
    "Action:\nbuy[it]",
    "click[Buy Now]",  # no label
]


@pytest.mark.parametrize(("reply", "name", "argument"), ACCEPTED)
def test_parse_action_accepts_what_agentbench_accepts(reply: str, name: str, argument: str) -> None:
    b = WebShop(RunConfig(), DataResolver())
    assert b.parse_action(reply) == Action(name=name, argument=argument, raw=reply)


@pytest.mark.parametrize("reply", REFUSED)
def test_parse_action_refuses_what_agentbench_refuses(reply: str) -> None:
    assert not WebShop(RunConfig(), DataResolver()).parse_action(reply).valid


def test_colour_options_reduce_to_webshops_first_listed_colour(bench: WebShop) -> None:
    """normalize.py's COLOR_SET is alphabetical and the first colour contained wins, so "light pink" is
    "light" and no longer matches a goal's "pink"."""
    from agentflan_eval.benchmarks.webshop.reward import normalize_color

    assert [
        normalize_color(o) for o in ("light pink", "dark navy", "navy blue", "rose gold", "ash grey")
    ] == [
        "light",
        "dark",
        "blue",
        "gold",
        "ash",
    ]
    assert normalize_color("12 ounce") == "12 ounce"
    cleaner = bench.site.products["B08LD3XCPQ"]
    goal = bench.site.goals[_goal_index(bench, "B08LD3XCPQ")]  # 4 attributes (all in the product), "pink"
    assert compute_reward(cleaner, goal, cleaner.price, {"color": "pink"}).reward == 1.0
    light = compute_reward(cleaner, goal, cleaner.price, {"color": "light pink"})
    assert light.option_matches == 0 and light.reward == pytest.approx(5 / 6)  # 4 attributes + price of 6


def test_fuzzy_matching_is_thefuzz(bench: WebShop) -> None:
    """Scores on lower-cased text with punctuation blanked, rounded to an integer, then `> 85`."""
    goal = bench.site.goals[_goal_index(bench, "B084PCSG5H")]  # socks: "non slip", "dry skin"; no options
    socks = bench.site.products["B084PCSG5H"]
    plain = socks.model_copy(update={"title": "Gel Socks", "description": "", "bullet_points": ("",)})
    assert compute_reward(plain, goal, socks.price, {}).attribute_matches == 2
    # the product lists its attributes capitalised: thefuzz lower-cases them first
    shouted = plain.model_copy(update={"attributes": ("Non Slip", "DRY SKIN")})
    assert compute_reward(shouted, goal, socks.price, {}).attribute_matches == 2
    hyphen = plain.model_copy(update={"attributes": ("non-slip",)})  # "non slip" once punctuation is blanked
    assert compute_reward(hyphen, goal, socks.price, {}).attribute_matches == 1
    # options go through the same scorer: "X-Large" chosen for a goal's "x large"
    sized = goal.model_copy(update={"goal_options": ["x large"]})
    assert compute_reward(plain, sized, socks.price, {"size": "X-Large"}).option_matches == 1
    # 85.06 before rounding (token-set ratio of two instruction texts of items_ins_v2_1000.json): 85, no match
    from agentflan_eval.benchmarks.webshop.reward import fuzzy_match

    a = "find me long lasting coffee tables for living room"
    b = "find me coffee tables with steel frame, storage space for living room"
    assert not fuzzy_match(a, b) and fuzzy_match(a, "find me long lasting coffee table for living room")


def test_title_nouns_are_counted_with_repeats(bench: WebShop) -> None:
    """get_type_reward divides the distinct shared nouns by the goal title's noun list, repeats included."""
    base = bench.site.goals[0].model_copy(update={"query": "q1", "product_category": "a › b"})
    scrub = bench.site.products["B07DJJXGB5"]
    other = scrub.model_copy(update={"query": "q2", "product_category": "c › d"})
    # WebShop's own test pair (tests/web-agent-site/engine/test_goal.py expects 0.15 there): 13 nouns with
    # "bar" twice, "power" and "cord" shared: 2/13, not 2/12; r_type 0.5 (between 0.1 and 0.2)
    goal = base.model_copy(
        update={
            "name": "Saireed UL Listed 2 Prong Power Cord for JBL Bar 3.1 Bar 2.1 Channel 4K Ultra HD Soundbar"
        }
    )
    cord = other.model_copy(
        update={
            "title": "BRST AC Power Cord Outlet Socket Cable Plug Lead for Panasonic SC-HT830V "
            "DVD/VCR Combo Home Theater System"
        }
    )
    assert type_reward(cord, goal)[:2] == (0.5, pytest.approx(2 / 13))
    # shoe, rack, shoe, bench, drawer: one shared noun is 1/5, not above 0.2 (1/4 would be): r_type 0.5
    shoe = base.model_copy(update={"name": "Shoe Rack with Shoe Bench and Drawer"})
    drawer = other.model_copy(update={"title": "Drawer Organizer Tray"})
    assert type_reward(drawer, shoe)[:2] == (0.5, pytest.approx(1 / 5))
    assert type_reward(drawer.model_copy(update={"query": "q1"}), shoe)[0] == 1.0  # same query: type matches


def test_dict_goal_options_read_as_webshop_reads_them(bench: WebShop) -> None:
    """A goal whose options are a dict is scored on its (name, value) pairs, as get_reward iterates it."""
    from agentflan_eval.benchmarks.webshop.reward import option_matches

    # ("color", "grey") is "grey" (a colour equal to one of the pair); ("size", "XL") reads "size xl",
    # whose tokens hold the chosen "XL"; ("amount", "pack of 12") matches neither
    goal_options = {"color": "grey", "size": "XL", "amount": "pack of 12"}
    assert option_matches(["grey", "XL"], goal_options) == 2
    assert option_matches(["dark grey", "pack of 12"], goal_options) == 1  # "dark grey" is "dark"
    goal = bench.site.goals[_goal_index(bench, "B07DJJXGB5")].model_copy(
        update={"goal_options": goal_options}
    )
    scrub = bench.site.products["B07DJJXGB5"]
    assert compute_reward(scrub, goal, scrub.price, {"c": "grey", "s": "XL"}).reward == pytest.approx(5 / 6)


def test_empty_attribute_lists_stay_empty(attributes: dict) -> None:
    """WebShop gives DUMMY_ATTR only to products the attribute file lacks; 185 products there list none."""
    empty = next(a for a, v in attributes.items() if v["attributes"] == [])
    records = [{**PRODUCTS[0], "asin": empty}, {**PRODUCTS[1], "asin": "B0NOTLISTD"}]
    assert [p.attributes for p in load_products(records, attributes)] == [(), ("DUMMY_ATTR",)]


def test_gold_agent_buys_each_goals_product_with_its_options(bench: WebShop, shop_dir: Path) -> None:
    """selftest (whole conversation) and the run loop (AgentBench's history window) both solve every goal."""
    from agentflan_eval.selftest import check_task

    check = check_task(
        WebShop(RunConfig(data_dir=shop_dir), DataResolver(shop_dir)), RunConfig(data_dir=shop_dir)
    )
    assert (check.status, check.solved, check.total) == (
        "checked",
        len(bench.site.goals),
        len(bench.site.goals),
    )
    samples = bench.load_samples()
    records = {r.sample_id: r for r in replay_gold(bench, samples)}
    for s in samples:
        assert isinstance(s, WebShopSample) and s.goal is not None
        rec = records[s.id]
        bought = rec.env_info["purchased"]
        assert rec.score.value == 1.0 and bought["asin"] == s.goal["asin"]
        assert set(bought["options"].values()) == set(s.goal["goal_options"])
        assert rec.steps[0].action == Action(
            name="search", argument=s.goal["name"].lower(), raw=rec.steps[0].reply
        )
    scrub = next(s.id for s in samples if s.goal["asin"] == "B07DJJXGB5")
    assert [f"{st.action.name}[{st.action.argument}]" for st in records[scrub].steps][1:] == [
        "click[B07DJJXGB5]",
        "click[12 ounce]",
        "click[tea tree]",
        "click[Buy Now]",
    ]
    assert bench.gold_agent(WebShopSample(id="0", goal_index=0)) is None  # a server's goals are not known


class _FakeWebShop(BaseHTTPRequestHandler):
    """A stand-in for WebShop's Flask app: the in-process site's pages over real HTTP."""

    site: WebShopSite

    def _serve(self, form: dict[str, str] | None) -> None:
        path = urllib.parse.urlsplit(self.path).path
        try:
            resp = self.site.handle(self.command, path, form)
        except KeyError:
            self.send_error(404)
            return
        if form and form.get("search_query"):  # the app redirects a search to its results URL
            self.send_response(302)
            self.send_header("Location", resp.url)
            self.end_headers()
            return
        body = resp.html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._serve(None)

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self._serve({k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()})

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def server_url(bench: WebShop):
    handler = type("Handler", (_FakeWebShop,), {"site": bench.site})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_http_client_against_a_local_server(bench: WebShop, server_url: str, tmp_path: Path) -> None:
    scrub, cleaner = _goal_index(bench, "B07DJJXGB5"), _goal_index(bench, "B08LD3XCPQ")
    empty = tmp_path / "empty"
    empty.mkdir()
    eps, _, _ = _run(
        empty,
        tmp_path,
        {scrub: CORRECT, cleaner: WRONG},
        webshop_url=server_url,
        limit=max(scrub, cleaner) + 1,
    )
    assert eps[str(scrub)].score.value == 1.0 and eps[str(scrub)].env_info["server"] == server_url
    in_process = bench.score(
        WebShopSample(id="x", goal_index=cleaner, goal=bench.site.goals[cleaner].model_dump()),
        [],
        {"purchased": eps[str(cleaner)].env_info["purchased"], "server": None},
    )
    assert eps[str(cleaner)].score.value == pytest.approx(in_process.value)
    steps = eps[str(scrub)].steps
    assert "Page 1 (Total results:" in steps[0].observation and steps[-1].observation.startswith("Thank you")


def test_unavailable_without_data_or_server(tmp_path: Path) -> None:
    b = WebShop(RunConfig(data_dir=tmp_path), DataResolver(tmp_path, offline=True))
    assert "items_shuffle_1000.json" in b.unavailable() and "--webshop-url" in b.unavailable()
    dead = WebShop(RunConfig(webshop_url="http://127.0.0.1:9"), DataResolver(tmp_path, offline=True))
    assert "not reachable" in dead.unavailable()
