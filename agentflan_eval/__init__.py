"""agentflan_eval: an evaluation harness for LLM agents on the Agent-FLAN benchmarks.

Importing this package is cheap: torch, transformers and every benchmark load lazily.

``benchmarks/``, ``model_zoo/`` and ``finetune/`` sit at the repository's top level (the user's layout)
and are reached as ``agentflan_eval.benchmarks`` etc. through symbolic links in this folder, which
Python, mypy, editors and setuptools all follow; nothing installs a generic top-level name.
"""

from __future__ import annotations

__version__ = "0.1.0"
