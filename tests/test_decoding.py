"""Decoding per protocol: each task's declared decoding reaches the backends (or --decoding greedy and the
overrides do), seeded sampling reproduces, --repeats runs and resumes each (sample, repeat), and the
manifest records the decoding the run used."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import tiny_llama

from agentflan_eval import runner
from agentflan_eval.backends.base import GenerationRequest, request_seed
from agentflan_eval.backends.replay import ReplayBackend
from agentflan_eval.benchmarks.common.agentbench import AgentBenchProtocol
from agentflan_eval.benchmarks.db.benchmark import Database as DB
from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA
from agentflan_eval.cli import main
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.decoding import resolve, task_generation
from agentflan_eval.errors import AgentFlanError
from agentflan_eval.records import Completion, GenerationConfig, Message, RunManifest
from agentflan_eval.rescore import rescore
from agentflan_eval.store import RunStore


# -- resolution -----------------------------------------------------------------------------------
def test_protocol_greedy_and_overrides_resolve_per_task(data_dir: Path) -> None:
    data = DataResolver(data_dir)

    def gen(**settings: Any) -> tuple[GenerationConfig, GenerationConfig]:
        config = RunConfig(**settings)
        return task_generation(DB(config, data), config), task_generation(HotpotQA(config, data), config)

    db, hotpot = gen()
    assert (db.temperature, db.top_p) == (
        0.7,
        1.0,
    ) and AgentBenchProtocol.decoding.temperature == 0.7  # TGI sampled
    assert (hotpot.temperature, hotpot.top_p) == (0.0, 1.0)
    db, hotpot = gen(decoding="greedy")
    assert db.temperature == hotpot.temperature == 0.0
    db, hotpot = gen(temperature=0.5, top_p=0.8, seed=3)
    assert (
        (db.temperature, db.top_p, db.seed)
        == (hotpot.temperature, hotpot.top_p, hotpot.seed)
        == (0.5, 0.8, 3)
    )
    over = resolve(DB.decoding, RunConfig(decoding="greedy", top_p=0.9))
    assert over.greedy and over.top_p == 0.9 and "--top-p 0.9" in over.source


# -- nucleus sampling in the hf decoding loop ---------------------------------------------------------
def test_top_p_samples_only_from_the_nucleus_of_a_hand_made_distribution() -> None:
    import torch

    from agentflan_eval.backends.decode import sample_token

    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])  # ranked: 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05)
    logits = probs.log()
    gen = torch.Generator().manual_seed(0)

    def counts(top_p: float, draws: int = 4000) -> list[int]:
        got = [int(sample_token(logits, 1.0, top_p, gen)) for _ in range(draws)]
        return [got.count(t) for t in range(4)]

    assert counts(0.4, 200) == [0, 200, 0, 0]  # the top token alone holds 0.4
    nucleus = counts(0.75)  # 0.5 + 0.3 reaches 0.75: tokens 1 and 3, renormalised to 0.625 / 0.375
    assert nucleus[0] == nucleus[2] == 0 and abs(nucleus[1] / 4000 - 0.625) < 0.03
    wider = counts(0.9)  # 0.5 + 0.3 + 0.15: token 0 (0.05) is cut
    assert wider[0] == 0 and abs(wider[2] / 4000 - 0.15 / 0.95) < 0.03
    full = counts(1.0)
    assert abs(full[0] / 4000 - 0.05) < 0.02
    cooled = [int(sample_token(logits, 0.05, 1.0, gen)) for _ in range(200)]  # near 0: the argmax
    assert set(cooled) == {1}


def test_the_hf_backend_hands_temperature_top_p_and_seed_to_both_paths(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentflan_eval.backends.hf import HFBackend
    from agentflan_eval.model_resolve import resolve as resolve_model

    config = GenerationConfig(max_new_tokens=4, temperature=0.7, top_p=0.9, seed=11)
    request = GenerationRequest(
        messages=[Message(role="user", content="Hi")], task="db", sample_id="s", turn=2, repeat=1
    )
    streamed = HFBackend(resolve_model(str(tiny_model_dir)))
    jobs: list[Any] = []
    real = streamed.batcher.submit  # type: ignore[union-attr]
    monkeypatch.setattr(streamed.batcher, "submit", lambda new: jobs.extend(new) or real(new))
    streamed.generate([request], config)
    assert [(j.temperature, j.top_p, j.seed) for j in jobs] == [(0.7, 0.9, request_seed(request, config))]
    streamed.close()

    plain = HFBackend(resolve_model(str(tiny_model_dir)), prefix_cache=False)
    seen: dict[str, Any] = {}
    real_generate = plain.model.generate
    monkeypatch.setattr(plain.model, "generate", lambda **kw: seen.update(kw) or real_generate(**kw))
    plain.generate([request], config)
    assert seen["do_sample"] is True and (seen["temperature"], seen["top_p"]) == (0.7, 0.9)
    plain.generate([request], GenerationConfig(max_new_tokens=4, top_p=0.9))  # greedy: no warpers
    assert seen["do_sample"] is False and seen["temperature"] is None and seen["top_p"] is None


def test_the_repeat_index_changes_the_seed_and_repeat_0_keeps_the_old_one() -> None:
    config = GenerationConfig(seed=2)
    req = GenerationRequest(messages=[], task="db", sample_id="7", turn=1)
    import zlib

    assert request_seed(req, config) == 2 * 1_000_003 + zlib.crc32(b"db/7/1")  # as before repeats
    seeds = {request_seed(req.model_copy(update={"repeat": r}), config) for r in range(4)}
    assert len(seeds) == 4


# -- seeded sampling reproduces a run -----------------------------------------------------------------
@pytest.fixture(scope="module")
def long_tiny(tmp_path_factory: pytest.TempPathFactory, embedded_dir: Path) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("long"), embedded_dir, max_position_embeddings=4096)


def _replies(store: RunStore, task: str) -> dict[tuple[str, int], list[str]]:
    return {r.key: [s.reply for s in r.steps] for r in store.episodes(task)}


def test_a_seeded_sampled_run_reproduces_and_another_seed_does_not(
    long_tiny: Path, tmp_path: Path, data_dir: Path
) -> None:
    """Real HotpotQA episodes on the hf backend, sampled at T=0.9 top-p 0.9: the same seed gives the same
    transcripts, reply for reply; another seed other ones."""

    def sampled(run_id: str, seed: int) -> dict[tuple[str, int], list[str]]:
        config = RunConfig(
            model=str(long_tiny),
            tasks=["hotpotqa"],
            limit=2,
            max_new_tokens=6,
            temperature=0.9,
            top_p=0.9,
            seed=seed,
            concurrency=2,
            output_dir=tmp_path,
            run_id=run_id,
            data_dir=data_dir,
            report=False,
        )
        store, _ = runner.run(config)
        protocol = store.read_manifest().protocols["hotpotqa"].decoding
        assert (protocol.temperature, protocol.top_p) == (0.9, 0.9)
        return _replies(store, "hotpotqa")

    first, again, other = sampled("a", 1), sampled("b", 1), sampled("c", 2)
    assert len(first) == 2 and sum(len(v) for v in first.values()) > 2
    assert first == again
    assert first != other


# -- repeats ------------------------------------------------------------------------------------------
class _ByRepeat(ReplayBackend):
    """Finishes every HotpotQA sample in its first step (a Thought, then Finish): with the gold answer, except
    sample 1 on repeat 1. Counts each episode's opening request."""

    def __init__(self, path: Path, answers: dict[str, str], calls: list[tuple[str, int]]):
        super().__init__(path)
        self.answers, self.calls = answers, calls

    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        out = []
        for r in requests:
            if r.turn == 0:
                self.calls.append((r.sample_id, r.repeat))
                out.append(Completion(text=" done"))
                continue
            wrong = r.repeat == 1 and r.sample_id == list(self.answers)[1]
            answer = "Xqzzv Plorb" if wrong else self.answers[r.sample_id]
            out.append(Completion(text=f" Finish[{answer}]"))
        return out


