"""OS Interaction (held-in) under AgentTuning's frozen AgentBench (``AgentBench.old``).

Paper: Liu et al. 2023 (AgentBench); AgentTuning (Zeng et al. 2023) evaluates its ``std`` split.
Data: the 144 problems of ``agentbench_old/os_interaction/data/{1..7}`` (7 + 5 + 6 + 19 + 10 + 9 + 88).
Protocol: AgentBench's instruction and one-shot dialogue, then "Now, I will start a new problem in a
new OS. My problem is: ..."; each reply is ``Think: ...`` plus ``Act: bash`` with a ```bash block,
``Act: answer(...)`` or ``Act: finish``; a reply without a valid action ends the episode unanswered;
at most 8 rounds. Each episode gets a fresh sandbox (``agentflan_eval.benchmarks.common.sandbox``: bubblewrap over a
copy-on-write view of the host system, no network); ``create.init`` runs there first, ``start`` in
the episode's login shell, then every bash action in that same shell; output over 800 characters is
cut to 780 plus "[truncated because the output is too long]". Judging (``ostask.judge``): ``match``
or the check chain, run in the episode's sandbox after the last turn. Metric: success rate, also
per data file (AgentBench reports both).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from agentflan_eval.benchmark import Benchmark, Environment, GoldAgent, Observation, Sample
from agentflan_eval.benchmarks.common.agentbench import AgentBenchProtocol
from agentflan_eval.benchmarks.os.gold import os_gold_agent
from agentflan_eval.benchmarks.os.judge import CheckStep, run_checks, verdict
from agentflan_eval.benchmarks.os.problems import (
    DATA_ROOT,
    HOST_VIEW_UNSOLVABLE,
    STD_FILES,
    UNSOLVABLE,
    OSProblem,
    load_problems,
    reconstructed_files,
)
from agentflan_eval.data import DataFile
from agentflan_eval.records import Action, Deviation, EpisodeStatus, Message, Score, Step

INSTRUCTION = """You are an assistant that will act like a person, I'will play the role of linux(ubuntu) operating system. Your goal is to implement the operations required by me or answer to the question proposed by me. For each of your turn, you should first think what you should do, and then take exact one of the three actions: "bash", "finish" or "answer". 

1. If you think you should execute some bash code, take bash action, and you should print like this:

Think: put your thought here.

Act: bash

```bash
# put your bash code here
```

2. If you think you have finished the task, take finish action, and you should print like this:

Think: put your thought here.

Act: finish

3. If you think you have got the answer to the question, take answer action, and you should print like this:

Think: put your thought here.

Act: answer(Your answer to the question should be put in this pair of parentheses)

If the output is too long, I will truncate it. The truncated output is not complete. You have to deal with the truncating problem by yourself. Attention, your bash code should not contain any input operation. Once again, you should take only exact one of the three actions in each turn.

