"""The gold agent of an OS problem: AgentBench's own example solution, replayed as model replies.

It runs ``evaluation.example`` (when the problem has one) in the episode's shell with ``Act: bash``,
then answers with that command's output as the shell showed it (``Act: answer(...)``), or says
``Act: finish`` when a check-only problem's example prints nothing (it changed the state the checks
inspect). A ``match`` problem without an example answers its expected string. An ``answer`` is read
only up to the end of its line (AgentBench's ``Act:\\s*(.+)``), so a multi-line output is answered
by its last line (``answer_line``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agentflan_eval.benchmark import GoldAgent
from agentflan_eval.benchmarks.os.problems import OSProblem
from agentflan_eval.records import Message

_PROMPT = re.compile(r"[\w.-]+@[\w.-]+:[^\n]*[#$]")
OUTPUT_PREFIX = "The output of the OS:\n\n"
EMPTY_OUTPUT = "The output of the OS is empty."


def shown_output(observation: str) -> str:
    """The command output inside an observation (as ``benchmark.observation`` wrote it)."""
    return "" if observation == EMPTY_OUTPUT else observation.removeprefix(OUTPUT_PREFIX)


def answer_line(output: str) -> str:
    """What a careful reader answers from an output: its last line, past the warnings a command writes to
    the terminal first (``find: warning: ...``) and before the prompt of a shell the problem opened
    (``jack@host:~$``, after ``su - jack``); ``Act: answer(...)`` holds one line."""
    lines = [ln.strip() for ln in output.strip().splitlines()]
    lines = [ln for ln in lines if ln and not _PROMPT.fullmatch(ln)]
    return lines[-1] if lines else ""


def os_gold_agent(problem: OSProblem) -> GoldAgent | None:
    """None when the problem has neither an example to run nor an answer to give (a regex match)."""
    example = problem.example
    if example is None and problem.match is None and not problem.check:
        return None

    def reply(messages: Sequence[Message]) -> str:
        ran = bool(messages) and messages[-1].content.startswith("The output of the OS")
        if example is not None and not ran:
            code = example.code.strip("\n")
            return f"Think: I run the example solution.\n\nAct: bash\n\n```bash\n{code}\n```"
        if example is None:
            if problem.match is not None:
                return f"Think: I know the answer.\n\nAct: answer({problem.match})"
            return "Think: nothing to do.\n\nAct: finish"
        out = answer_line(shown_output(messages[-1].content))
        if not out and problem.match is None and None not in (problem.check or []):
            return "Think: the example solution has done it.\n\nAct: finish"
        return f"Think: the example solution printed the answer.\n\nAct: answer({out})"

    return reply