def test_repeats_run_resume_and_report_mean_and_spread(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = HotpotQA(RunConfig(), DataResolver(data_dir)).load_samples()[:2]
    answers = {s.id: s.answer for s in samples}
    script = tmp_path / "replay.jsonl"
    script.write_text(json.dumps({"task": "hotpotqa", "replies": ["unused"]}) + "\n")
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(runner, "make_backend", lambda c: _ByRepeat(c.replay_file, answers, calls))
    argv = ["run", "--backend", "replay", "--replay-file", str(script), "--tasks", "hotpotqa", "--limit", "2"]
    argv += ["--output-dir", str(tmp_path / "runs"), "--run-id", "r", "--no-report"]

    assert main([*argv, "--repeats", "2"]) == 0
    assert sorted(calls) == sorted((s, r) for s in answers for r in (0, 1))
    calls.clear()
    capsys.readouterr()
    assert main([*argv, "--repeats", "3"]) == 0  # resumes: only the third repeat is new
    assert sorted(calls) == sorted((s, 2) for s in answers)
    printed = capsys.readouterr().out

    store = RunStore(tmp_path / "runs/r")
    records = list(store.episodes("hotpotqa"))
    assert len(records) == 2 * 3 and {r.key for r in records} == {(s, r) for s in answers for r in range(3)}
    per_repeat = [statistics.mean(r.score.value for r in records if r.repeat == k) for k in range(3)]
    assert per_repeat[0] == per_repeat[2] > per_repeat[1]  # one wrong answer in repeat 1
    result = store.read_results().tasks["hotpotqa"]  # type: ignore[union-attr]
    assert result.n == 2 and result.repeats == 3
    assert result.score == pytest.approx(statistics.mean(per_repeat))
    spread = result.repeat_spread
    assert spread is not None and spread.scores == pytest.approx(per_repeat)
    assert spread.sd == pytest.approx(statistics.stdev(per_repeat))
    assert (spread.low, spread.high) == (min(per_repeat), max(per_repeat))
    f = 100.0 / result.scale
    assert f"± {spread.sd * f:.2f} (sd) over 3 repeats" in printed

    calls.clear()
    assert main([*argv, "--repeats", "3"]) == 0 and calls == []  # nothing left
    outcome = rescore(store.root)
    assert outcome.episodes == 6 and outcome.changed == 0
    assert outcome.results.tasks["hotpotqa"].repeat_spread == spread
    from agentflan_eval.report.tables import load_run
    from agentflan_eval.report.writers import task_display_frame

    frame = task_display_frame([load_run(store.root, n_resamples=200)])
    assert f"± {spread.sd * f:.2f} sd, 3 repeats" in frame["Score"][0]
    assert frame["Decoding"][0] == "greedy"


# -- the manifest tells the truth, and resuming never mixes decodings ---------------------------------
def _replay_argv(tmp_path: Path, run_id: str, *more: str) -> list[str]:
    script = tmp_path / "replay.jsonl"
    script.write_text(json.dumps({"replies": ["Action: Operation\n```sql\nSELECT 1;\n```"]}) + "\n")
    argv = ["run", "--backend", "replay", "--model", str(script), "--tasks", "db,hotpotqa", "--limit", "1"]
    return [*argv, "--output-dir", str(tmp_path / "runs"), "--run-id", run_id, "--no-report", *more]


def _decodings(tmp_path: Path, run_id: str) -> dict[str, tuple[float, float]]:
    manifest = RunStore(tmp_path / "runs" / run_id).read_manifest()
    return {t: (p.decoding.temperature, p.decoding.top_p) for t, p in manifest.protocols.items()}


def test_the_manifest_records_the_decoding_used(tmp_path: Path, data_dir: Path) -> None:
    assert main(_replay_argv(tmp_path, "p")) == 0
    assert _decodings(tmp_path, "p") == {"db": (0.7, 1.0), "hotpotqa": (0.0, 1.0)}
    assert main(_replay_argv(tmp_path, "g", "--decoding", "greedy")) == 0
    assert _decodings(tmp_path, "g") == {"db": (0.0, 1.0), "hotpotqa": (0.0, 1.0)}
    assert main(_replay_argv(tmp_path, "o", "--temperature", "0.5", "--top-p", "0.8")) == 0
    assert _decodings(tmp_path, "o") == {"db": (0.5, 0.8), "hotpotqa": (0.5, 0.8)}
    manifest = RunStore(tmp_path / "runs/o").read_manifest()
    assert "--temperature 0.5, --top-p 0.8" in manifest.protocols["db"].decoding.source


def test_resuming_with_another_decoding_is_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_replay_argv(tmp_path, "g", "--decoding", "greedy")) == 0
    capsys.readouterr()
    assert main(_replay_argv(tmp_path, "g")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "decoded db greedy, this run would decode it T=0.7" in err
    assert "--decoding" in err
    assert main(_replay_argv(tmp_path, "g", "--decoding", "greedy", "--temperature", "0.3")) == 2
    assert "decoded db greedy, this run would decode it T=0.3" in capsys.readouterr().err
    # another spelling of greedy resumes the same run
    assert main(_replay_argv(tmp_path, "g", "--temperature", "0")) == 0


def test_a_run_dir_from_before_decoding_was_applied_resumes_only_greedy(tmp_path: Path) -> None:
    """Old manifests have no decoding in their config: every run was greedy then, whatever the protocols
    they recorded say; sampled settings must not add episodes to them."""
    from agentflan_eval.decoding import applied_protocols
    from agentflan_eval.records import Decoding, Overflow, PromptFormat, TaskProtocol
    from agentflan_eval.runner import _check_resume

    greedy = RunConfig(model="m", decoding="greedy")
    config = {k: v for k, v in greedy.model_dump(mode="json").items() if k not in ("decoding", "temperature")}
    config.pop("top_p")
    store = RunStore(tmp_path / "old")
    protocol = TaskProtocol(
        decoding=Decoding(temperature=0.7), overflow=Overflow.TRUNCATE_LEFT, prompt_format=PromptFormat.CHAT,
        max_new_tokens=128,
    )  # fmt: skip
    old = RunManifest(
        run_id="old", created="then", model="m", backend="hf", chat_template="chatml",
        generation=greedy.generation(), config=config, tasks=["db"], command_line=[], package_versions={},
        protocols={"db": protocol},
    )  # fmt: skip
    store.write_manifest(old)
    db = [DB(greedy, DataResolver(None))]
    _check_resume(store, greedy, db)
    with pytest.raises(AgentFlanError, match="decoded db greedy, this run would decode it T=0.7"):
        _check_resume(store, RunConfig(model="m"), db)
    assert applied_protocols(old)["db"].decoding.greedy  # corrected when the manifest is rewritten
