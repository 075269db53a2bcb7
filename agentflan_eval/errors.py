"""User-facing errors: the CLI prints each as one line and exits non-zero."""

from __future__ import annotations

import difflib


class AgentFlanError(Exception):
    """An error caused by the user's input or environment, shown without a traceback."""


class UnknownNameError(AgentFlanError):
    def __init__(self, kind: str, name: str, valid: list[str]):
        close = difflib.get_close_matches(name, valid, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"unknown {kind} {name!r}.{hint} Valid: {', '.join(valid)}")


class DataMissingError(AgentFlanError):
    pass


class DataChecksumError(AgentFlanError):
    """A data file whose sha256 or size is not the pinned one: never used."""


class DataFormatError(AgentFlanError):
    def __init__(self, path: object, line: int | None, problem: str):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"corrupt data file {where}: {problem}")


class ModelLoadError(AgentFlanError):
    pass


class BackendUnavailableError(AgentFlanError):
    pass


class MissingDependencyError(AgentFlanError):
    def __init__(self, package: str, extra: str | None = None, why: str = ""):
        how = f"pip install 'agentflan-eval[{extra}]'" if extra else f"pip install {package}"
        super().__init__(
            f"{package} is not installed{(' (' + why + ')') if why else ''}; install it with: {how}"
        )
