"""The benchmark registry: the one place a benchmark is added.

A benchmark is one package ``benchmarks/<task>/`` (its class in ``benchmark.py``, with its environment,
prompts, scorer and helpers beside it); what several benchmarks share lives in ``benchmarks/common/``.
Each entry maps a task name to ``module:Class``; modules are imported only when the task is used, and
a module that fails to import is an error, never a silent drop.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from agentflan_eval.config import SUITES
from agentflan_eval.errors import UnknownNameError

if TYPE_CHECKING:
    from agentflan_eval.benchmark import Benchmark

REGISTRY: dict[str, str] = {
    "os": "agentflan_eval.benchmarks.os.benchmark:OSInteraction",
    "db": "agentflan_eval.benchmarks.db.benchmark:Database",
    "webshop": "agentflan_eval.benchmarks.webshop.benchmark:WebShop",
    "mind2web": "agentflan_eval.benchmarks.mind2web.benchmark:Mind2Web",
    "alfworld": "agentflan_eval.benchmarks.alfworld.benchmark:ALFWorld",
    "kg": "agentflan_eval.benchmarks.kg.benchmark:KnowledgeGraph",
    "hotpotqa": "agentflan_eval.benchmarks.hotpotqa.benchmark:HotpotQA",
    "sciworld": "agentflan_eval.benchmarks.sciworld.benchmark:SciWorld",
    "teval": "agentflan_eval.benchmarks.teval.benchmark:TEval",
    "miniwob": "agentflan_eval.benchmarks.miniwob.benchmark:MiniWoB",
    "webarena": "agentflan_eval.benchmarks.webarena.benchmark:WebArena",
    "agent_h": "agentflan_eval.benchmarks.agent_h.benchmark:AgentH",
}


def task_names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> type[Benchmark]:
    if name not in REGISTRY:
        raise UnknownNameError("task", name, task_names())
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def suite_tasks(suite: str) -> list[str]:
    """Tasks of a suite, in registry order; ``all`` is every suite."""
    if suite == "all":
        return task_names()
    if suite not in SUITES:
        raise UnknownNameError("suite", suite, [*SUITES, "all"])
    return [n for n in REGISTRY if get(n).suite == suite]
