"""``finetune build-data``: inputs → parse → align → decompose → negatives → mix, dedupe, shuffle → write.

Writes into ``out``: ``data.jsonl`` (one conversation a line), ``dataset/`` (a ``datasets`` dataset,
``load_from_disk``), ``stats.json`` and ``build_config.json``. Everything random is drawn from
generators seeded by ``seed`` and the step's name, so a build is reproducible.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentflan_eval.benchmarks.hotpotqa.benchmark import QUESTION_FILES as HOTPOTQA_SPLIT
from agentflan_eval.benchmarks.hotpotqa.split import load_split
from agentflan_eval.data import DataFile, DataResolver, read_json, read_jsonl
from agentflan_eval.finetune import sources
from agentflan_eval.finetune.align import (
    DEFAULT_REACT_SHARE,
    aligned_conversation,
    react_conversation,
    split_react,
)
from agentflan_eval.finetune.decompose import DEFAULT_RATIOS, apply_ratios, capability_counts, decompose
from agentflan_eval.finetune.negatives import build_negatives
from agentflan_eval.finetune.records import Conversation, Trajectory

log = logging.getLogger(__name__)

# Evaluation questions no training row may share (FireAct's HotpotQA file holds 44 of AgentTuning's 300).
EVAL_QUESTIONS: tuple[tuple[DataFile, str], ...] = (
    *((f, "question") for f in HOTPOTQA_SPLIT.values()),
    (DataFile("agentbench/knowledgegraph/std.json", "THUDM/AgentBench"), "question"),
    (DataFile("agentbench/knowledgegraph/dev.json", "THUDM/AgentBench"), "question"),
)
PERCENTILES = (50, 90, 95, 99, 100)
_HUB_OR_PATH: dict[str, Any] = {"nargs": "?", "const": "hub", "metavar": "PATH"}  # a bare flag means the Hub
_RATIO = "share of the conversations with {} turns that are trained on them"


class BuildConfig(BaseModel):
    """Everything a build depends on; saved beside the data as build_config.json. Each field is a
    ``finetune build-data`` option."""

    model_config = ConfigDict(extra="forbid")

    out: Path = Field(
        default=Path("finetune_data"),
        description="output folder (data.jsonl, dataset/, stats.json)",
        json_schema_extra={"required": True},
    )
    data_dir: Path | None = Field(
        default=None, description="data root (default: $AGENTFLAN_DATA_DIR, then the cache)"
    )
    sources: tuple[str, ...] = Field(
        default=sources.OFFLINE_SOURCES, description="offline trajectory sources, comma-separated"
    )
    fireact_files: tuple[str, ...] = Field(
        default=("multitask",),
        description="FireAct gpt_format files: hotpotqa, hotpotqa_multimethod, multitask, multitask_multimethod",
    )
    agentinstruct: str | None = Field(
        default=None,
        description="add THUDM/AgentInstruct: from the Hub, or a local parquet/JSONL file or folder",
        json_schema_extra=_HUB_OR_PATH,
    )
    agentflan: str | None = Field(
        default=None,
        description="add the released internlm/Agent-FLAN rows: from the Hub, or a local JSONL file or folder",
        json_schema_extra=_HUB_OR_PATH,
    )
    sharegpt: tuple[Path, ...] = Field(
        default=(),
        description="ShareGPT-style JSON/JSONL general chat to mix in (repeatable)",
        json_schema_extra={"action": "append", "metavar": "FILE"},
    )
    oasst: bool = Field(default=True, description="leave out the OASST general chat")
    max_per_source: int | None = Field(
        default=None, ge=1, description="at most N trajectories per source (seeded sample)"
    )
    react_share: float = Field(
        default=DEFAULT_REACT_SHARE, ge=0, le=1, description="share kept in ReAct format"
    )
    ratio_reasoning: float = Field(
        default=DEFAULT_RATIOS["reasoning"], ge=0, le=1, description=_RATIO.format("reasoning")
    )
    ratio_retrieval: float = Field(
        default=DEFAULT_RATIOS["retrieval"], ge=0, le=1, description=_RATIO.format("retrieval")
    )
    ratio_understanding: float = Field(
        default=DEFAULT_RATIOS["understanding"], ge=0, le=1, description=_RATIO.format("understanding")
    )
    negatives_a: int = Field(default=40, ge=0, description="negative samples (a): no tools, plain answer")
    negatives_b: int = Field(default=40, ge=0, description="negative samples (b): tools given, none needed")
    decontaminate: bool = Field(default=True, description="keep trajectories that share an eval question")
    seed: int = Field(default=0, description="seed of every sampling and shuffling step")
    tokenizer: str | None = Field(
        default=None,
        description="model whose tokenizer measures token lengths (default: the embedded model; "
        "'none' skips token statistics)",
    )
    chat_template: str | None = Field(
        default=None, description="template for token statistics (default: as run chooses)"
    )

    @property
    def ratios(self) -> dict[str, float]:
        """Per capability, the share of the conversations holding it whose turns of it are trained on."""
        return {c: getattr(self, f"ratio_{c}") for c in DEFAULT_RATIOS}

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _local(hub_or_path: str | None) -> Path | None:
    return None if hub_or_path in (None, "hub") else Path(hub_or_path)


@dataclass
class BuildResult:
    conversations: list[Conversation]
    stats: dict[str, Any]


def build(cfg: BuildConfig) -> BuildResult:
    data = DataResolver(cfg.data_dir)
    skipped: Counter[str] = Counter()
    trajs = _trajectories(cfg, data, skipped)
    trajs, contaminated = _decontaminate(trajs, data) if cfg.decontaminate else (trajs, {})
    trajs = _cap_per_source(trajs, cfg.max_per_source, cfg.seed)
    react, to_align = split_react(trajs, cfg.react_share, cfg.seed)
    decomposed = [decompose(aligned_conversation(t)) for t in to_align]
    agent = [react_conversation(t) for t in react] + apply_ratios(decomposed, cfg.ratios, cfg.seed)
    tool_sets = list({tuple(x.name for x in t.tools): (t.source, t.tools) for t in trajs}.values())
    negatives = build_negatives(
        sources.load_seed_tasks(data), tool_sets, cfg.negatives_a, cfg.negatives_b, cfg.seed
    )
    extra = _extra_conversations(cfg, data, skipped)
    convs, duplicates = _dedupe([*agent, *negatives, *extra])
    random.Random(f"{cfg.seed}/shuffle").shuffle(convs)
    stats = statistics(
        convs,
        cfg,
        {
            "skipped_records": dict(sorted(skipped.items())),
            "decontaminated": dict(sorted(contaminated.items())),
            "duplicates_removed": duplicates,
            "unsupervised_dropped": len(react) + len(decomposed) - len(agent),
        },
    )
    write(convs, stats, cfg)
    return BuildResult(convs, stats)


def _trajectories(cfg: BuildConfig, data: DataResolver, skipped: Counter[str]) -> list[Trajectory]:
    out: list[Trajectory] = []
    for s in cfg.sources:
        out += sources.load_trajectories(s, data, skipped, cfg.fireact_files)
    if cfg.agentinstruct:
        out += sources.load_agentinstruct(data, skipped, _local(cfg.agentinstruct))
    return out


def _extra_conversations(cfg: BuildConfig, data: DataResolver, skipped: Counter[str]) -> list[Conversation]:
    out: list[Conversation] = []
    if cfg.oasst:
        out += sources.load_oasst(data, skipped)
    for path in cfg.sharegpt:
        out += sources.load_sharegpt(Path(path), skipped)
    if cfg.agentflan:
        out += sources.load_agentflan(data, skipped, _local(cfg.agentflan))
    return out


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _decontaminate(trajs: list[Trajectory], data: DataResolver) -> tuple[list[Trajectory], dict[str, int]]:
    """Drop trajectories whose question is an evaluation question (exact match after normalising)."""
    held_out: set[str] = set()
    for f, key in EVAL_QUESTIONS:
        path = data.find(f)
        if path is None:
            continue
        if path.suffix == ".joblib":
            rows = load_split(data.path(f))  # unpickled only once its checksum matches
        else:
            rows = [r for _, r in read_jsonl(path)] if path.suffix == ".jsonl" else read_json(path)
        held_out |= {_norm(str(r[key])) for r in rows if key in r}
    kept = [
        t
        for t in trajs
        if _norm(re.sub(r"^Question:\s*", "", t.query).split("\nEntities:")[0]) not in held_out
    ]
    return kept, dict(Counter(t.source for t in trajs) - Counter(t.source for t in kept))


def _cap_per_source(trajs: list[Trajectory], cap: int | None, seed: int) -> list[Trajectory]:
    if cap is None:
        return trajs
    by_source: dict[str, list[Trajectory]] = {}
    for t in trajs:
        by_source.setdefault(t.source, []).append(t)
    keep: set[str] = set()
    for source, group in sorted(by_source.items()):
        keep |= {t.id for t in random.Random(f"{seed}/cap/{source}").sample(group, min(cap, len(group)))}
    return [t for t in trajs if t.id in keep]


def _dedupe(convs: list[Conversation]) -> tuple[list[Conversation], int]:
    seen: set[str] = set()
    out = []
    for c in convs:
        key = c.content_key()
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out, len(convs) - len(out)


def statistics(
    convs: Sequence[Conversation], cfg: BuildConfig, pipeline: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Counts per source, format, negative type and capability, the pipeline's drop counts, and token
    lengths (unless ``cfg.tokenizer`` is "none")."""
    stats: dict[str, Any] = {
        "samples": len(convs),
        "by_source": dict(sorted(Counter(c.source for c in convs).items())),
        "by_format": dict(sorted(Counter(c.format for c in convs).items())),
        "by_negative_type": dict(sorted(Counter(c.negative for c in convs if c.negative).items())),
        "capabilities": capability_counts(convs),
        "skipped_records": {},
        "decontaminated": {},
        "duplicates_removed": 0,
        "unsupervised_dropped": 0,
        **(pipeline or {}),
        "reconstructed_observations": sum(bool(c.metadata.get("reconstructed_observations")) for c in convs),
    }
    if cfg.tokenizer != "none":
        stats["tokens"] = token_statistics(convs, cfg.tokenizer, cfg.chat_template)
    return stats


