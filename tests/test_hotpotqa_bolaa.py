"""HotpotQA as BOLAA's ReAct agent ran it in AgentTuning (eval_heldout/hotpotQA @ e33a45d).

The accept/reject cases and the halting points were derived from the original code: its ``parse_action`` /
``fuzzy_parse_action`` regexes (agent_arch.py l.26-47), ``is_halted`` (l.155-158) and the step (l.169-222),
run in a scratch copy with scripted replies; the first prompt is kept in tests/fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflan_eval.benchmarks.common.cl100k import count_tokens
from agentflan_eval.benchmarks.hotpotqa import bolaa
from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA
from agentflan_eval.benchmarks.hotpotqa.corpus import ParagraphCorpus
from agentflan_eval.benchmarks.hotpotqa.env import HotpotQAEnv
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.manifest import RunManifest
from agentflan_eval.model_zoo.prompt_formats import completion_text
from agentflan_eval.records import Action, EpisodeStatus, Message
from agentflan_eval.runner import run

FIXTURE = Path(__file__).parent / "fixtures" / "hotpotqa_first_prompt.txt"


@pytest.fixture(scope="module")
def bench(data_dir: Path) -> HotpotQA:
    return HotpotQA(RunConfig(data_dir=data_dir), DataResolver(data_dir, offline=True))


def _first_difference(a: str, b: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"differ at char {i}: {a[i - 40 : i + 40]!r} vs {b[i - 40 : i + 40]!r}"


def test_first_prompt_is_the_originals_character_by_character(tmp_path: Path, data_dir: Path) -> None:
    """The prompt of the first sample's first generation, as the run recorded what the model was sent,
    against the text AgentTuning's ReactAgent builds for it (easy.joblib row 0, ``_build_agent_prompt``
    after ``_think`` added ``\\nThought 1:``)."""
    expected = FIXTURE.read_text(encoding="utf-8")
    script = tmp_path / "replay.jsonl"
    script.write_text(json.dumps({"task": "hotpotqa", "replies": [" x", "Finish[x]"]}) + "\n")
    config = RunConfig(
        backend="replay", replay_file=script, tasks=["hotpotqa"], limit=1, output_dir=tmp_path / "runs"
    )
    store, _ = run(config.model_copy(update={"data_dir": data_dir, "report": False}))
    protocol = RunManifest.model_validate_json(store.manifest_path.read_text()).protocols["hotpotqa"]
    sent = protocol.first_prompt
    assert sent == expected, _first_difference(sent or "", expected)
    assert protocol.max_new_tokens == 256  # llms.py l.82, the run's default budget
    assert (
        expected.endswith("outside of the ring.\nThought 1:")
        and "Finish[yes]\n\n(END OF EXAMPLES)" in expected
    )


@pytest.mark.parametrize(
    ("reply", "name", "argument"),
    [
        ("Search[Milhouse]", "Search", "Milhouse"),
        (" Lookup[named after] ", "Lookup", "named after"),
        ("Search[ Leonid Levin ]", "Search", " Leonid Levin "),  # the argument is not stripped
        ("Finish[Richard Nixon].", "Finish", "Richard Nixon"),  # fallback: dots and spaces dropped
        (".Finish[yes].", "Finish", "yes"),
        ("Finish[x] because y", "Finish", "x"),
        ("Finish[a] and [b] then", "Finish", "a] and [b"),  # read up to the last "]"
        ("Finish[[x]]", "Finish", "[x]"),
        ("Search[Pisa]  .", "Search", "Pisa"),
    ],
)
def test_parser_accepts_what_the_original_accepts(reply: str, name: str, argument: str) -> None:
    a = bolaa.parse_action(reply)
    assert (a.name, a.argument, a.valid, a.raw) == (name, argument, True, reply)


@pytest.mark.parametrize(
    "reply",
    [
        "search[Milhouse]",  # the type is compared case-sensitively
        "lookup[named after]",
        "SEARCH[x]",
        "Search [Milhouse]",  # no space between the type and "["
        "Finish[]",  # the argument needs a character
        "Action 1: Search[Milhouse]",  # the reply must start with the type
        "I think Search[x]",
        "Google[x]",
        "Search(Milhouse)",
        "Search Milhouse",
        "",
    ],
)
def test_parser_rejects_what_the_original_rejects(reply: str) -> None:
    a = bolaa.parse_action(reply)
    assert (a.name, a.valid, a.raw) == ("invalid", False, reply)


def _env(bench: HotpotQA, pages: dict[str, list[str]] | None = None) -> HotpotQAEnv:
    sample = bench.load_samples()[0]  # easy: the Badr Hari question
    corpus = ParagraphCorpus(pages) if pages is not None else bench.search_backend
    env = HotpotQAEnv(sample.question, sample.answer, bench.examples, corpus)
    env.reset()
    return env


def _step(env: HotpotQAEnv, thought: str, action: str) -> tuple[str | None, str | None]:
    """One BOLAA step as the agent loop drives it: the Thought reply, then the Action reply."""
    cue = env.step(env.parse_reply(thought) or bolaa.parse_action(thought))
    assert env.parse_reply(action) is None  # the second reply of a step goes to the parser
    obs = env.step(bolaa.parse_action(action))
    return cue.text, obs.text if not obs.done else f"DONE {obs.status}: {obs.text}"


def test_a_step_is_a_thought_then_an_action_each_its_own_generation(bench: HotpotQA) -> None:
    env = _env(bench)
    thought = env.parse_reply(" I need to search Badr Hari.")
    assert thought == Action(
        name="think", argument="I need to search Badr Hari.", raw=" I need to search Badr Hari."
    )
    cue, obs = _step(env, " I need to search Badr Hari.", "Search[Badr Hari]")
    assert cue == "\nAction 1:"
    assert (
        obs is not None
        and obs.startswith("\nObservation 1: Badr Hari (Arabic:")
        and obs.endswith("\nThought 2:")
    )
    assert env.scratchpad.startswith(
        "\nThought 1: I need to search Badr Hari.\nAction 1: Search[Badr Hari]\n"
    )
    cue, obs = _step(env, "", "finish[Badr Hari]")  # an empty thought; a lower-case type
    assert obs == f"\nObservation 2: {bolaa.INVALID}\nThought 3:"
    assert env.scratchpad.endswith("\nThought 2: \nAction 2: finish[Badr Hari]" + obs)
    cue, obs = _step(env, "He is the one.", "Finish[Badr Hari]")
    assert obs == "DONE None: \nObservation 3: Answer is CORRECT" and env.info() == {
        "answer": "Badr Hari",
        "steps": 3,
    }


def test_search_and_lookup_observations(bench: HotpotQA) -> None:
    pages = {"Milhouse": ["Milhouse is a character.", " He is voiced by Pamela Hayden."]}
    env = _env(bench, pages)
    assert _step(env, "t", "Lookup[named after]")[1] == f"\nObservation 1: {bolaa.NO_LOOKUP}\nThought 2:"
    assert _step(env, "t", "Search[milhouse]")[1] == (
        "\nObservation 2: Milhouse is a character. He is voiced by Pamela Hayden.\nThought 3:"
    )
    assert _step(env, "t", "Lookup[VOICED]")[1] == (
        "\nObservation 3: (Result 1/1) Milhouse is a character. He is voiced by Pamela Hayden.\nThought 4:"
    )
    assert _step(env, "t", "Lookup[voiced]")[1] == "\nObservation 4: No More Results\nThought 5:"
    assert _step(env, "t", "Lookup[Nixon]")[1] == "\nObservation 5: No Results\nThought 6:"
    # no page to open: langchain's message with the search's (empty) list of titles
    assert (
        _step(env, "t", "Search[zzqx]")[1]
        == "\nObservation 6: Could not find [zzqx]. Similar: []\nThought 7:"
    )
    assert _step(env, "t", "Lookup[voiced]")[1] == f"\nObservation 7: {bolaa.NO_LOOKUP}\nThought 8:"


def test_a_query_that_is_not_a_title_opens_the_best_match_as_wikipedias_auto_suggest_did(
    bench: HotpotQA,
) -> None:
    env = _env(bench)
    obs = _step(env, "t", "Search[Badr Hari kick boxing career]")[1]
    assert obs is not None and obs.startswith("\nObservation 1: Badr Hari (Arabic:")


def test_halts_once_the_prompt_passes_1700_cl100k_tokens(
    bench: HotpotQA, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = [f" Sentence {i} about the Tower of Pisa and its many long bell chambers." for i in range(120)]
    env = _env(bench, {"Pisa": long, "Milhouse": ["Milhouse is a character."]})
    _, obs = _step(env, "t", "Search[Pisa]")  # as the original, halted before step 2: unfinished
    assert obs is not None and obs.startswith("DONE EpisodeStatus.CONTEXT_LIMIT: \nObservation 1: Sentence 0")
    assert count_tokens(env.prompt()) > bolaa.MAX_PROMPT_TOKENS and env.answer is None
    # the bound is strict: a prompt of exactly the limit goes on
    env = _env(bench, {"Milhouse": ["Milhouse is a character."]})
    _step(env, "t", "Search[Milhouse]")
    at = count_tokens(env.prompt().removesuffix("\nThought 2:"))
    for limit, halted in ((at, False), (at - 1, True)):
        monkeypatch.setattr(bolaa, "MAX_PROMPT_TOKENS", limit)
        env = _env(bench, {"Milhouse": ["Milhouse is a character."]})
        _, obs = _step(env, "t", "Search[Milhouse]")
        assert obs is not None and obs.startswith("DONE EpisodeStatus.CONTEXT_LIMIT") is halted


def test_no_opening_prompt_is_over_the_limit(bench: HotpotQA) -> None:
    """The original checks the limit before step 1 too; no question of the 300 comes near it."""
    worst = max(count_tokens(completion_text(bench.make_env(s).reset())) for s in bench.load_samples())
    assert 600 < worst < bolaa.MAX_PROMPT_TOKENS


def test_ten_steps_then_halted(bench: HotpotQA) -> None:
    env = _env(bench, {"Milhouse": ["Milhouse is a character."]})
    outcomes = [_step(env, "t", "Lookup[x]")[1] for _ in range(10)]
    assert all(o is not None and o.endswith(f"\nThought {i + 2}:") for i, o in enumerate(outcomes[:9]))
    assert outcomes[9] == f"DONE EpisodeStatus.TURN_LIMIT: \nObservation 10: {bolaa.NO_LOOKUP}"


def test_fit_prompt_joins_replies_as_the_scratchpad_does(bench: HotpotQA) -> None:
    """What the model is sent at each turn equals the original's ``_build_agent_prompt`` (env.prompt())."""
    env = _env(bench)
    messages = env.reset()
    for reply in ["  I should search.  ", "Search[Badr Hari]\n", "\nignored", " Finish[Badr Hari]"]:
        assert completion_text(bench.fit_prompt(messages)) == env.prompt()
        obs = env.step(env.parse_reply(reply) or bench.parse_action(reply))
        messages += [Message(role="assistant", content=reply)] + (
            [] if obs.done else [Message(role="user", content=obs.text or "")]
        )
    assert obs.done and env.answer == "Badr Hari"


