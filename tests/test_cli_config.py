"""The `run` flags are generated from RunConfig and the benchmarks' Options; bad values stop the CLI
with one line and exit status 2 before any model loads."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pytest
from pydantic import Field

from agentflan_eval import flags, runner
from agentflan_eval.benchmark import option_models
from agentflan_eval.benchmarks.hotpotqa.benchmark import HotpotQA
from agentflan_eval.cli import build_parser, config_from_args, main
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.rescore import rescore
from agentflan_eval.runner import default_run_id


def parse(*argv: str) -> RunConfig:
    return config_from_args(build_parser().parse_args(["run", *argv]))


def test_no_flags_give_runconfigs_defaults() -> None:
    config = parse()
    assert config.model_dump(exclude={"task_options"}) == RunConfig().model_dump(exclude={"task_options"})
    assert config.task_options["hotpotqa"] == {"search_backend": "offline"}  # recorded in the manifest


def test_every_field_is_a_flag_and_the_old_flags_still_parse(tmp_path: Path) -> None:
    config = parse(
        *("--model", "m", "--backend", "hf", "--tasks", "hotpotqa, os", "--limit", "3"),
        *("--output-dir", str(tmp_path), "--run-id", "r", "--concurrency", "2", "--max-new-tokens", "9"),
        *("--seed", "4", "--chat-template", "chatml", "--data-dir", str(tmp_path), "--replay-file", "x"),
        *("--api-base", "http://h/v1", "--api-key-env", "K", "--device", "cpu"),
        *("--device-map", "auto", "--no-prefix-cache", "--kept-cache-gb", "0.5", "--dtype", "float32"),
        *("--no-report", "--search-backend", "wikipedia", "--db-url", "mysql://u@h/db"),
        *("--kg-endpoint", "http://kg", "--webshop-url", "http://ws", "--webarena-urls", "{}"),
    )
    assert (config.tasks, config.limit, config.concurrency) == (["hotpotqa", "os"], 3, 2)
    assert config.prefix_cache is False and config.report is False and config.kept_cache_gb == 0.5
    assert config.task_options["db"] == {"db_url": "mysql://u@h/db"}
    assert config.task_options["hotpotqa"] == {"search_backend": "wikipedia"}
    assert config.task_options["webarena"]["webarena_urls"] == "{}"
    run_flags = {a.dest for a in _run_parser()._actions}
    assert set(flags.flag_names(RunConfig)) <= run_flags and "task_options" not in run_flags


def test_a_new_field_with_a_description_becomes_a_flag() -> None:
    class Later(RunConfig):
        request_timeout: float = Field(
            default=60.0, gt=0, description="seconds before a request is abandoned"
        )

    p = argparse.ArgumentParser()
    flags.add_flags(p, Later)
    assert "seconds before a request is abandoned (default: 60.0)" in p.format_help()
    assert (
        flags.build(Later, flags.given(p.parse_args(["--request-timeout", "5"]), Later)).request_timeout == 5
    )
    with pytest.raises(Exception, match="--request-timeout must be more than 0, not -1"):
        flags.build(Later, flags.given(p.parse_args(["--request-timeout", "-1"]), Later))


def test_help_keeps_its_groups() -> None:
    text = _run_parser().format_help()
    for title in ("general:", "hf backend:", "openai backend:", "vLLM backend:", "task options:"):
        assert title in text
    assert "--no-prefix-cache" in text and "--db-url" in text and "(default: 8)" in text


def test_the_benchmark_reads_its_own_options(data_dir: Path) -> None:
    bench = HotpotQA(parse("--search-backend", "wikipedia"), DataResolver(data_dir))
    assert bench.options.search_backend == "wikipedia"
    assert not any("offline search corpus" in d.what for d in bench.deviations())  # live Wikipedia: none
    assert HotpotQA(RunConfig(), DataResolver(data_dir)).options.search_backend == "offline"
    assert set(option_models()) == {"db", "kg", "webshop", "webarena", "hotpotqa", "teval", "miniwob"}


def test_manifests_with_the_options_at_the_top_level_still_load() -> None:
    old = {**RunConfig().model_dump(mode="json", exclude={"task_options"}), "db_url": "mysql://x"}
    old |= {"search_backend": "wikipedia", "kg_endpoint": None, "webshop_url": None, "webarena_urls": None}
    config = RunConfig.model_validate(old)
    assert config.task_options["db"] == {"db_url": "mysql://x"}
    assert config.task_options["hotpotqa"] == {"search_backend": "wikipedia"}
    with pytest.raises(ValueError, match="nosuch"):
        RunConfig.model_validate({"nosuch": 1})


def test_the_run_id_of_existing_settings_is_unchanged() -> None:
    """Runs before decoding was applied were greedy: greedy settings keep their ids; sampling gets others."""
    key = hashlib.sha256(b"hf|None|None|256|0").hexdigest()[:8]
    assert default_run_id(parse("--decoding", "greedy")) == f"smollm2-135m-instruct-hf-{key}"
    assert default_run_id(parse("--temperature", "0")) == f"smollm2-135m-instruct-hf-{key}"
    assert (
        default_run_id(parse("--decoding", "greedy", "--repeats", "3")) == f"smollm2-135m-instruct-hf-{key}"
    )
    assert default_run_id(parse("--db-url", "mysql://x")) == default_run_id(RunConfig())
    sampled = {default_run_id(parse(*a)) for a in [(), ("--temperature", "0.5"), ("--top-p", "0.9")]}
    sampled.add(default_run_id(parse("--decoding", "greedy", "--temperature", "0.5")))
    assert len(sampled) == 4 and f"smollm2-135m-instruct-hf-{key}" not in sampled


def test_a_cli_run_records_task_options_and_rescores_from_an_old_style_manifest(
    tmp_path: Path, data_dir: Path
) -> None:
    replay = tmp_path / "r.jsonl"
    replay.write_text(json.dumps({"task": "hotpotqa", "replies": ["Action 1: Finish[yes]"]}) + "\n")
    argv = ["run", "--backend", "replay", "--model", str(replay), "--tasks", "hotpotqa", "--limit", "2"]
    argv += ["--output-dir", str(tmp_path / "runs"), "--run-id", "r", "--no-report", "--db-url", "mysql://x"]
    assert main(argv) == 0
    manifest = tmp_path / "runs/r/manifest.json"
    saved = json.loads(manifest.read_text())
    assert saved["config"]["task_options"]["db"] == {"db_url": "mysql://x"}
    flat = {k: v for k, v in saved["config"].items() if k != "task_options"}
    saved["config"] = {**flat, "search_backend": "offline", "db_url": None, "kg_endpoint": None}
    manifest.write_text(json.dumps(saved))
    outcome = rescore(tmp_path / "runs/r")
    assert outcome.episodes == 2 and outcome.changed == 0


# -- bad input: one line, exit status 2, no model loaded ------------------------------------------


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(config: RunConfig) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(runner, "make_backend", refuse)


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err.strip()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--limit", "-1", "--limit must be 1 or more, not -1"),
        ("--limit", "0", "--limit must be 1 or more, not 0"),
        ("--concurrency", "0", "--concurrency must be 1 or more, not 0"),
        ("--kept-cache-gb", "-1", "--kept-cache-gb must be 0 or more"),
        ("--chat-template", "nosuch", "--chat-template: unknown chat template 'nosuch'"),
        ("--temperature", "-0.5", "--temperature must be 0 or more, not -0.5"),
        ("--top-p", "0", "--top-p must be more than 0, not 0"),
        ("--top-p", "1.5", "--top-p must be at most 1, not 1.5"),
        ("--repeats", "0", "--repeats must be 1 or more, not 0"),
    ],
)
def test_bad_values_name_their_flag(
    flag: str, value: str, message: str, no_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    msg = one_line_error(["run", "--tasks", "hotpotqa", flag, value], capsys)
    assert message in msg
    if flag == "--chat-template":
        assert "agentflan, llama2, agentlm, chatml, tokenizer" in msg


def test_an_output_dir_that_is_a_file(
    tmp_path: Path, no_model: None, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    msg = one_line_error(["run", "--tasks", "hotpotqa", "--output-dir", str(file)], capsys)
    assert f"--output-dir {file} is a file" in msg
    msg = one_line_error(["run", "--tasks", "hotpotqa", "--output-dir", str(file / "runs")], capsys)
    assert f"{file} is a file" in msg


def test_an_output_dir_that_is_not_writable(
    tmp_path: Path, no_model: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner.os, "access", lambda path, mode: Path(path) != tmp_path)  # tests run as root
    msg = one_line_error(["run", "--tasks", "hotpotqa", "--output-dir", str(tmp_path / "runs")], capsys)
    assert f"--output-dir {tmp_path / 'runs'} is not writable" in msg


def test_vllm_flags_with_another_backend(no_model: None, capsys: pytest.CaptureFixture[str]) -> None:
    msg = one_line_error(["run", "--max-model-len", "512", "--data-parallel-size", "2"], capsys)
    assert "--data-parallel-size, --max-model-len apply only to --backend vllm" in msg


def _run_parser() -> argparse.ArgumentParser:
    actions = build_parser()._subparsers._group_actions  # type: ignore[union-attr]
    return actions[0].choices["run"]


# -- finetune: flags from BuildConfig and TrainConfig ---------------------------------------------


def _finetune(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["finetune", *argv])


def test_build_data_flags_fill_a_build_config(tmp_path: Path) -> None:
    from agentflan_eval.finetune.build_data import BuildConfig

    a = _finetune(
        *(
            "build-data",
            "--out",
            str(tmp_path),
            "--sources",
            "os,kg",
            "--agentinstruct",
            "--agentflan",
            "x.jsonl",
        ),
        *("--sharegpt", "a.json", "--sharegpt", "b.json", "--no-oasst", "--ratio-retrieval", "0.3"),
        *("--no-decontaminate", "--max-per-source", "5"),
    )
    cfg = flags.build(BuildConfig, flags.given(a, BuildConfig))
    assert cfg.sources == ("os", "kg") and cfg.agentinstruct == "hub" and cfg.agentflan == "x.jsonl"
    assert cfg.sharegpt == (Path("a.json"), Path("b.json")) and not cfg.oasst and not cfg.decontaminate
    assert (
        cfg.ratios == {"reasoning": 1.0, "retrieval": 0.3, "understanding": 0.7} and cfg.max_per_source == 5
    )
    assert cfg.fireact_files == BuildConfig().fireact_files and cfg.negatives_a == 40


def test_train_flags_override_the_config_file(tmp_path: Path) -> None:
    from agentflan_eval.finetune.train import TrainConfig

    file = tmp_path / "c.json"
    file.write_text(json.dumps({"lr": 0.1, "batch_size": 2, "lora": True, "fsdp": "full_shard"}))
    a = _finetune("train", "--config", str(file), "--lr", "0.001", "--no-resume", "--packing")
    cfg = TrainConfig.from_file(a.config, **flags.given(a, TrainConfig))
    assert (cfg.lr, cfg.batch_size, cfg.lora, cfg.fsdp) == (0.001, 2, True, "full_shard")
    assert cfg.resume is False and cfg.packing is True and cfg.max_length == TrainConfig().max_length


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--batch-size", "0"], "--batch-size must be 1 or more, not 0"),
        (
            ["build-data", "--out", "o", "--ratio-reasoning", "2"],
            "--ratio-reasoning must be at most 1, not 2",
        ),
    ],
)
def test_bad_finetune_values_name_their_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in one_line_error(["finetune", *argv], capsys)


def test_rescore_of_a_run_whose_config_is_no_longer_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentflan_eval.records import GenerationConfig, RunManifest
    from agentflan_eval.store import RunStore

    store = RunStore(tmp_path / "r")
    store.root.mkdir()
    config = {**RunConfig().model_dump(mode="json"), "limit": -1}
    store.write_manifest(
        RunManifest(
            run_id="r",
            created="now",
            model="m",
            backend="hf",
            chat_template="chatml",
            rendered_example="",
            generation=GenerationConfig(),
            config=config,
            tasks=[],
            command_line=[],
            package_versions={},
        )
    )
    assert "limit must be 1 or more, not -1" in one_line_error(["rescore", str(store.root)], capsys)