def token_statistics(
    convs: Sequence[Conversation], model: str | None, template_name: str | None
) -> dict[str, Any]:
    """Token-length percentiles of the rendered samples, and supervised-token totals."""
    import numpy as np

    from agentflan_eval.finetune.render import tokenize
    from agentflan_eval.finetune.train import load_tokenizer

    tokenizer, template, _ = load_tokenizer(model, template_name)
    lengths, supervised = [], []
    for c in convs:
        enc = tokenize(c.turns, template, tokenizer)
        lengths.append(len(enc["input_ids"]))
        supervised.append(sum(1 for x in enc["labels"] if x != -100))
    pct = np.percentile(np.array(lengths), PERCENTILES) if lengths else [0] * len(PERCENTILES)
    return {
        "tokenizer": model or "embedded",
        "chat_template": template.name,
        "length_percentiles": {f"p{p}": int(v) for p, v in zip(PERCENTILES, pct)},
        "total": int(sum(lengths)),
        "supervised": int(sum(supervised)),
    }


def write(convs: Sequence[Conversation], stats: dict[str, Any], cfg: BuildConfig) -> None:
    from datasets import Dataset

    cfg.out.mkdir(parents=True, exist_ok=True)
    rows = [c.row() for c in convs]
    with open(cfg.out / "data.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    Dataset.from_list(rows).save_to_disk(str(cfg.out / "dataset"))
    (cfg.out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    (cfg.out / "build_config.json").write_text(json.dumps(cfg.to_json(), indent=2) + "\n", encoding="utf-8")


def stats_lines(stats: dict[str, Any]) -> list[str]:
    """The statistics as the CLI prints them."""
    lines = [
        f"samples: {stats['samples']}  (duplicates removed {stats['duplicates_removed']}, without a "
        f"supervised turn {stats['unsupervised_dropped']}, "
        "eval questions removed: "
        + (", ".join(f"{k} {v}" for k, v in stats["decontaminated"].items()) or "none")
        + ")"
    ]
    lines.append("by source:   " + ", ".join(f"{k} {v}" for k, v in stats["by_source"].items()))
    lines.append("by format:   " + ", ".join(f"{k} {v}" for k, v in stats["by_format"].items()))
    lines.append(
        "negatives:   " + (", ".join(f"({k}) {v}" for k, v in stats["by_negative_type"].items()) or "none")
    )
    for cap, c in stats["capabilities"].items():
        lines.append(
            f"capability {cap:<14} supervised in {c['supervised_conversations']}/{c['conversations']} "
            f"conversations, {c['supervised_turns']} turns"
        )
    for reason, n in stats["skipped_records"].items():
        lines.append(f"skipped {n} records ({reason})")
    if stats["reconstructed_observations"]:
        lines.append(
            f"{stats['reconstructed_observations']} KG samples have observations reconstructed "
            "from the ontology (no Freebase server offline)"
        )
    if "tokens" in stats:
        t = stats["tokens"]
        pct = ", ".join(f"{k} {v}" for k, v in t["length_percentiles"].items())
        lines.append(
            f"tokens ({t['chat_template']} template): {pct}; total {t['total']}, supervised {t['supervised']}"
        )
    return lines
