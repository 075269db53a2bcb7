"""Agent-H queries: real people's requests and knowledge questions, read from the data dir.

General requests come from MT-bench (first turns), the Vicuna bench, OpenAssistant prompts,
Arena-hard and the Self-Instruct seed tasks. A request is dropped when it plausibly needs a tool
(real-time facts, the web, files, e-mail, bookings, places: ``NEEDS_TOOL``) or is longer than
``MAX_QUERY_CHARS``; the filter is deliberately broad, since a dropped request costs nothing while
a kept one that needs a tool would make a correct tool call look like a hallucination.
Knowledge questions come from HotpotQA (the ReAct dev split) and Bamboogle.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from agentflan_eval.data import DataFile, DataResolver, read_json, read_jsonl
from agentflan_eval.errors import DataFormatError

_FC = "lm-sys/FastChat fastchat/llm_judge/data/"
MT_BENCH = DataFile("general_chat/fastchat/mt_bench/question.jsonl", _FC + "mt_bench/question.jsonl")
VICUNA = DataFile("general_chat/fastchat/vicuna_bench/question.jsonl", _FC + "vicuna_bench/question.jsonl")
OASST = DataFile(
    "general_chat/oasst/prompt_lottery_en_250_text.jsonl",
    "LAION-AI/Open-Assistant model/model_eval/manual/data/prompt_lottery_en_250_text.jsonl",
)
ARENA_HARD = DataFile(
    "general_chat/arena_hard/arena-hard-v0.1/question.jsonl",
    "lmarena/arena-hard-auto data/arena-hard-v0.1/question.jsonl",
)
SELF_INSTRUCT = DataFile(
    "general_chat/self_instruct/seed_tasks.jsonl", "yizhongw/self-instruct data/seed_tasks.jsonl"
)
HOTPOTQA = DataFile(
    "react_hotpotqa/data/hotpot_dev_v1_simplified.json",
    "ysymyth/ReAct data/hotpot_dev_v1_simplified.json (HotpotQA dev)",
)
BAMBOOGLE = DataFile("fireact/data/bamboogle/test.csv", "anchen1011/FireAct data/bamboogle/test.csv")
GENERAL_FILES = (MT_BENCH, VICUNA, OASST, ARENA_HARD, SELF_INSTRUCT)

MAX_QUERY_CHARS = 1500
NEEDS_TOOL = re.compile(
    r"https?://|www\.|\.com\b|\b(today|tonight|tomorrow|yesterday|current(ly)?|right now|latest|recent(ly)?"
    r"|this (week|month|year)|news|weather|forecast|stocks?|exchange rate|prices?|scores?|live|search"
    r"|look ?up|google|browse|internet|online|web ?site|send|e-?mail|book(ing)?|reserve|order|buy|purchase"
    r"|remind|schedule|alarm|calendar|download|upload|install|attach\w*|files?|spreadsheet|excel"
    r"|run (this|the)|execute|near me|nearby|directions|distance|route|flights?|hotels?|airbnb"
    r"|time is it|what day|date today|my (computer|phone|account|pc))\b",
    re.IGNORECASE,
)


QueryKind = Literal["general", "knowledge", "toolbench"]


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str  # "<dataset>:<id in the dataset>"
    text: str
    kind: QueryKind


def needs_tool(text: str) -> bool:
    return NEEDS_TOOL.search(text) is not None


def general_queries(data: DataResolver) -> dict[str, list[Query]]:
    """Per source, in file order, the requests that need no tool."""
    raw: dict[str, list[tuple[str, str]]] = {
        "mt_bench": _fields(data, MT_BENCH, lambda r: (str(r["question_id"]), r["turns"][0])),
        "vicuna": _fields(data, VICUNA, lambda r: (str(r["question_id"]), r["turns"][0])),
        "oasst": [(str(i), t) for i, t in enumerate(_json_lines(data.path(OASST)))],
        "arena_hard": _fields(data, ARENA_HARD, lambda r: (r["uid"], r["prompt"])),
        "self_instruct": _fields(data, SELF_INSTRUCT, lambda r: (r["id"], _with_input(r))),
    }
    return {
        src: [
            Query(id=f"{src}:{i}", text=t.strip(), kind="general")
            for i, t in rows
            if len(t.strip()) <= MAX_QUERY_CHARS and not needs_tool(t)
        ]
        for src, rows in raw.items()
    }


def knowledge_queries(data: DataResolver) -> dict[str, list[Query]]:
    hotpot = read_json(data.path(HOTPOTQA))
    path = data.path(BAMBOOGLE)
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and "Question" not in rows[0]:
        raise DataFormatError(path, 1, "expected a 'Question' column")
    return {
        "hotpotqa": [
            Query(id=f"hotpotqa:dev-{i}", text=r["question"].strip(), kind="knowledge")
            for i, r in enumerate(hotpot)
        ],
        "bamboogle": [
            Query(id=f"bamboogle:{i}", text=r["Question"].strip(), kind="knowledge")
            for i, r in enumerate(rows)
        ],
    }


def _fields(data: DataResolver, f: DataFile, get: Callable[[dict], tuple[str, str]]) -> list[tuple[str, str]]:
    path, out = data.path(f), []
    for line, rec in read_jsonl(path):
        try:
            out.append(get(rec))
        except (KeyError, IndexError, TypeError) as e:
            raise DataFormatError(path, line, f"unexpected record layout ({type(e).__name__}: {e})") from None
    return out


def _json_lines(path: Path) -> list[str]:
    """OASST's prompt lottery: one JSON string per line."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if line.strip():
                value = json.loads(line)
                if not isinstance(value, str):
                    raise DataFormatError(path, i, "expected a JSON string")
                out.append(value)
    return out


def _with_input(r: dict) -> str:
    inp = (r.get("instances") or [{}])[0].get("input", "")
    return f"{r['instruction']}\n\n{inp}" if inp.strip() else r["instruction"]
