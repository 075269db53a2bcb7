"""vLLM backend without a GPU: the one-line error when vLLM is missing, the flags → vllm.LLM arguments
path, and the backend's behaviour against a stand-in ``vllm`` module (same token ids as the hf
backend, stop strings, token counts, finish reasons, context limit, data-parallel replicas)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from conftest import InFlight

from agentflan_eval.backends import make_backend
from agentflan_eval.backends.base import GenerationRequest, request_seed
from agentflan_eval.backends.vllm_backend import VLLMBackend
from agentflan_eval.backends.vllm_options import VLLMOptions, llm_kwargs, parse_engine_args, replica_devices
from agentflan_eval.cli import build_parser, config_from_args
from agentflan_eval.config import RunConfig
from agentflan_eval.errors import AgentFlanError, MissingDependencyError, ModelLoadError
from agentflan_eval.model_resolve import resolve
from agentflan_eval.records import FinishReason, GenerationConfig, Message

INSTALL = "pip install 'agentflan-eval[vllm]'"


def _conversation(question: str) -> list[Message]:
    return [
        Message(role="system", content="You are an agent. Answer with Thought/Action lines."),
        Message(role="user", content=question),
        Message(role="assistant", content="Thought: search it\nAction: Search[Milhouse]"),
        Message(role="tool", content="Observation 1: Milhouse Mussolini Van Houten is a character."),
    ]


# -- without vLLM ---------------------------------------------------------------------------------


def test_without_vllm_the_backend_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, embedded_dir: Path
) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm fails here even where it is installed
    with pytest.raises(MissingDependencyError) as e:
        VLLMBackend(resolve(None))
    assert INSTALL in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(MissingDependencyError):
        make_backend(RunConfig(backend="vllm"))


def test_without_vllm_the_cli_prints_one_line_and_exits_2(tmp_path: Path, data_dir: Path) -> None:
    code = (
        "import sys; sys.modules['vllm'] = None\n"
        "from agentflan_eval.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))"
    )
    out = tmp_path / "runs"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            "--backend",
            "vllm",
            "--tasks",
            "hotpotqa",
            "--limit",
            "1",
            "--output-dir",
            str(out),
            "--data-dir",
            str(data_dir),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: vllm is not installed") and INSTALL in lines[0]
    assert not out.exists()  # nothing written before the backend exists


# -- argument handling ----------------------------------------------------------------------------


def test_llm_kwargs_defaults_turn_prefix_caching_on() -> None:
    kw = llm_kwargs(VLLMOptions(), "/models/m", trust_remote_code=False, seed=3)
    assert kw == {
        "model": "/models/m",
        "tokenizer": "/models/m",
        "trust_remote_code": False,
        "seed": 3,
        "dtype": "auto",
        "tensor_parallel_size": 1,
        "pipeline_parallel_size": 1,
        "enable_prefix_caching": True,
    }


def test_cli_flags_reach_the_engine_arguments() -> None:
    args = build_parser().parse_args(
        [
            "run",
            "--backend",
            "vllm",
            "--model",
            "internlm/Agent-FLAN-7b",
            "--tensor-parallel-size",
            "4",
            "--pipeline-parallel-size",
            "2",
            "--data-parallel-size",
            "2",
            "--gpu-memory-utilization",
            "0.8",
            "--max-model-len",
            "4096",
            "--dtype",
            "bfloat16",
            "--seed",
            "7",
            "--engine-args",
            '{"enforce_eager": true, "enable_prefix_caching": false, "swap_space": 0}',
        ]
    )
    config = config_from_args(args)
    assert (config.tensor_parallel_size, config.pipeline_parallel_size) == (4, 2)
    assert config.data_parallel_size == 2
    options = VLLMOptions.from_config(config)
    kw = llm_kwargs(options, "internlm/Agent-FLAN-7b", trust_remote_code=True, seed=config.seed)
    assert kw["tensor_parallel_size"] == 4 and kw["pipeline_parallel_size"] == 2
    assert kw["gpu_memory_utilization"] == 0.8 and kw["max_model_len"] == 4096 and kw["dtype"] == "bfloat16"
    assert kw["seed"] == 7 and kw["trust_remote_code"] is True
    assert kw["enforce_eager"] is True and kw["swap_space"] == 0
    assert kw["enable_prefix_caching"] is False  # --engine-args may turn it off
    assert "data_parallel_size" not in kw  # one LLM per replica: vLLM refuses dp > 1 in one process
    assert options.gpus_per_replica == 8
    assert replica_devices(options, [str(i) for i in range(16)]) == [
        "0,1,2,3,4,5,6,7",
        "8,9,10,11,12,13,14,15",
    ]
    with pytest.raises(AgentFlanError, match="needs 16 GPUs; 8 visible"):
        replica_devices(options, [str(i) for i in range(8)])


def test_bad_engine_args_and_sizes_are_clear_errors() -> None:
    with pytest.raises(AgentFlanError, match="not valid JSON"):
        parse_engine_args('{"enforce_eager": tru}')
    with pytest.raises(AgentFlanError, match="must be a JSON object"):
        parse_engine_args('["enforce_eager"]')
    assert parse_engine_args(None) == {} and parse_engine_args("") == {}
    with pytest.raises(AgentFlanError, match=r"tensor_parallel_size \(use --tensor-parallel-size\)"):
        VLLMOptions.from_config(RunConfig(backend="vllm", engine_args='{"tensor_parallel_size": 2}'))
    with pytest.raises(AgentFlanError, match="--data-parallel-size must be at least 1"):
        VLLMOptions(data_parallel_size=0)
    with pytest.raises(AgentFlanError, match="--gpu-memory-utilization"):
        VLLMOptions(gpu_memory_utilization=1.5)
    # vLLM flags with another backend would be silently ignored: refuse them instead.
    with pytest.raises(AgentFlanError, match="--tensor-parallel-size apply only to --backend vllm"):
        config_from_args(build_parser().parse_args(["run", "--tensor-parallel-size", "2"]))


# -- behaviour, against the stand-in vllm ---------------------------------------------------------


def test_sends_the_hf_backends_token_ids_and_maps_outputs(
    fake_vllm: ModuleType, embedded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentflan_eval.backends.hf import HFBackend

    backend = make_backend(
        RunConfig(backend="vllm", max_model_len=300, seed=5, engine_args='{"enforce_eager": true}')
    )
    engine = fake_vllm.ENGINES[-1]
    assert engine.kwargs["model"] == engine.kwargs["tokenizer"] == str(embedded_dir)  # the converted GGUF
    assert engine.kwargs["enable_prefix_caching"] is True and engine.kwargs["enforce_eager"] is True
    assert engine.kwargs["max_model_len"] == 300 and engine.kwargs["seed"] == 5

    requests = [
        GenerationRequest(messages=_conversation(q), task="hotpotqa", sample_id=f"s{i}")
        for i, q in enumerate(
            ("Who is Milhouse named after?", "word " * 400, "What is the capital of France?", "Hi")
        )
    ]
    fake_vllm.REPLIES.extend(
        [
            (
                "Thought: named after Mussolini\nAction: Finish[Mussolini]\nObservation 2: leaked",
                21,
                "length",
            ),
            ("Thought: Paris", 5, "length"),
            ("Action: Finish[hi]", 6, "abort"),
        ]
    )
    config = GenerationConfig(max_new_tokens=250, stop=["\nObservation"], seed=5)
    got = backend.generate(requests, config)

    # The hf backend, given the same requests, hands its model exactly the same token ids.
    hf = HFBackend(resolve(None), prefix_cache=False)  # its plain batched path, whose token ids are spied on
    seen: list[list[int]] = []
    monkeypatch.setattr(hf, "generate_ids", lambda batch, cfg, seed=None: seen.extend(batch) or [])
    hf.generate(requests, config)
    sent = [ids for ids, _ in engine.requests]
    assert len(seen) == 4 and sent == [seen[0], seen[2], seen[3]]  # the overlong one never reaches vLLM
    assert backend.render_example(requests[0].messages) == hf.render_example(requests[0].messages)
    assert backend.template_name == hf.template_name == "tokenizer"

    params = [p for _, p in engine.requests]
    assert all(p.stop == ["\nObservation"] and p.temperature == 0.0 for p in params)
    # each request samples from its own seed, as with hf, whatever shares its batch
    assert [p.seed for p in params] == [request_seed(requests[i], config) for i in (0, 2, 3)]
    assert len({p.seed for p in params}) == 3
    assert [p.max_tokens for p in params] == [300 - len(ids) for ids in sent]  # the room left, as hf
    assert all(300 - len(ids) < 250 for ids in sent)

    answer, overlong, paris, aborted = got
    assert answer.text == "Thought: named after Mussolini\nAction: Finish[Mussolini]"
    assert answer.finish_reason == FinishReason.STOP and answer.completion_tokens == 21
    assert answer.prompt_tokens == len(sent[0])
    assert overlong.finish_reason == FinishReason.CONTEXT_LIMIT and overlong.text == ""
    assert overlong.prompt_tokens == len(seen[1])
    assert len(seen[1]) > 300
    assert paris.finish_reason == FinishReason.LENGTH and paris.completion_tokens == 5
    assert aborted.finish_reason == FinishReason.ERROR and "abort" in (aborted.error or "")

    # Like hf: a prompt that leaves one token of room is not sent; two tokens of room are.
    n = len(sent[0])
    backend.max_model_len = n + 1
    assert backend.generate(requests[:1], config)[0].finish_reason == FinishReason.CONTEXT_LIMIT
    backend.max_model_len = n + 2
    assert backend.generate(requests[:1], config)[0].finish_reason == FinishReason.STOP
    assert engine.requests[-1][1].max_tokens == 2
    backend.max_model_len = 300

    info = backend.describe()
    assert info["model_hash"] and info["context_length"] == 300
    assert info["engine"]["enable_prefix_caching"] is True and info["options"]["max_model_len"] == 300
    backend.close()


def test_data_parallel_replicas_keep_each_episode_on_one_replica(
    fake_vllm: ModuleType, embedded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    backend = VLLMBackend(resolve(None), VLLMOptions(tensor_parallel_size=2, data_parallel_size=2))
    try:
        assert fake_vllm.ENGINES == []  # the engines live in the worker processes
        samples = [f"s{i}" for i in range(8)]
        turns = []
        for turn in range(2):
            reqs = [
                GenerationRequest(
                    messages=_conversation(f"question {s} " * (turn + 1)),
                    task="hotpotqa",
                    sample_id=s,
                    turn=turn,
                )
                for s in samples
            ]
            out = backend.generate(reqs, GenerationConfig(max_new_tokens=16))
            assert [c.text.split("|")[1] for c in out] == [str(c.prompt_tokens) for c in out]  # order kept
            turns.append([c.text.split("|")[0] for c in out])
        assert turns[0] == turns[1]  # an episode stays on its replica (and its prefix cache)
        assert set(turns[0]) == {"4,5", "6,7"}  # each replica got its own tensor-parallel GPU pair
    finally:
        procs = list(backend._replicas.procs) if backend._replicas else []
        backend.close()
    assert procs and not any(p.is_alive() for p in procs)


def test_a_replica_that_fails_to_start_is_one_model_load_error(
    fake_vllm: ModuleType, embedded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with pytest.raises(ModelLoadError, match="could not start: replica 0: RuntimeError: CUDA out of memory"):
        VLLMBackend(resolve(None), VLLMOptions(data_parallel_size=2, engine_args={"fail_start": True}))
    with pytest.raises(ModelLoadError, match="vLLM cannot start .*CUDA out of memory"):
        VLLMBackend(resolve(None), VLLMOptions(engine_args={"fail_start": True}))


# -- streaming, against the stand-in vllm ---------------------------------------------------------


def _wait_until(check, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_requests_join_the_running_batch_and_resolve_one_by_one(
    fake_vllm: ModuleType, embedded_dir: Path
) -> None:
    backend = make_backend(RunConfig(backend="vllm"))
    assert backend.streaming
    engine = fake_vllm.ENGINES[-1].llm_engine
    config = GenerationConfig(max_new_tokens=16)
    fake_vllm.HOLD.clear()
    try:
        first = backend.submit(GenerationRequest(messages=_conversation("a question")), config)
        _wait_until(lambda: len(engine.waiting) == 1)
        # a second request joins while the first is still decoding: no turn barrier
        second = backend.submit(GenerationRequest(messages=_conversation("another, longer question")), config)
        _wait_until(lambda: len(engine.waiting) == 2)
        assert not first.done() and not second.done()
    finally:
        fake_vllm.HOLD.set()
    got = [first.result(timeout=10), second.result(timeout=10)]
    assert [c.text for c in got] == [
        f"None|{c.prompt_tokens}" for c in got
    ]  # each reply reached its own request
    assert got[0].prompt_tokens < got[1].prompt_tokens
    assert all(
        c.finish_reason == FinishReason.STOP and c.completion_tokens == 3 and c.seconds > 0 for c in got
    )
    info = backend.describe()
    assert info["dtype"] == "bfloat16"  # what the engine resolved "auto" to, for the manifest
    backend.close()
    failed = backend.submit(GenerationRequest(messages=_conversation("after close")), config).result(
        timeout=10
    )
    assert failed.finish_reason == FinishReason.ERROR


def test_a_cancelled_request_is_aborted_in_the_engine(fake_vllm: ModuleType, embedded_dir: Path) -> None:
    backend = make_backend(RunConfig(backend="vllm"))
    engine = fake_vllm.ENGINES[-1].llm_engine
    config = GenerationConfig(max_new_tokens=16)
    fake_vllm.HOLD.clear()
    try:
        keep = backend.submit(GenerationRequest(messages=_conversation("keep me")), config)
        drop = backend.submit(GenerationRequest(messages=_conversation("drop me")), config)
        _wait_until(lambda: len(engine.waiting) == 2)
        dropped_id = engine.waiting[1][0]
        assert drop.cancel()
        _wait_until(lambda: engine.aborted == [dropped_id])
        assert [w[0] for w in engine.waiting] != [dropped_id] and len(engine.waiting) == 1
    finally:
        fake_vllm.HOLD.set()
    assert keep.result(timeout=10).finish_reason == FinishReason.STOP
    backend.close()


def test_a_failing_engine_step_fails_only_the_requests_in_flight(
    fake_vllm: ModuleType, embedded_dir: Path
) -> None:
    backend = make_backend(RunConfig(backend="vllm"))
    engine = fake_vllm.ENGINES[-1].llm_engine
    config = GenerationConfig(max_new_tokens=16)
    fake_vllm.HOLD.clear()
    try:
        futures = [backend.submit(GenerationRequest(messages=_conversation(q)), config) for q in ("q1", "q2")]
        _wait_until(lambda: len(engine.waiting) == 2)
        fake_vllm.STEP_ERRORS.append(RuntimeError("engine core died"))
        _wait_until(lambda: all(f.done() for f in futures))
    finally:
        fake_vllm.HOLD.set()
    broken = [f.result() for f in futures]
    assert [c.finish_reason for c in broken] == [FinishReason.ERROR] * 2
    assert engine.waiting == []  # both were aborted in the engine
    assert all("engine core died" in (c.error or "") for c in broken)
    fine = backend.generate([GenerationRequest(messages=_conversation("q3"))], config)  # the thread went on
    assert fine[0].finish_reason == FinishReason.STOP
    # a prompt the engine refuses fails alone, as an error record
    fake_vllm.ADD_ERRORS.append(ValueError("prompt has a token id out of vocabulary"))
    refused, ok = backend.generate(
        [GenerationRequest(messages=_conversation("q4")), GenerationRequest(messages=_conversation("q5"))],
        config,
    )
    assert refused.finish_reason == FinishReason.ERROR and "out of vocabulary" in (refused.error or "")
    assert ok.finish_reason == FinishReason.STOP
    backend.close()


def test_the_agent_loop_streams_episodes_through_vllm(
    fake_vllm: ModuleType, embedded_dir: Path, data_dir: Path
) -> None:
    """Real HotpotQA episodes through run_episodes: every one recorded once, its turns in order."""
    from agentflan_eval import benchmarks
    from agentflan_eval.agent_loop import run_episodes
    from agentflan_eval.data import DataResolver

    config = RunConfig(backend="vllm", data_dir=data_dir)
    backend = make_backend(config)
    bench = benchmarks.get("hotpotqa")(config, DataResolver(data_dir))
    samples = bench.load_samples()[:5]
    fake_vllm.REPLIES.extend([("Thought: look it up\nAction: Search[Milhouse]", 9, "stop")] * 10)
    records: list = []
    run_episodes(bench, samples, backend, config.generation(), 3, records.append)
    backend.close()
    assert sorted(r.sample_id for r in records) == sorted(s.id for s in samples)
    for r in records:
        tokens = [s.prompt_tokens for s in r.steps]
        assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)  # each turn's prompt grows
    assert sum(len(r.steps) for r in records) == len(fake_vllm.ENGINES[-1].requests)


def test_the_runner_keeps_concurrency_episodes_in_flight_on_vllm(
    fake_vllm: ModuleType, embedded_dir: Path, data_dir: Path, tmp_path: Path, in_flight: InFlight
) -> None:
    """--concurrency 32 through the runner: 32 episodes open at once and 32 requests in the engine at once
    (the engine holds its replies until all 32 have arrived), never more."""
    from agentflan_eval.runner import run

    fake_vllm.REPLIES.extend([("Thought: look it up\nAction: Search[Milhouse]", 9, "stop")] * 200)
    engine_peak = 0
    step = fake_vllm.Engine.step

    def counted_step(self):  # type: ignore[no-untyped-def]
        nonlocal engine_peak
        engine_peak = max(engine_peak, len(self.waiting))
        if len(self.waiting) >= 32:
            fake_vllm.HOLD.set()
        return step(self)

    fake_vllm.HOLD.clear()
    config = RunConfig(
        backend="vllm",
        tasks=["hotpotqa"],
        limit=40,
        concurrency=32,
        max_new_tokens=16,
        output_dir=tmp_path,
        run_id="r",
        data_dir=data_dir,
        report=False,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fake_vllm.Engine, "step", counted_step)
        _, results = run(config)
    assert (in_flight.peak, in_flight.started, in_flight.now) == (32, 40, 0)
    assert engine_peak == 32 and results.tasks["hotpotqa"].n == 40


def test_a_replica_that_dies_fails_its_requests_instead_of_hanging(
    fake_vllm: ModuleType, embedded_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's forked engine process keeps the pipe open after the worker dies, so its death must be
    seen on the process itself: waiting on the pipe alone would hang the run."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    backend = VLLMBackend(resolve(None), VLLMOptions(data_parallel_size=2, engine_args={"fork_engine": True}))
    try:
        assert backend._replicas is not None
        dead = backend._replicas.procs[0]
        dead.kill()
        _wait_until(lambda: not dead.is_alive())  # not join(): it waits on a pipe the engine process holds
        reqs = [
            GenerationRequest(messages=_conversation(f"q{i}"), task="t", sample_id=f"s{i}") for i in range(8)
        ]
        futures = [backend.submit(r, GenerationConfig(max_new_tokens=16)) for r in reqs]
        got = [f.result(timeout=15) for f in futures]  # a hang fails here
        on_dead = [c for r, c in zip(reqs, got) if backend._replica(r) == 0]
        on_live = [c for r, c in zip(reqs, got) if backend._replica(r) == 1]
        assert on_dead and on_live
        assert all(c.finish_reason == FinishReason.ERROR and "replica 0" in (c.error or "") for c in on_dead)
        assert all(c.finish_reason == FinishReason.STOP and c.text.startswith("1|") for c in on_live)
    finally:
        backend.close()


def test_closing_with_requests_in_flight_fails_them_and_frees_the_engine(
    fake_vllm: ModuleType, embedded_dir: Path
) -> None:
    backend = make_backend(RunConfig(backend="vllm"))
    engine = fake_vllm.ENGINES[-1].llm_engine
    freed: list[bool] = []
    engine.engine_core.shutdown = lambda: freed.append(True)
    fake_vllm.HOLD.clear()
    try:
        futures = [
            backend.submit(GenerationRequest(messages=_conversation(q)), GenerationConfig(max_new_tokens=8))
            for q in ("q1", "q2")
        ]
        _wait_until(lambda: len(engine.waiting) == 2)
        backend.close()
    finally:
        fake_vllm.HOLD.set()
    got = [f.result(timeout=10) for f in futures]
    assert [c.finish_reason for c in got] == [FinishReason.ERROR] * 2 and "closed" in (got[0].error or "")
    assert engine.waiting == [] and len(engine.aborted) == 2  # aborted in the engine, not left decoding
    assert freed == [True]  # the engine's processes (and the KV cache they reserved) end with close()


def test_sigterm_ends_a_vllm_run_cleanly_and_shuts_the_engine_down(
    fake_vllm: ModuleType, tmp_path: Path, data_dir: Path, embedded_dir: Path
) -> None:
    """A batch scheduler's SIGTERM runs the same cleanup as Ctrl-C: without it vLLM's engine processes, and
    the memory they reserved, would outlive the run."""
    mark = tmp_path / "engine.log"
    fake_site = Path(fake_vllm.__file__).parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(fake_site), os.environ.get("PYTHONPATH", "")]),
        "FAKE_VLLM_HOLD": "1",
        "FAKE_VLLM_MARK": str(mark),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentflan_eval",
            "run",
            "--backend",
            "vllm",
            "--tasks",
            "db",
            "--limit",
            "2",
            "--output-dir",
            str(tmp_path / "runs"),
            "--data-dir",
            str(data_dir),
            "--no-report",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until(
            lambda: mark.is_file() and "add" in mark.read_text(), seconds=120
        )  # replies are in flight
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1].startswith("terminated: finished episodes are saved")
    assert mark.read_text().splitlines()[-1] == "shutdown"


def test_each_request_samples_with_its_tasks_decoding_and_own_seed(
    fake_vllm: ModuleType, embedded_dir: Path, data_dir: Path
) -> None:
    """DB's protocol (T=0.7) with a --top-p override reaches SamplingParams, and every (sample, turn,
    repeat) gets its own seed."""
    from agentflan_eval.benchmarks.db.benchmark import Database
    from agentflan_eval.data import DataResolver
    from agentflan_eval.decoding import task_generation

    run_config = RunConfig(backend="vllm", top_p=0.95, seed=4)
    backend = make_backend(run_config)
    config = task_generation(Database(run_config, DataResolver(data_dir)), run_config)
    requests = [
        GenerationRequest(messages=_conversation("q"), task="db", sample_id="1", turn=t, repeat=r)
        for t, r in ((0, 0), (0, 1), (1, 0))
    ]
    backend.generate(requests, config)
    params = [p for _, p in fake_vllm.ENGINES[-1].requests]
    assert [(p.temperature, p.top_p) for p in params] == [(0.7, 0.95)] * 3
    assert sorted(p.seed for p in params) == sorted(request_seed(r, config) for r in requests)
    assert len({p.seed for p in params}) == 3
    backend.close()
