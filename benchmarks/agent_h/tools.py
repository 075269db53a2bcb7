"""Agent-H tool catalogue: real tool descriptions from T-Eval and ToolBench as callable functions.

Every tool is a set of APIs in OpenAI function-definition form (name, description, JSON-schema
parameters). T-Eval APIs are named ``Tool.api`` as T-Eval/Lagent name them; ToolBench APIs follow
ToolBench's own conversion (``{api}_for_{tool}``, standardised, last 64 characters), so names in
the answer files and those converted from the instruction files agree.

Two hand-made flags decide where a tool may appear as a tool that does *not* fit:
``GENERIC`` tools (web, news and scholarly search) can answer almost anything, so they never
appear in "none fits" samples; ``LOOKUP`` tools answer factual questions about named entities
(films, maps, companies, places), so they never sit beside a knowledge question there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property, lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentflan_eval.data import DataFile, DataResolver, read_json

_TB = "OpenBMB/ToolBench data_example/"
T_EVAL_TOOLS = DataFile("t_eval/api_descrip.json", "open-compass/T-Eval data/api_descrip.json")
TOOLBENCH_INSTRUCTIONS = tuple(
    DataFile(f"toolbench/data_example/instruction/G{g}_query.json", f"{_TB}instruction/G{g}_query.json")
    for g in (1, 2, 3)
)
_ANSWERS = {1: (10, 11, 57, 59, 69), 2: (102, 10, 119, 127, 52), 3: (13, 15, 21, 3, 8)}
TOOLBENCH_ANSWERS = tuple(
    DataFile(
        f"toolbench/data_example/answer/G{g}_answer/{n}_ChatGPT_DFS_woFilter_w2.json",
        f"{_TB}answer/G{g}_answer/{n}_ChatGPT_DFS_woFilter_w2.json",
    )
    for g, ns in _ANSWERS.items()
    for n in ns
)

GENERIC = frozenset(
    {"GoogleSearch", "ArxivSearch", "GoogleScholar", "seo_api", "web_search", "currents_news"}
)
LOOKUP = GENERIC | {
    "FilmDouban",
    "FilmTMDB",
    "BINGMap",
    "GaodeMap",
    "PolygonFinance",
    "tvmaze",
    "streaming_availability",
    "investors_exchange_iex_trading",
    "turkey_postal_codes",
    "cep_brazil",
    "transportistas_de_argentina",
}
# Words too common in tool descriptions to say what a tool is about.
_STOP = frozenset(
    [
        "this",
        "that",
        "with",
        "from",
        "given",
        "list",
        "information",
        "function",
        "subfunction",
        "tool",
        "tools",
        "description",
        "returns",
        "return",
        "result",
        "results",
        "query",
        "string",
        "parameter",
        "parameters",
        "endpoint",
        "data",
        "details",
        "detail",
        "using",
        "provide",
        "provided",
        "available",
        "specific",
        "name",
        "names",
        "when",
        "your",
        "need",
        "useful",
        "about",
        "plugin",
        "look",
        "into",
        "their",
        "which",
        "each",
        "will",
        "have",
        "used",
        "user",
        "users",
        "should",
        "must",
        "only",
        "also",
        "other",
        "value",
        "values",
        "type",
        "example",
        "object",
        "default",
        "based",
        "more",
        "than",
        "such",
        "them",
        "they",
        "search",
        "searches",
        "perform",
        "performs",
        "make",
        "takes",
        "take",
        "http",
        "https",
        "with",
        "page",
        "number",
        "required",
        "optional",
        "given",
        "item",
        "items",
        "like",
        "some",
        "code",
        "thing",
        "following",
        "reference",
        "checkout",
    ]
)
_TB_PREFIX = re.compile(r'^This is the subfunction for tool "[^"]*", you can use this tool\.')
_TB_TOOL = re.compile(r'subfunction for tool "([^"]+)"')


class ApiSpec(BaseModel):
    """One callable function as listed to the model; ``aliases`` are other names that mean it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    tool: str
    description: str
    parameters: dict[str, Any]
    aliases: list[str] = Field(default_factory=list)

    def function_def(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    source: Literal["t_eval", "toolbench"]
    apis: list[ApiSpec]

    @property
    def generic(self) -> bool:
        return self.name in GENERIC

    @property
    def lookup(self) -> bool:
        return self.name in LOOKUP

    @cached_property
    def keywords(self) -> frozenset[str]:
        """Content words of the tool's names and descriptions (a query sharing one may need it)."""
        text = " ".join([self.name, *(f"{a.name} {_TB_PREFIX.sub('', a.description)}" for a in self.apis)])
        return frozenset(w for w in word_stems(text) if len(w) >= 4 and w not in _STOP)

    def fits_none_of(self, query: str) -> bool:
        return not (self.keywords & word_stems(query))


@lru_cache(maxsize=4096)
def word_stems(text: str) -> frozenset[str]:
    """Lower-case words with camelCase and snake_case split and a plural 's' dropped."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return frozenset(
        w[:-1] if len(w) > 4 and w.endswith("s") else w for w in re.findall(r"[a-z0-9]+", text.lower())
    )


def standardize(s: str) -> str:
    """ToolBench's name standardisation (``toolbench/utils.py``)."""
    s = re.sub(r"[^\u4e00-\u9fa5a-zA-Z0-9_]", "_", s)
    s = re.sub(r"_+", "_", s).lower().strip("_")
    return "get_" + s if s[:1].isdigit() else s


def toolbench_api_name(tool: str, api: str) -> str:
    """ToolBench's function name for an API: ``{api}_for_{tool}``, keeping the last 64 characters."""
    pure = standardize(api)
    if pure in ("from", "class", "return", "false", "true", "id", "and"):
        pure = "is_" + pure
    return f"{pure}_for_{standardize(tool)}"[-64:]


def _schema(required: Iterable[dict[str, Any]], optional: Iterable[dict[str, Any]]) -> dict[str, Any]:
    req, opt = list(required), list(optional)
    props = {}
    for p in [*req, *opt]:
        prop = {"type": str(p.get("type", "string")).lower(), "description": p.get("description", "")}
        if p.get("default") not in (None, ""):
            prop["example_value"] = p["default"]
        props[p["name"]] = prop
    return {
        "type": "object",
        "properties": props,
        "required": [p["name"] for p in req],
        "optional": [p["name"] for p in opt],
    }


def _t_eval_tools(records: list[dict[str, Any]]) -> list[Tool]:
    out = []
    for t in records:
        apis = [
            ApiSpec(
                name=f"{t['name']}.{a['name']}",
                tool=t["name"],
                description=f"{a['description'].strip()} ({t['name']}: {t['tool_description'].strip()})",
                parameters=_schema(a["required_parameters"], a["optional_parameters"]),
            )
            for a in t["api_list"]
        ]
        out.append(Tool(name=t["name"], source="t_eval", apis=apis))
    return out


def _instruction_api(a: dict[str, Any]) -> ApiSpec:
    """ToolBench's ``api_json_to_openai_json`` conversion of one instruction-file API."""
    tool = standardize(a["tool_name"])
    desc = f'This is the subfunction for tool "{tool}", you can use this tool.'
    if a.get("api_description", "").strip():
        desc += f'The description of this function is: "{a["api_description"].strip()}"'
    return ApiSpec(
        name=toolbench_api_name(a["tool_name"], a["api_name"]),
        tool=tool,
        description=desc,
        parameters=_schema(a.get("required_parameters", []), a.get("optional_parameters", [])),
    )


def _answer_api(fn: dict[str, Any]) -> ApiSpec | None:
    m = _TB_TOOL.search(fn.get("description", ""))
    if fn.get("name") == "Finish" or m is None:  # Finish is ToolBench's protocol function, not a tool
        return None
    return ApiSpec(
        name=fn["name"], tool=m.group(1), description=fn["description"], parameters=fn["parameters"]
    )


class Catalogue:
    """All tools, plus each ToolBench query's own API list and the APIs that answer it."""

    def __init__(self, data: DataResolver):
        self.tools: dict[str, Tool] = {t.name: t for t in _t_eval_tools(read_json(data.path(T_EVAL_TOOLS)))}
        apis: dict[str, ApiSpec] = {}
        self.toolbench_queries: list[tuple[str, str, list[str], list[str]]] = []  # id, query, listed, gold
        for f in TOOLBENCH_ANSWERS:
            gen = read_json(data.path(f))["answer_generation"]
            listed = [a for a in map(_answer_api, gen["function"]) if a is not None]
            for a in listed:
                apis.setdefault(a.name, a)
            names = [a.name for a in listed]
            called = [
                m["function_call"]["name"]
                for conv in gen.get("train_messages") or []
                for m in conv
                if m.get("role") == "assistant" and m.get("function_call")
            ]
            gold = [n for n in dict.fromkeys(called) if n in names] or names
            self.toolbench_queries.append((_short(f.path), gen["query"], names, gold))
        for f in TOOLBENCH_INSTRUCTIONS:
            for q in read_json(data.path(f)):
                listed = [_instruction_api(a) for a in q["api_list"]]
                for a in listed:
                    apis.setdefault(a.name, a)
                gold = [toolbench_api_name(t, a) for t, a in q["relevant APIs"]]
                self.toolbench_queries.append(
                    (f"{_short(f.path)}:{q['query_id']}", q["query"], [a.name for a in listed], gold)
                )
        for a in apis.values():
            tool = self.tools.setdefault(a.tool, Tool(name=a.tool, source="toolbench", apis=[]))
            tool.apis.append(a)
        self.apis = {a.name: a for t in self.tools.values() for a in t.apis}

    def tool_of(self, api: str) -> Tool:
        return self.tools[self.apis[api].tool]


def _short(path: str) -> str:
    """``G1_answer/10`` or ``G1_query``: the file's name inside ToolBench's data_example."""
    parts = path.removesuffix(".json").removesuffix("_ChatGPT_DFS_woFilter_w2").split("/")
    return "/".join(parts[-2:]) if parts[-2].endswith("_answer") else parts[-1]
