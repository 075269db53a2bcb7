"""Where the training inputs come from: the offline copies in the data dir (through ``DataResolver``)
and the Hub datasets (through ``datasets``/``huggingface_hub``, when online or given as local files).

Every loader returns typed records and the number of raw records it had to skip, per reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from agentflan_eval.data import DataFile, DataResolver, hub_endpoint, reachable, read_json, read_jsonl
from agentflan_eval.errors import DataMissingError
from agentflan_eval.finetune import chat, parse
from agentflan_eval.finetune.negatives import QAPair, seed_task_pairs
from agentflan_eval.finetune.records import Conversation, Trajectory

log = logging.getLogger(__name__)
_T = TypeVar("_T")

FIREACT_FILES = ("hotpotqa", "hotpotqa_multimethod", "multitask", "multitask_multimethod")
_FIREACT = "anchen1011/FireAct data/finetune/gpt_format/{}.jsonl"
TOOLBENCH_ANSWERS = DataFile("toolbench/data_example/answer", "OpenBMB/ToolBench data_example/answer/")
KG_TRAIN = DataFile(
    "agentbench/knowledgegraph/kg_rl_all.json", "THUDM/AgentBench data/knowledgegraph/kg_rl_all.json"
)
KG_ROLES = DataFile(
    "agentbench/knowledgegraph/ontology/fb_roles",
    "THUDM/AgentBench src/server/tasks/knowledgegraph/ontology/fb_roles",
)
KG_VOCAB = DataFile(
    "agentbench/knowledgegraph/ontology/vocab.json",
    "THUDM/AgentBench src/server/tasks/knowledgegraph/ontology/vocab.json",
)
ALFWORLD_PROMPTS = DataFile("react_hotpotqa/prompts/alfworld.json", "ysymyth/ReAct prompts/alfworld.json")
OS_TRAIN = DataFile(
    "agentbench/os_interaction/train_0317/training.json",
    "THUDM/AgentBench data/os_interaction/train_0317/training.json",
)
OASST = DataFile(
    "general_chat/oasst/en_100_tree.jsonl",
    "LAION-AI/Open-Assistant model/model_eval/manual/data/en_100_tree.jsonl",
)
SEED_TASKS = DataFile(
    "general_chat/self_instruct/seed_tasks.jsonl", "yizhongw/self-instruct data/seed_tasks.jsonl"
)

AGENTINSTRUCT_REPO = "THUDM/AgentInstruct"
AGENTINSTRUCT_SPLITS = ("os", "db", "alfworld", "webshop", "kg", "mind2web")
AGENTFLAN_REPO = "internlm/Agent-FLAN"
AGENTFLAN_SPLITS = (
    "agent_instruct_react",
    "agent_instruct_tflan",
    "toolbench_instruct_j1s1_3k",
    "toolbench_negative",
    "toolbench_react_10p",
    "toolbench_tflan_60p_r10r5u7",
    "toolbench_tflan_cot_30p",
)
OFFLINE_SOURCES = ("fireact", "toolbench", "kg", "alfworld", "os")

Skips = Counter  # "source: reason" -> count


def _collect(
    items: Iterable[tuple[str, Any]], fn: Callable[[Any, str], _T], source: str, skipped: Skips
) -> list[_T]:
    out: list[_T] = []
    for rid, raw in items:
        try:
            out.append(fn(raw, rid))
        except parse.ParseError as e:
            skipped[f"{source}: {e}"] += 1
    return out


def load_trajectories(
    source: str,
    data: DataResolver,
    skipped: Skips,
    fireact_files: Iterable[str] = ("multitask",),
) -> list[Trajectory]:
    """Parsed trajectories of one offline source (see OFFLINE_SOURCES)."""
    if source == "fireact":
        out: list[Trajectory] = []
        for name in fireact_files:
            path = data.path(
                DataFile(f"fireact/data/finetune/gpt_format/{name}.jsonl", _FIREACT.format(name))
            )
            out += _collect(
                ((f"fireact/{name}/{line}", rec) for line, rec in read_jsonl(path)),
                parse.parse_fireact,
                source,
                skipped,
            )
        return out
    if source == "toolbench":
        root = data.path(TOOLBENCH_ANSWERS)
        files = sorted(root.glob("*/*.json"))
        return _collect(
            ((f"toolbench/{f.parent.name}/{f.stem}", read_json(f)) for f in files),
            parse.parse_toolbench,
            source,
            skipped,
        )
    if source == "kg":
        onto = parse.KGOntology.from_text(
            data.path(KG_ROLES).read_text(encoding="utf-8"), read_json(data.path(KG_VOCAB))
        )
        rows = read_json(data.path(KG_TRAIN))
        return _collect(
            ((f"kg/{r.get('qid', i)}", r) for i, r in enumerate(rows)),
            lambda r, rid: parse.parse_kg(r, rid, onto),
            source,
            skipped,
        )
    if source == "alfworld":
        prompts = read_json(data.path(ALFWORLD_PROMPTS))
        return _collect(
            ((f"alfworld/{k}", v) for k, v in sorted(prompts.items())), parse.parse_alfworld, source, skipped
        )
    if source == "os":
        rows = read_json(data.path(OS_TRAIN))
        return _collect(((f"os/{i}", r) for i, r in enumerate(rows)), parse.parse_os, source, skipped)
    raise ValueError(f"unknown source {source!r}; offline sources are: {', '.join(OFFLINE_SOURCES)}")


def load_oasst(data: DataResolver, skipped: Skips) -> list[Conversation]:
    path = data.path(OASST)
    return _collect(
        ((f"oasst/{r.get('message_tree_id', line)}", r) for line, r in read_jsonl(path)),
        chat.oasst_conversation,
        "oasst",
        skipped,
    )


def load_seed_tasks(data: DataResolver) -> list[QAPair]:
    return seed_task_pairs([r for _, r in read_jsonl(data.path(SEED_TASKS))])


def load_sharegpt(path: Path, skipped: Skips) -> list[Conversation]:
    """A local ShareGPT-style JSONL/JSON file, read with ``datasets``."""
    rows = _local_rows(path)
    return _collect(
        ((f"{path.stem}/{i}", r) for i, r in enumerate(rows)),
        lambda r, rid: chat.sharegpt_conversation(r, rid, source=f"sharegpt/{path.stem}"),
        "sharegpt",
        skipped,
    )


def load_agentinstruct(
    data: DataResolver,
    skipped: Skips,
    local: Path | None = None,
    splits: Iterable[str] = AGENTINSTRUCT_SPLITS,
) -> list[Trajectory]:
    """THUDM/AgentInstruct: from a local parquet/JSON(L) file or folder, else from the Hub."""
    out: list[Trajectory] = []
    for split in splits:
        rows = _local_rows(local, split) if local else _hub_rows(AGENTINSTRUCT_REPO, data, split=split)
        out += _collect(
            ((f"agentinstruct/{split}/{r.get('id', i)}", r) for i, r in enumerate(rows)),
            partial(parse.parse_agentinstruct, source=f"agentinstruct/{split}"),
            f"agentinstruct/{split}",
            skipped,
        )
    return out


def load_agentflan(
    data: DataResolver, skipped: Skips, local: Path | None = None, splits: Iterable[str] = AGENTFLAN_SPLITS
) -> list[Conversation]:
    """The released internlm/Agent-FLAN rows (one JSONL per split), local or from the Hub."""
    out: list[Conversation] = []
    for split in splits:
        rows = (
            _local_rows(local, split)
            if local
            else _hub_rows(AGENTFLAN_REPO, data, filename=f"data/{split}.jsonl")
        )
        out += _collect(
            ((f"{i}", r) for i, r in enumerate(rows)),
            partial(chat.release_conversation, split=split),
            f"agentflan/{split}",
            skipped,
        )
    return out


def _local_rows(path: Path, split: str | None = None) -> list[dict[str, Any]]:
    """Rows of a local parquet/JSON/JSONL file; for a folder, the file whose name starts with ``split``."""
    from datasets import load_dataset

    if path.is_dir():
        hits = sorted(p for p in path.rglob(f"{split or ''}*") if p.suffix in (".parquet", ".json", ".jsonl"))
        if not hits:
            raise DataMissingError(f"no {split or 'data'} file (.parquet/.json/.jsonl) under {path}")
        path = hits[0]
    if not path.is_file():
        raise DataMissingError(f"{path} does not exist")
    kind = "parquet" if path.suffix == ".parquet" else "json"
    return list(load_dataset(kind, data_files=str(path), split="train"))


def _hub_rows(
    repo: str, data: DataResolver, split: str | None = None, filename: str | None = None
) -> list[dict[str, Any]]:
    if data.offline or not reachable(hub_endpoint()):
        raise DataMissingError(
            f"{repo} is only on the Hugging Face Hub and this run is offline (or the Hub is "
            "unreachable); download it and pass the local file instead"
        )
    try:
        if filename:
            from huggingface_hub import hf_hub_download

            return [r for _, r in read_jsonl(Path(hf_hub_download(repo, filename, repo_type="dataset")))]
        from datasets import load_dataset

        return list(load_dataset(repo, split=split))
    except (OSError, ValueError, ConnectionError) as e:
        raise DataMissingError(f"cannot fetch {repo} from the Hub: {type(e).__name__}: {e}") from None
