"""Exact rendering of every chat template: a changed character changes an agent model's scores."""

from __future__ import annotations

import pytest

from agentflan_eval.model_zoo.chat_templates import TEMPLATES, choose, get_template
from agentflan_eval.model_zoo.known_models import match
from agentflan_eval.records import Message

CONV = [
    Message(role="system", content="You are an agent."),
    Message(role="user", content="Hi"),
    Message(role="assistant", content="Hello!"),
    Message(role="user", content="Search X"),
]


def test_agentflan_exact() -> None:
    assert get_template("agentflan").render(CONV) == (
        "<|Human|>\u0d46You are an agent.\n "
        "<|Human|>\u0d46Hi\n "
        "<|Assistant|>\u0d46Hello!\u0d3f\n "
        "<|Human|>\u0d46Search X\n "
        "<|Assistant|>\u0d46"
    )


def test_llama2_exact() -> None:
    assert get_template("llama2").render(CONV) == (
        "<s>[INST] <<SYS>>\nYou are an agent.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Search X [/INST]"
    )


def test_agentlm_fixed_system_prompt_and_task_system_moves_into_user_turn() -> None:
    assert get_template("agentlm").render(CONV) == (
        "<s>[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"
        "You are an agent.\n\nHi [/INST] Hello! </s><s>[INST] Search X [/INST]"
    )


def test_chatml_exact_and_tool_role_reads_as_user() -> None:
    conv = [*CONV, Message(role="assistant", content="Action: search"), Message(role="tool", content="obs")]
    assert get_template("chatml").render(conv) == (
        "<|im_start|>system\nYou are an agent.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nSearch X<|im_end|>\n"
        "<|im_start|>assistant\nAction: search<|im_end|>\n"
        "<|im_start|>user\nobs<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_llama2_merges_consecutive_user_turns() -> None:
    conv = [Message(role="user", content="a"), Message(role="user", content="b")]
    assert get_template("llama2").render(conv) == "<s>[INST] a\n\nb [/INST]"


class _Tok:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, msgs, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return "|".join(f"{m['role']}:{m['content']}" for m in msgs) + "|assistant:"


def test_tokenizer_template_defers_to_tokenizer() -> None:
    assert get_template("tokenizer").render(CONV[:2], _Tok()) == "system:You are an agent.|user:Hi|assistant:"
    with pytest.raises(ValueError, match="needs a tokenizer"):
        get_template("tokenizer").render(CONV[:2])


def test_choice_order() -> None:
    assert choose("llama2", "agentflan", _Tok()).name == "llama2"
    assert choose(None, "agentflan", _Tok()).name == "agentflan"
    assert choose(None, None, _Tok()).name == "tokenizer"
    assert choose(None, None, None).name == "chatml"
    with pytest.raises(KeyError, match="unknown chat template"):
        choose("vicuna", None, None)


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("internlm/Agent-FLAN-7b", "agentflan"),
        ("THUDM/agentlm-13b", "agentlm"),
        ("/models/Llama-2-7b-chat-hf", "llama2"),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "tokenizer"),
    ],
)
def test_known_model_table(path: str, template: str) -> None:
    m = match(path)
    assert m is not None and m.template == template and m.template in TEMPLATES


def test_unknown_model_has_no_known_entry() -> None:
    assert match("/tmp/my-own-model") is None


def test_a_parent_folder_name_does_not_pick_the_template(tmp_path) -> None:
    from agentflan_eval.model_resolve import resolve

    folder = tmp_path / "agentflan_eval" / "checkpoints" / "my-model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    assert resolve(str(folder)).known is None
    agentlm = tmp_path / "agentflan_eval" / "agentlm-7b"
    agentlm.mkdir()
    (agentlm / "config.json").write_text("{}")
    known = resolve(str(agentlm)).known
    assert known is not None and known.template == "agentlm"
