"""How an OS-interaction answer is judged, as AgentBench's OS task does it.

``match`` problems compare the answer (stripped) with the expected string, or search a regex.
``check`` problems run a chain: ``params = [answer]``; each script runs with ``params`` as its
arguments (``bash -c code -- *params`` or ``python3 -c code *params``), must exit 0, and its output
is appended to ``params`` -- so ``[null, integer-match]`` runs the problem's example command, then
compares the answer (argv[1]) with the example's output (argv[2]). The generic comparator files
(``scripts/<n>/check/*.py`` of THUDM/AgentTuning @ e33a45d, ``AgentBench.old/data/os_interaction``) are
not in the data copy; they are written here to decide as those do, and run in this process, so that
rescoring recomputes them from the stored answer and example output.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from agentflan_eval.benchmarks.common.sandbox import Sandbox
    from agentflan_eval.benchmarks.os.problems import OSProblem

# check/size-match.py's units, in its order: the first suffix that ends the string wins, so "4KB" is read as
# int("4K") * 1 and fails, as does any decimal ("4.0K", which ``du -h`` prints); both fail upstream too.
_UNITS = {
    "B": 1,
    "Byte": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "T": 1 << 40,
    "TB": 1 << 40,
    "P": 1 << 50,
    "PB": 1 << 50,
}


def _norm(s: str) -> str:
    return s.replace("\r\n", "\n").replace("\r", "\n").strip()


def _size(s: str) -> int:
    """``"4K"`` -> 4096, ``"12"`` -> 12; ValueError for what check/size-match.py cannot read."""
    s = s.strip()
    for unit, factor in _UNITS.items():
        if s.endswith(unit):
            return int(s[: -len(unit)]) * factor
    return int(s)


# name -> (answer, expected) -> passed; ``expected`` is the example command's output.
COMPARATORS: dict[str, Callable[[str, str], bool]] = {
    "check/integer-match.py": lambda a, e: int(a) == int(e),
    "check/string-match.py": lambda a, e: _norm(a) == _norm(e),
    "check/size-match.py": lambda a, e: _size(a) == _size(e),
    "check/in.py": lambda a, e: _norm(a) in _norm(e),
    "check/containing.py": lambda a, e: _norm(e) in _norm(a),
}


class CheckStep(BaseModel):
    """One script of a check chain, with the arguments it got and how it ended."""

    origin: str  # inline | example | comparator | reconstructed:<file>
    params: list[str]
    returncode: int
    output: str = ""
    comparator: str | None = None


def compare(name: str, params: Sequence[str]) -> int:
    """A comparator's exit status for ``argv[1:] = params``: 0 when it passes, 1 otherwise (also on bad input)."""
    try:
        return 0 if COMPARATORS[name](params[0], params[1]) else 1
    except (ValueError, IndexError, OverflowError):
        return 1


def run_checks(problem: OSProblem, answer: str | None, box: Sandbox) -> list[CheckStep]:
    """Run the check chain in the episode's sandbox; stops at the first failing script."""
    params, steps = [str(answer)], []
    for entry in problem.check or []:
        script = entry or problem.example
        if script is None:
            steps.append(CheckStep(origin="example (missing)", params=list(params), returncode=1))
            break
        origin = "example" if entry is None else script.origin
        if script.language == "comparator":
            step = CheckStep(
                origin=origin,
                params=list(params),
                returncode=compare(script.code, params),
                comparator=script.code,
            )
        else:
            argv = (
                ["python3", "-c", script.code, *params]
                if script.language == "python"
                else ["bash", "-c", script.code, "--", *params]
            )
            res = box.exec(argv)
            step = CheckStep(origin=origin, params=list(params), returncode=res.returncode, output=res.output)
        steps.append(step)
        if step.returncode != 0:
            break
        params.append(step.output)
    return steps


def verdict(problem: OSProblem, answer: str | None, steps: Sequence[CheckStep]) -> bool:
    """Whether the problem is solved; comparator steps are recomputed, sandbox steps read as recorded."""
    if answer is not None and problem.match_strip:  # the answer is read only by the two matchers
        answer = answer.strip()
    if problem.match is not None:
        return answer == problem.match
    if problem.match_regex is not None:
        return answer is not None and re.search(problem.match_regex, answer) is not None
    if problem.check is None or len(steps) != len(problem.check):
        return False
    return all((compare(s.comparator, s.params) if s.comparator else s.returncode) == 0 for s in steps)