def test_score_is_f1_and_success_is_exact_match(tmp_path: Path, data_dir: Path) -> None:
    replies = {
        "easy-0": [" Search him.", "Search[Badr Hari]", " Found.", "Finish[Hari Badr]"],  # F1 1, not EM
        "medium-0": ["", "Finish[Arthur's Magazine.]", "unused"],  # EM after normalisation
        "hard-4367": ["t", "Search [VIVA Media]"] * 10,  # invalid actions until the step limit
    }
    script = tmp_path / "replay.jsonl"
    script.write_text(
        "".join(
            json.dumps({"task": "hotpotqa", "sample_id": k, "replies": v}) + "\n" for k, v in replies.items()
        )
    )
    config = RunConfig(
        backend="replay", replay_file=script, tasks=["hotpotqa"], limit=3, output_dir=tmp_path / "r"
    )
    store, results = run(config.model_copy(update={"data_dir": data_dir, "report": False}))
    eps = {e.sample_id: e for e in store.episodes("hotpotqa")}
    easy, medium, hard = eps["easy-0"], eps["medium-0"], eps["hard-4367"]
    assert (easy.score.value, easy.score.success, easy.status) == (1.0, False, EpisodeStatus.COMPLETED)
    assert [s.action.name for s in easy.steps] == ["think", "Search", "think", "Finish"]
    assert (
        easy.steps[3].observation == "\nObservation 2: Answer is INCORRECT"
    )  # the original's own EM verdict
    assert (medium.score.value, medium.score.success, len(medium.steps)) == (1.0, True, 2)
    assert (hard.status, len(hard.steps), hard.invalid_actions, hard.score.value) == (
        EpisodeStatus.TURN_LIMIT,
        20,
        10,
        0.0,
    )
    assert results.tasks["hotpotqa"].score == pytest.approx(2 / 3)
