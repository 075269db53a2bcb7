"""AgentTuning's HotpotQA split, read from its official pickled files (``eval_heldout/hotpotQA/src/data/*.joblib``).

Each file is a pickled pandas DataFrame of 100 HotpotQA questions. It is unpickled only after the resolver has
matched its sha256 to the pinned value (``DataResolver.path`` does), and even then through an unpickler that
admits nothing but pandas, numpy and joblib classes. ``hard.joblib`` was written by pandas < 2 and names
``Int64Index``, which is read as today's ``pandas.Index``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from joblib.numpy_pickle import NumpyUnpickler  # type: ignore[import-untyped]

from agentflan_eval.benchmarks.common.safe_pickle import admitted, refusal
from agentflan_eval.errors import DataFormatError

_RENAMED = {("pandas.core.indexes.numeric", "Int64Index"): ("pandas", "Index")}
_ROOTS = ("pandas", "numpy", "joblib")


class _SplitUnpickler(NumpyUnpickler):
    def find_class(self, module: str, name: str) -> Any:
        module, name = _RENAMED.get((module, name), (module, name))
        if admitted(module, name, _ROOTS):
            return super().find_class(module, name)
        raise refusal(module, name, _ROOTS)


def load_split(path: Path) -> list[dict[str, Any]]:
    """The DataFrame's rows as plain dicts, each with its DataFrame index as ``df_index``."""
    with open(path, "rb") as fh:
        try:
            frame = _SplitUnpickler(str(path), fh, ensure_native_byte_order=True).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
            raise DataFormatError(path, None, f"not AgentTuning's pickled DataFrame ({e})") from None
    if not hasattr(frame, "to_dict"):
        raise DataFormatError(path, None, f"expected a pandas DataFrame, got {type(frame).__name__}")
    return [{"df_index": int(i), **_plain(row)} for i, row in zip(frame.index, frame.to_dict("records"))]


def _plain(value: Any) -> Any:
    """numpy arrays and scalars inside the cells as lists and Python values (as a JSON export has them)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