"""  # AgentBench's text, trailing space included
ONE_SHOT = (
    'tell me how many files are in the directory "/etc"?',
    "Think: To count the files in /etc, I need to print all the files in it.\n\nAct: bash\n\n```bash\nls /etc\n```",
    (
        "The output of the OS:\ncpi cron.hourly fuse.conf iproute2 lvm networkd-dispatcher protocols selinux "
        "tmpfiles.d [truncated because the output is too long]"
    ),
    (
        "Think: The output has been truncated because it is too long, so I need to count files by script "
        "directly.\n\nAct: bash\n\n```bash\nls -1 /etc | wc -l\n```"
    ),
    "The output of the OS:\n220",
    "Think: Now I get the answer, it is 220.\n\nAct: answer(220)",
)
NEW_PROBLEM = "Now, I will start a new problem in a new OS. My problem is:\n\n"
_ACT = re.compile(r"Act:\s*(.+)")
_BASH_BLOCK = re.compile(r"```bash\n(.*?)\n```", re.DOTALL)


def observation(output: str) -> str:
    if len(output) > 800:
        output = output[:780] + "\n[truncated because the output is too long]"
    return f"The output of the OS:\n\n{output}" if output else "The output of the OS is empty."


class OSEnv(Environment):
    def __init__(self, problem: OSProblem):
        from agentflan_eval.benchmarks.common.sandbox import Sandbox
        from agentflan_eval.benchmarks.common.sandbox.image import built_image

        self.problem = problem
        self.box = Sandbox(image=built_image())
        self.answer: str | None = None
        self.init_returncodes: list[int] = []
        self._verdict: dict[str, Any] | None = None

    def reset(self) -> list[Message]:
        self.box.start()
        self.box.shell("true")  # AgentBench opened the login shell first, so init's ~/.bashrc is not read yet
        for script in self.problem.init:
            argv = (
                ["python3", "-c", script.code] if script.language == "python" else ["bash", "-c", script.code]
            )
            self.init_returncodes.append(self.box.exec(argv).returncode)
        if self.problem.start is not None:
            self.box.shell(self.problem.start.code)
        turns = [Message(role="user", content=INSTRUCTION + "Now, my problem is:\n\n" + ONE_SHOT[0])]
        turns += [
            Message(role="assistant" if i % 2 == 0 else "user", content=t) for i, t in enumerate(ONE_SHOT[1:])
        ]
        return [*turns, Message(role="user", content=NEW_PROBLEM + self.problem.description)]

    def step(self, action: Action) -> Observation:
        if action.name == "bash":
            if not self._alive():  # e.g. killed by the process watchdog: the episode ends unanswered
                return Observation(done=True, status=EpisodeStatus.ENV_ERROR)
            text = observation(self.box.shell(action.argument).text)
            if not self._alive():  # the command killed the sandbox (`kill -9 -1`): nothing left to judge
                return Observation(text=text, done=True, status=EpisodeStatus.ENV_ERROR)
            return Observation(text=text)
        if action.name in ("answer", "finish"):
            self.answer = action.argument if action.name == "answer" else None
            return Observation(done=True, status=None if self._alive() else EpisodeStatus.ENV_ERROR)
        return Observation(
            done=True, status=EpisodeStatus.INVALID_ACTION
        )  # AgentBench stops here, unanswered

    def _alive(self) -> bool:
        """Whether the sandbox still runs commands; a killed keeper takes a moment to end what we wait on."""
        from agentflan_eval.benchmarks.common.sandbox import SandboxError

        deadline = time.monotonic() + 2.0
        while self.box.running:
            try:
                if self.box.exec(["true"], timeout=10).returncode == 0:
                    return True
            except SandboxError:
                return False
            if time.monotonic() > deadline:
                return True  # running, but too busy to start a command (e.g. at its process cap)
            time.sleep(0.1)
        return False

    def info(self) -> dict[str, Any]:
        """Judge in the still-running sandbox: the checks read the state the episode left."""
        if self._verdict is None:
            running = self.box.running
            steps = run_checks(self.problem, self.answer, self.box) if self.problem.check and running else []
            self._verdict = {
                "answer": self.answer,
                "init_returncodes": self.init_returncodes,
                "checks": [s.model_dump() for s in steps],
                "sandbox_error": None if running else (self.box.killed or "sandbox not running"),
            }
        return self._verdict

    def close(self) -> None:
        self.box.close()


def parse_os_action(reply: str) -> Action:
    """AgentBench's rule: the last ``Act:`` line that names bash, finish or answer(...) wins."""
    for act in reversed(_ACT.findall(reply)):
        low = act.lower()
        if low.startswith("bash"):
            return Action(name="bash", argument="\n\n".join(_BASH_BLOCK.findall(reply)), raw=reply)
        if low.startswith("finish"):
            return Action(name="finish", raw=reply)
        if low.startswith("answer"):
            content = act[6:].strip()
            left, right = content.find("("), content.rfind(")")
            if left != -1 and right != -1:
                return Action(name="answer", argument=content[left + 1 : right], raw=reply)
    return Action(name="invalid", valid=False, raw=reply)


