"""agentflan_eval: an evaluation harness for LLM agents on the Agent-FLAN benchmarks.

Importing this package is cheap: torch, transformers and every benchmark load lazily.
"""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

# In a source checkout benchmarks/, model_zoo/ and finetune/ sit beside this folder; an installed
# wheel maps them inside it (pyproject package-dir). Extending __path__ makes both layouts import as
# agentflan_eval.benchmarks etc. without installing generic top-level names into site-packages.
_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "benchmarks")) and _os.path.isfile(
    _os.path.join(_root, "benchmarks", "__init__.py")
):
    __path__.append(_root)  # type: ignore[name-defined]
