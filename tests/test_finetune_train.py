"""Fine-tuning: a tiny randomly initialised Llama (built here, with the embedded model's tokenizer) trains on
real build-data output, lowers its loss, saves an HF folder, resumes, and loads in `run`; the multi-GPU
configs parse and build training arguments on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_llama

from agentflan_eval.errors import AgentFlanError
from agentflan_eval.finetune.build_data import BuildConfig, build
from agentflan_eval.finetune.train import CONFIG_FILE, TrainConfig, train, training_arguments

CONFIGS = Path(__file__).resolve().parent.parent / "finetune" / "configs"


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, embedded_dir) -> Path:
    """A tiny random Llama with tied embeddings, grouped-query attention and room for long samples."""
    out = tmp_path_factory.mktemp("tiny") / "base"
    return tiny_llama(
        out,
        embedded_dir,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        pad_token_id=None,
    )


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, data_dir) -> Path:
    out = tmp_path_factory.mktemp("data") / "ft"
    build(
        BuildConfig(
            out=out,
            data_dir=data_dir,
            sources=("fireact", "os"),
            fireact_files=("hotpotqa",),
            max_per_source=12,
            oasst=False,
            negatives_a=2,
            negatives_b=2,
            tokenizer="none",
        )
    )
    return out


@pytest.fixture(scope="module")
def trained(tiny_base, small_data, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("model") / "ft"
    metrics = train(
        TrainConfig(
            data=small_data,
            out=out,
            model=str(tiny_base),
            max_length=128,
            batch_size=4,
            max_steps=8,
            lr=3e-3,
            lr_scheduler="constant",
            device="cpu",
            save_steps=4,
        )
    )
    return out, metrics


@pytest.mark.slow
def test_training_lowers_the_loss_and_saves_an_hf_folder(trained, tiny_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, m = trained
    losses = [v for _, v in m["loss_history"]]
    assert m["steps"] == 8 and len(losses) == 8
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2 - 0.5, losses
    assert m["tokens_seen"] > 0 and m["tokens_per_second"] > 0
    saved = json.loads((out / CONFIG_FILE).read_text())
    assert (
        saved["max_steps"] == 8
        and saved["chat_template_used"] == "tokenizer"
        and saved["metrics"]["steps"] == 8
    )
    assert json.loads((out / "checkpoints" / "checkpoint-4" / CONFIG_FILE).read_text())["lr"] == 3e-3
    assert (out / "loss_curve.png").stat().st_size > 1000
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 2
    assert (
        AutoTokenizer.from_pretrained(out).chat_template
        == AutoTokenizer.from_pretrained(tiny_base).chat_template
    )


@pytest.mark.slow
def test_training_resumes_from_the_last_checkpoint(trained, tiny_base, small_data):
    out, _ = trained
    m = train(
        TrainConfig(
            data=small_data,
            out=out,
            model=str(tiny_base),
            max_length=128,
            batch_size=4,
            max_steps=10,
            lr=3e-3,
            lr_scheduler="constant",
            device="cpu",
            save_steps=4,
        )
    )
    assert m["resumed_from"].endswith("checkpoint-8") and m["steps"] == 10
    assert [s for s, _ in m["loss_history"]] == list(range(1, 11))  # the checkpoint's history carries over


@pytest.mark.slow
def test_lora_with_packing_is_merged_on_save(tiny_base, small_data, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    m = train(
        TrainConfig(
            data=small_data,
            out=out,
            model=str(tiny_base),
            max_length=128,
            batch_size=4,
            max_steps=3,
            lr=1e-2,
            lora=True,
            lora_r=4,
            packing=True,
            device="cpu",
            chat_template="agentflan",
        )
    )
    assert m["steps"] == 3
    base = AutoModelForCausalLM.from_pretrained(tiny_base).state_dict()
    merged = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert set(merged) == set(base)  # plain weights, no adapter left
    assert any(not torch.equal(base[k], merged[k]) for k in base if "proj" in k)
    from transformers import AutoTokenizer

    from agentflan_eval.model_zoo.chat_templates import get_template
    from agentflan_eval.records import Message

    msgs = [Message(role="user", content="q"), Message(role="assistant", content="a")]
    assert get_template("tokenizer").render(msgs, AutoTokenizer.from_pretrained(out)) == get_template(
        "agentflan"
    ).render(msgs)


@pytest.mark.slow
def test_run_scores_the_fine_tuned_checkpoint(trained, tmp_path, data_dir):
    from agentflan_eval.cli import main
    from agentflan_eval.store import RunStore

    out, _ = trained
    rc = main(
        [
            "run",
            "--model",
            str(out),
            "--tasks",
            "hotpotqa",
            "--limit",
            "1",
            "--max-new-tokens",
            "8",
            "--concurrency",
            "1",
            "--output-dir",
            str(tmp_path / "runs"),
            "--data-dir",
            str(data_dir),
            "--no-report",
            "--run-id",
            "ft",
        ]
    )
    assert rc == 0
    store = RunStore(tmp_path / "runs" / "ft")
    episodes = list(store.episodes("hotpotqa"))
    assert len(episodes) == 1 and episodes[0].steps
    manifest = store.read_manifest()
    assert manifest.chat_template == "tokenizer" and manifest.model_path == str(out)


def test_multi_gpu_configs_parse_and_build_training_arguments(tmp_path):
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {p.name: load_config_from_file(str(p)) for p in CONFIGS.glob("accelerate_*.yaml")}
    assert {k: str(v.distributed_type).split(".")[-1] for k, v in kinds.items()} == {
        "accelerate_ddp.yaml": "MULTI_GPU",
        "accelerate_fsdp.yaml": "FSDP",
        "accelerate_deepspeed_zero3.yaml": "DEEPSPEED",
    }
    ds_file = Path(kinds["accelerate_deepspeed_zero3.yaml"].deepspeed_config["deepspeed_config_file"])
    assert ds_file.name == "ds_zero3.json" and (CONFIGS / ds_file.name).is_file()
    full = TrainConfig.from_file(CONFIGS / "llama2_7b_full.json", deepspeed=str(CONFIGS / ds_file.name))
    args = training_arguments(full)
    ds = args.hf_deepspeed_config.config
    assert ds["zero_optimization"]["stage"] == 3
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"]) == (
        full.batch_size,
        full.grad_accum,
    )
    fsdp_yaml = kinds["accelerate_fsdp.yaml"].fsdp_config
    lora = TrainConfig.from_file(
        CONFIGS / "llama2_7b_lora.json",
        fsdp="full_shard auto_wrap",
        fsdp_config={"transformer_layer_cls_to_wrap": [fsdp_yaml["fsdp_transformer_layer_cls_to_wrap"]]},
    )
    args = training_arguments(lora)
    assert args.fsdp_config["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert args.gradient_accumulation_steps == 2 and lora.lora
    demo = TrainConfig.from_file(CONFIGS / "smollm2_cpu_demo.json")
    assert training_arguments(demo).use_cpu and demo.max_steps > 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"learning_rate": 1}')
    with pytest.raises(AgentFlanError, match="unknown training config keys in .*: learning_rate"):
        TrainConfig.from_file(bad)