class OSInteraction(AgentBenchProtocol, Benchmark):
    name = "os"
    suite = "held-in"
    metric = "success rate"
    scale = 1.0
    max_turns = 8
    n_standard = 144
    # AgentBench v0.1 dropped a problem whose container failed to start; errors while judging counted as wrong
    errored_left_out = "start"
    data_files = tuple(
        DataFile(f"{DATA_ROOT}/{f}", f"THUDM/AgentTuning AgentBench.old/data/os_interaction/data/{f}")
        for f in STD_FILES
    )
    paper = "Liu et al. 2023 (AgentBench); protocol: AgentTuning (Zeng et al. 2023)"

    def unavailable(self) -> str | None:
        from agentflan_eval.benchmarks.common.sandbox import sandbox_unavailable

        return super().unavailable() or sandbox_unavailable()

    @cached_property
    def problems(self) -> list[OSProblem]:
        return load_problems({rel: self.data.path(f) for rel, f in zip(STD_FILES, self.data_files)})

    def load_samples(self) -> list[Sample]:
        return [p for p in self.problems if p.skip is None]

    def deviations(self) -> list[Deviation]:
        skipped = [p for p in self.problems if p.skip]
        adapted = [p for p in self.problems if p.note]
        files = sorted(reconstructed_files(self.problems))
        out = [self._system_deviation(), *self._unsolvable_deviations()]
        out += [
            Deviation(
                task=self.name,
                what="/proc/meminfo (`free`) shows the sandbox's memory cap, all of it free, and never changes; "
                "AgentBench's container showed the host's memory",
                why="the host's memory moves between the episode's command and the checker's re-run of the "
                "example with the machine's other work",
            ),
            Deviation(
                task=self.name,
                what="shell output is returned without the prompt and terminal control codes; "
                "a command still running after 10 s gets Ctrl-C",
                why="AgentBench returned whatever came within 5 s and left the command running",
            ),
            Deviation(
                task=self.name,
                what=f"{len(files)} upstream script files re-implemented, not copied: {', '.join(files)}, and "
                "the comparators check/*-match.py; they decide as the originals on the originals' inputs "
                "(tests/test_os_checks.py), quirks kept; random init content differs from run to run, as there",
                why="the data copy excludes code",
            ),
        ]
        out += [
            Deviation(task=self.name, what=f"{p.id} adapted: {p.note}", why="no network") for p in adapted
        ]
        if skipped:
            out.append(
                Deviation(
                    task=self.name,
                    what=f"{len(skipped)} of {len(self.problems)} problems skipped: "
                    + "; ".join(f"{p.id} ({p.skip})" for p in skipped),
                    why="cannot run offline",
                )
            )
        return out

    def _system_deviation(self) -> Deviation:
        from agentflan_eval.benchmarks.common.sandbox.image import (
            DOCKERFILE_PACKAGES,
            EXTRA_PACKAGES,
            IMAGE_ENV,
            SUITE,
            built_image,
        )

        image = built_image()
        if image is not None:
            return Deviation(
                task=self.name,
                what=f"each problem runs in a bubblewrap sandbox over a copy-on-write view of a Debian {SUITE} "
                f"image (the Dockerfile's {' '.join(DOCKERFILE_PACKAGES)} plus "
                f"{' '.join(EXTRA_PACKAGES)}) instead of AgentBench's Ubuntu docker image; no network",
                why="no Docker, and only Debian's archive is reachable; paths, sizes and counts of system "
                "files differ from Ubuntu's",
            )
        return Deviation(
            task=self.name,
            what="each problem runs in a bubblewrap sandbox over a copy-on-write view of THIS MACHINE's "
            "/usr, /etc, /var (no network) instead of AgentBench's Ubuntu docker image: answers about system "
            f"files depend on the host and can change while it works ({', '.join(sorted(HOST_VIEW_UNSOLVABLE))} "
            "cannot be solved there)",
            why=f"no system image built: run `python -m agentflan_eval.benchmarks.common.sandbox.image` "
            f"(or set {IMAGE_ENV})",
        )

    def _unsolvable_deviations(self) -> list[Deviation]:
        return [
            Deviation(task=self.name, what=f"{pid} cannot be solved even by its own example: {why}",
                      why="as in AgentBench's container; the problem is kept and counts as in the original")
            for pid, why in UNSOLVABLE.items()
        ]  # fmt: skip

    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, OSProblem)
        return OSEnv(sample)

    def parse_action(self, reply: str) -> Action:
        return parse_os_action(reply)

    def gold_agent(self, sample: Sample) -> GoldAgent | None:
        assert isinstance(sample, OSProblem)
        return os_gold_agent(sample)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        assert isinstance(sample, OSProblem)
        answer = env_info.get("answer")
        checks = [CheckStep.model_validate(c) for c in env_info.get("checks", [])]
        ok = verdict(sample, answer, checks)
        return Score(value=float(ok), success=ok, details={"answer": answer, "expected": sample.match})
