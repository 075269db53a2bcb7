"""Unpickling official data files without running what a pickle may name.

Some official files are pickles (Mind2Web's candidate ranks, AgentTuning's HotpotQA split). A pickle can
call any importable function while it loads, so these are read by unpicklers that admit only plain containers,
numpy scalars and arrays, and whatever package roots the caller names (pandas for a DataFrame)."""

from __future__ import annotations

import pickle
from typing import IO, Any

_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "slice", "complex", "bytearray", "object"}
# How protocol-2 pickles spell bytes and plain objects, and how numpy spells its scalars and arrays.
_OTHER = {
    ("_codecs", "encode"),
    ("copyreg", "_reconstructor"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


def admitted(module: str, name: str, roots: tuple[str, ...] = ()) -> bool:
    return (
        (module == "builtins" and name in _BUILTINS)
        or (module, name) in _OTHER
        or module.split(".")[0] in roots
    )


def refusal(module: str, name: str, roots: tuple[str, ...] = ()) -> pickle.UnpicklingError:
    allowed = ", ".join(("plain containers", "numpy scalars", *roots))
    return pickle.UnpicklingError(f"{module}.{name} is not admitted (only {allowed})")


class PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if admitted(module, name):
            return super().find_class(module, name)
        raise refusal(module, name)


def load_plain(fh: IO[bytes]) -> Any:
    """A pickle of dicts, lists, strings and numbers (numpy scalars included)."""
    return PlainUnpickler(fh).load()
