"""Context overflow as the originals handled it (docs/original_protocols.md §2), and prompt formats (§3):
TRUNCATE_LEFT cuts a prompt from the left and the episode goes on, END_EPISODE ends it as context_limit,
AgentBench.old's held-in prompts have no system block, HotpotQA's is one raw completion."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import ModuleType

import pytest

from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.base import GenerationRequest, fit_context
from agentflan_eval.backends.hf import HFBackend
from agentflan_eval.backends.replay import ReplayBackend
from agentflan_eval.benchmarks.db.benchmark import Database
from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA
from agentflan_eval.benchmarks.miniwob.benchmark import MiniWoB
from agentflan_eval.benchmarks.sciworld.benchmark import INSTRUCTION as SCIWORLD_INSTRUCTION
from agentflan_eval.benchmarks.sciworld.benchmark import SciWorld
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.model_resolve import resolve
from agentflan_eval.model_zoo.chat_templates import get_template
from agentflan_eval.model_zoo.prompt_formats import render
from agentflan_eval.protocols import backend_deviations
from agentflan_eval.records import (
    EpisodeRecord,
    EpisodeStatus,
    FinishReason,
    GenerationConfig,
    Message,
    Overflow,
    PromptFormat,
    RunManifest,
)
from agentflan_eval.runner import run
from agentflan_eval.scoring import task_result

U1_A1_U2 = [
    Message(role="user", content="U1"),
    Message(role="assistant", content="A1"),
    Message(role="user", content="U2"),
]
# FastChat v0.2.31's llama-2 conversation, worked by hand from conversation.py l.124-139 (docs §3.1):
# ret = "[INST] "; i=0: += "U1 "; i=1: += "[/INST]" + " " + "A1" + sep2 (" </s><s>"); i=2: += "[INST]" + " " +
# "U2" + sep (" "); the final None message: += "[/INST]". TGI's tokenizer then put BOS in front, which our
# llama-2 templates write as a leading "<s>".
FASTCHAT_NO_SYSTEM = "[INST] U1 [/INST] A1 </s><s>[INST] U2 [/INST]"
FASTCHAT_AGENTLM = (
    "[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"
    "U1 [/INST] A1 </s><s>[INST] U2 [/INST]"
)


# -- prompt formats -----------------------------------------------------------------------------------


def test_llama2_renders_as_fastchat_with_and_without_the_system_prompt() -> None:
    agentlm, llama2 = get_template("agentlm"), get_template("llama2")
    assert render(agentlm, U1_A1_U2, PromptFormat.CHAT_NO_SYSTEM) == "<s>" + FASTCHAT_NO_SYSTEM
    assert render(agentlm, U1_A1_U2, PromptFormat.CHAT) == "<s>" + FASTCHAT_AGENTLM
    assert render(llama2, U1_A1_U2, PromptFormat.CHAT_NO_SYSTEM) == "<s>" + FASTCHAT_NO_SYSTEM
    # an empty reply (AgentBench.old strips every turn) is FastChat's bare tag: "[INST] U1 " + "[/INST]" + ...
    empty = [U1_A1_U2[0], Message(role="assistant", content=" \n"), U1_A1_U2[2]]
    assert render(agentlm, empty, PromptFormat.CHAT_NO_SYSTEM) == "<s>[INST] U1 [/INST][INST] U2 [/INST]"
    # a task's own system text opens the first user turn instead of a <<SYS>> block
    with_system = [Message(role="system", content="S"), *U1_A1_U2]
    assert render(llama2, with_system, PromptFormat.CHAT_NO_SYSTEM) == "<s>[INST] S\n\nU1 [/INST]" + (
        " A1 </s><s>[INST] U2 [/INST]"
    )
    chatml = render(get_template("chatml"), with_system, PromptFormat.CHAT_NO_SYSTEM)
    assert chatml.startswith("<|im_start|>user\nS\n\nU1<|im_end|>") and "system" not in chatml


def test_agentlm_held_in_prompt_has_no_system_block_held_out_ones_do(data_dir: Path) -> None:
    config, data = RunConfig(data_dir=data_dir), DataResolver(data_dir)
    db = Database(config, data)
    env = db.make_env(db.load_samples()[0])
    try:
        opening = db.fit_prompt(env.reset())
    finally:
        env.close()
    agentlm = get_template("agentlm")
    held_in = render(agentlm, opening, db.prompt_format)
    assert db.prompt_format is PromptFormat.CHAT_NO_SYSTEM
    assert held_in.startswith("<s>[INST] " + opening[0].content.strip()[:40]) and "<<SYS>>" not in held_in
    sciworld = [
        Message(role="user", content=SCIWORLD_INSTRUCTION),
        Message(role="assistant", content="Ok."),
        Message(role="user", content="The preceding task has ended. Now, I will start a new task."),
    ]
    for bench in (SciWorld, MiniWoB):
        assert bench.prompt_format is PromptFormat.CHAT
        text = render(agentlm, sciworld, bench.prompt_format)
        assert text.startswith(
            "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>"
        )


def test_hotpotqa_prompt_is_one_raw_completion(data_dir: Path, tiny_model_dir: Path) -> None:
    bench = HotpotQA(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    env = bench.make_env(bench.load_samples()[0])
    opening = env.reset()  # ends in "\nThought 1:"; a step is a Thought reply, then an Action reply
    later = [*opening, Message(role="assistant", content="x"), Message(role="user", content="\nAction 1:")]
    later += [Message(role="assistant", content="Search[y]")]
    later.append(Message(role="user", content="\nObservation 1: z\nThought 2:"))
    later = bench.fit_prompt(later)
    hf = HFBackend(resolve(str(tiny_model_dir)), chat_template="agentlm", prefix_cache=False)
    request = GenerationRequest(messages=later, prompt_format=bench.prompt_format)
    assert hf.render(request) == opening[0].content + " x\nAction 1: Search[y]\nObservation 1: z\nThought 2:"
    assert hf.encoder.encode(later, PromptFormat.COMPLETION) == hf.tokenizer(hf.render(request))["input_ids"]
    assert "[INST]" not in hf.render(request) and "[INST]" in hf.render_example(later)


# -- context overflow -------------------------------------------------------------------------------


def test_fit_context_keeps_the_newest_tokens() -> None:
    ids = list(range(10))
    cut = GenerationRequest(messages=[], overflow=Overflow.TRUNCATE_LEFT)
    assert fit_context(ids, cut, context_length=8, max_new_tokens=3) == ([5, 6, 7, 8, 9], 5)
    assert fit_context(ids, cut, context_length=13, max_new_tokens=3) == (ids, 0)  # fits: untouched
    end = GenerationRequest(messages=[], overflow=Overflow.END_EPISODE)
    assert fit_context(ids, end, context_length=8, max_new_tokens=3) == (ids, 0)
    assert fit_context(ids, cut, context_length=8, max_new_tokens=8) == (ids, 0)  # no room for any prompt


def test_benchmarks_resolve_their_rule_for_the_backend(data_dir: Path) -> None:
    config, data = RunConfig(data_dir=data_dir), DataResolver(data_dir)
    assert Database(config, data).request_overflow() is Overflow.TRUNCATE_LEFT
    assert MiniWoB(config, data).request_overflow() is Overflow.TRUNCATE_LEFT
    assert SciWorld(config, data).request_overflow() is Overflow.TRUNCATE_LEFT  # TGI truncate 4000 behind it
    assert HotpotQA(config, data).request_overflow() is Overflow.END_EPISODE  # BOLAA sent no truncate


class _EndEpisodeDB(Database):
    overflow = Overflow.END_EPISODE


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_hf_truncates_a_held_in_prompt_and_the_episode_goes_on(
    data_dir: Path, tiny_model_dir: Path, prefix_cache: bool
) -> None:
    """The tiny model has 160 positions and DB replies get 128: each prompt keeps its newest 32 tokens."""
    config, data = RunConfig(data_dir=data_dir), DataResolver(data_dir)
    hf = HFBackend(resolve(str(tiny_model_dir)), chat_template="agentlm", prefix_cache=prefix_cache)
    bench = Database(config, data)
    sample = bench.load_samples()[0]
    env = bench.make_env(sample)
    try:
        opening = bench.fit_prompt(env.reset())
    finally:
        env.close()
    full = len(hf.encoder.encode(opening, PromptFormat.CHAT_NO_SYSTEM))
    assert full > 160
    done: list[EpisodeRecord] = []
    try:
        run_episodes(bench, [sample], hf, GenerationConfig(), 1, done.append)
        (rec,) = done
        assert rec.status is not EpisodeStatus.CONTEXT_LIMIT and rec.steps
        first = rec.steps[0]
        assert first.truncated_tokens == full - (160 - 128) and first.prompt_tokens == 32
        assert all(s.truncated_tokens > 0 and s.prompt_tokens == 32 for s in rec.steps)
        result = task_result(bench, done)
        assert result.truncated_prompts == len(rec.steps)

        ended: list[EpisodeRecord] = []
        run_episodes(_EndEpisodeDB(config, data), [sample], hf, GenerationConfig(), 1, ended.append)
        assert ended[0].status is EpisodeStatus.CONTEXT_LIMIT and not ended[0].steps
        assert task_result(bench, ended).truncated_prompts == 0
    finally:
        hf.close()


# -- vLLM, against the stand-in engine of test_vllm_backend ----------------------------------------------


def test_vllm_truncates_from_the_left_under_truncate_left(
    fake_vllm: ModuleType, tiny_model_dir: Path
) -> None:
    from agentflan_eval.backends.vllm_backend import VLLMBackend
    from agentflan_eval.backends.vllm_options import VLLMOptions

    backend = VLLMBackend(resolve(str(tiny_model_dir)), VLLMOptions(max_model_len=100), "agentlm")
    try:
        messages = [Message(role="user", content="word " * 300)]
        full = backend.encoder.encode(messages, PromptFormat.CHAT_NO_SYSTEM)
        config = GenerationConfig(max_new_tokens=40)
        cut, ended = backend.generate(
            [
                GenerationRequest(
                    messages=messages,
                    overflow=Overflow.TRUNCATE_LEFT,
                    prompt_format=PromptFormat.CHAT_NO_SYSTEM,
                ),
                GenerationRequest(messages=messages, prompt_format=PromptFormat.CHAT_NO_SYSTEM),
            ],
            config,
        )
        ((sent, params),) = fake_vllm.ENGINES[-1].requests  # the END_EPISODE one never reaches the engine
        assert sent == full[-60:] and params.max_tokens == 40
        assert cut.finish_reason is FinishReason.STOP and cut.truncated_tokens == len(full) - 60
        assert ended.finish_reason is FinishReason.CONTEXT_LIMIT and ended.truncated_tokens == 0
    finally:
        backend.close()


# -- the openai backend cannot cut: a deviation ---------------------------------------------------------


def test_openai_backend_records_deviations_for_what_it_cannot_do(data_dir: Path) -> None:
    from agentflan_eval.backends.openai_backend import OpenAIBackend

    config, data = RunConfig(data_dir=data_dir), DataResolver(data_dir)
    openai = OpenAIBackend.__new__(OpenAIBackend)  # only its class attributes are read
    held_in = backend_deviations(Database(config, data), openai)
    assert [d.what.split(" ")[:4] for d in held_in] == [["a", "prompt", "over", "the"]]
    hotpot = backend_deviations(HotpotQA(config, data), openai)
    assert len(hotpot) == 1 and "one user turn" in hotpot[0].what
    replay = ReplayBackend.__new__(ReplayBackend)
    assert backend_deviations(Database(config, data), replay) == []
    request = GenerationRequest(messages=U1_A1_U2[:1], prompt_format=PromptFormat.COMPLETION)
    assert openai.render(request) == "[user] U1" and replay.render(request) == "U1"


def test_openai_backend_sends_a_completion_prompt_as_one_user_turn() -> None:
    from http.server import ThreadingHTTPServer

    from test_backends import _FakeOpenAI

    from agentflan_eval.backends.openai_backend import OpenAIBackend

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    b = OpenAIBackend("fake", f"http://127.0.0.1:{srv.server_address[1]}/v1", max_connections=2)
    try:
        messages = [Message(role="user", content="Q"), Message(role="assistant", content="A")]
        messages.append(Message(role="user", content="O"))
        request = GenerationRequest(messages=messages, prompt_format=PromptFormat.COMPLETION)
        (out,) = b.generate([request], GenerationConfig(stop=["\nObservation"]))
    finally:
        b.close()
        srv.shutdown()
        srv.server_close()
    assert out.text == "echo QAO"  # the stand-in server echoes the last message it got: the only one


# -- the manifest ---------------------------------------------------------------------------------------


def test_run_records_each_tasks_protocol_and_first_prompt(tmp_path: Path, data_dir: Path) -> None:
    script = tmp_path / "replay.jsonl"
    script.write_text(
        json.dumps({"task": "os", "sample_id": "*", "replies": ["Think: done.\n\nAct: answer(1)"]})
        + "\n"
        + json.dumps({"task": "hotpotqa", "sample_id": "*", "replies": [" x", " Finish[yes]"]})
        + "\n"
    )
    config = RunConfig(
        backend="replay",
        replay_file=script,
        tasks=["os", "hotpotqa"],
        limit=3,
        output_dir=tmp_path / "runs",
        data_dir=data_dir,
        report=False,
    )
    store, _ = run(config)
    manifest = RunManifest.model_validate_json(store.manifest_path.read_text())
    os_p, hotpot = manifest.protocols["os"], manifest.protocols["hotpotqa"]
    assert (os_p.overflow, os_p.prompt_format, os_p.decoding.temperature) == (
        Overflow.TRUNCATE_LEFT,
        PromptFormat.CHAT_NO_SYSTEM,
        0.7,
    )
    assert os_p.template == "none (replay) (no system block)"
    assert "3,500 segments" in os_p.history and os_p.max_new_tokens == 128  # the window and budget, recorded
    assert "1,700 cl100k tokens" in hotpot.history
    assert (hotpot.overflow, hotpot.prompt_format, hotpot.template) == (
        Overflow.BENCHMARK,
        PromptFormat.COMPLETION,
        "none (raw completion)",
    )
    first_os = next(store.episodes("os"))
    shown = "\n".join(f"[{m.role}] {m.content}" for m in first_os.prompt)  # the replay backend's rendering
    assert os_p.first_prompt == shown and os_p.first_prompt.startswith("[user] You are an assistant")
    first_hotpot = next(store.episodes("hotpotqa"))
    assert hotpot.first_prompt == first_hotpot.prompt[0].content
    # a resumed run keeps what the first invocation recorded
    run(config.model_copy(update={"limit": 4}))
    again = RunManifest.model_validate_json(store.manifest_path.read_text())
    assert again.protocols["os"].first_prompt == os_p.first_prompt


# -- the count, in the summary and the report's per-task table --------------------------------------------


def test_truncations_show_in_the_summary_and_the_report_table() -> None:
    from agentflan_eval.records import RunResults, TaskResult
    from agentflan_eval.report.tables import RunSummary, TaskCell
    from agentflan_eval.report.writers import task_display_frame
    from agentflan_eval.runner import summary_lines

    result = TaskResult(
        task="db",
        suite="held-in",
        metric="success rate",
        score=50.0,
        n=2,
        n_standard=300,
        truncated_prompts=3,
    )
    lines = summary_lines(RunResults(run_id="r", model="m", tasks={"db": result}))
    assert any("3 prompt(s) cut from the left to fit the context" in line for line in lines)
    cell = TaskCell(**{k: v for k, v in result.model_dump().items() if k in TaskCell.model_fields})
    run_ = RunSummary(label="m", run_id="r", model="m", backend="hf", root="runs/r", tasks={"db": cell})
    frame = task_display_frame([run_])
    assert frame.loc[0, "Truncated prompts"] == 3


def test_a_template_that_adds_its_own_system_prompt_is_a_recorded_deviation(
    data_dir: Path, tiny_model_dir: Path
) -> None:
    """SmolLM2's Jinja template puts its default system prompt before any conversation that has none, so a
    held-in prompt cannot be sent without one: the manifest's label and deviations say so. AgentLM's
    template (FastChat llama-2) leaves it out, as AgentBench.old did."""
    from agentflan_eval.model_zoo.prompt_formats import template_label
    from agentflan_eval.protocols import adds_own_system

    bench = Database(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    own = HFBackend(resolve(str(tiny_model_dir)), batch_size=1)
    agentlm = HFBackend(resolve(str(tiny_model_dir)), "agentlm", batch_size=1)
    assert adds_own_system(own) and not adds_own_system(agentlm)
    expected = (
        "the prompt opens with the chat template's own default system prompt, where the original sent no "
        "system message"
    )
    assert [d.what for d in backend_deviations(bench, own)] == [expected]
    assert backend_deviations(bench, agentlm) == []
    # held-out scripts had TGI keep a fixed 4,000 tokens; here the cut follows the model's context
    sciworld = SciWorld(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    hotpotqa = HotpotQA(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    assert [d.why.split(" had ")[0] for d in backend_deviations(sciworld, agentlm)] == [
        "AgentTuning's held-out scripts"
    ]
    assert backend_deviations(hotpotqa, agentlm) == []  # BOLAA sent no truncate: it ends at the context
    assert template_label("server", PromptFormat.COMPLETION, remote=True) == (
        "server (the raw prompt sent as one user turn)"
    )
    assert template_label("server", PromptFormat.CHAT_NO_SYSTEM, remote=True) == (
        "server (no system message sent; the server's template may add its own)"
    )
    assert template_label("tokenizer", PromptFormat.CHAT_NO_SYSTEM, True) == (
        "tokenizer (its own default system prompt kept)"
    )
    own.close()
    agentlm.close()
