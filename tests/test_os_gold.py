"""Every OS problem's own example solution, replayed through gold_agent, the sandbox and the judge."""

from __future__ import annotations

import json

import pytest

from agentflan_eval.benchmarks.common.sandbox.image import built_image
from agentflan_eval.benchmarks.os.benchmark import OSInteraction
from agentflan_eval.benchmarks.os.gold import answer_line, os_gold_agent
from agentflan_eval.benchmarks.os.problems import HOST_VIEW_UNSOLVABLE, UNSOLVABLE, OSProblem
from agentflan_eval.records import Message, Score, Step


def replay(bench: OSInteraction, problem: OSProblem) -> tuple[Score, dict]:
    """gold_agent's replies through the environment and the scorer, as the agent loop would apply them."""
    agent = bench.gold_agent(problem)
    assert agent is not None, problem.id
    env = bench.make_env(problem)
    try:
        messages, steps = env.reset(), []
        for _ in range(bench.max_turns):
            reply = agent(messages)
            action = bench.parse_action(reply)
            obs = env.step(action)
            steps.append(Step(reply=reply, action=action, observation=obs.text))
            messages = [*messages, Message(role="assistant", content=reply)]
            if obs.done:
                break
            messages.append(Message(role="user", content=obs.text or ""))
        info = env.info()
    finally:
        env.close()
    return bench.score(problem, steps, info), {"steps": [s.observation for s in steps], **info}


def test_gold_replies_follow_the_original_action_format(os_bench: OSInteraction) -> None:
    problems = {p.id: p for p in os_bench.problems}
    q19 = os_gold_agent(problems["os-4-Q19-0"])
    assert q19 is not None
    first = q19([Message(role="user", content="Now, I will start a new problem in a new OS. ...")])
    assert os_bench.parse_action(first).name == "bash"
    assert os_bench.parse_action(first).argument == problems["os-4-Q19-0"].example.code.strip()  # type: ignore[union-attr]
    last = os_bench.parse_action(q19([Message(role="user", content="The output of the OS:\n\n3\n")]))
    assert (last.name, last.argument) == ("answer", "3")
    fix = os_gold_agent(problems["os-6-new-3"])  # check-only, the example prints nothing
    assert fix is not None
    assert (
        os_bench.parse_action(fix([Message(role="user", content="The output of the OS is empty.")])).name
        == "finish"
    )
    n41 = os_gold_agent(problems["os-4-N41-0"])  # a match without an example answers the expected string
    assert n41 is not None and os_bench.parse_action(n41([])).argument == "no"


@pytest.mark.parametrize(
    ("output", "line"),
    [
        ("3\n", "3"),
        ("love\njack@1ee6795c23e3:~$ \n", "love"),
        ("find: warning: you have specified the global option -maxdepth after...\n8\n", "8"),
        ("", ""),
    ],
)
def test_answer_line(output: str, line: str) -> None:
    assert answer_line(output) == line


@pytest.mark.slow
def test_every_gold_solution_solves_its_problem(os_bench: OSInteraction) -> None:
    """>= 99% of the problems are solved by their own example; the listed exceptions fail for the reasons given
    (the process counts only nearly always: `ps` may or may not see the `wc` its pipeline starts beside it).
    Without the system image, the host-view list is excused too."""
    unsolvable = UNSOLVABLE if built_image() is not None else {**UNSOLVABLE, **HOST_VIEW_UNSOLVABLE}
    results = {p.id: replay(os_bench, p) for p in os_bench.load_samples()}
    solvable = [pid for pid in results if pid not in unsolvable]
    failed = {pid: results[pid][1] for pid in solvable if not results[pid][0].success}
    for pid, info in failed.items():
        print(f"{pid} fails: {json.dumps(info)[:1500]}")
    solved = len(solvable) - len(failed)
    print(f"solved {solved}/{len(solvable)} solvable problems; {len(unsolvable)} listed as unsolvable")
    print(
        "listed as unsolvable and solved this time:", [pid for pid in unsolvable if results[pid][0].success]
    )
    assert solved >= 0.99 * len(solvable), sorted(failed)
