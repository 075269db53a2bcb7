"""Messages → prompt text → token ids, for every local model: the hf and vllm backends and fine-tuning.

It lives beside the chat templates it applies, not in a backend: a backend module imports its decoding
machinery (the hf one transformers' cache classes), and neither fine-tuning nor a second backend should
have to import that to tokenise a prompt the way the model is evaluated on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentflan_eval.errors import ModelLoadError
from agentflan_eval.model_resolve import ResolvedModel, converted_gguf_dir
from agentflan_eval.model_zoo import prompt_formats
from agentflan_eval.model_zoo.chat_templates import ChatTemplate, choose
from agentflan_eval.records import Message, PromptFormat


def load_path(model: ResolvedModel) -> str:
    """What transformers and vLLM load: a GGUF file goes through its cached, dequantised HF folder."""
    return str(converted_gguf_dir(Path(model.path))) if model.kind == "gguf" else model.path


def trusts_remote_code(model: ResolvedModel) -> bool:
    return bool(model.known and model.known.trust_remote_code)


@contextmanager
def model_load_errors(model: ResolvedModel) -> Iterator[None]:
    """Loading failures (missing files, bad configs) as one-line ModelLoadErrors."""
    try:
        yield
    except OSError as e:
        raise ModelLoadError(f"cannot load model {model.spec!r}: {str(e).splitlines()[0]}") from None
    except (ValueError, RuntimeError) as e:
        raise ModelLoadError(
            f"cannot load model {model.spec!r}: {type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}"
        ) from None


@dataclass(frozen=True)
class ChatEncoder:
    """Messages → prompt text → token ids: one path for every local backend (hf, vllm), so they see
    identical inputs."""

    tokenizer: Any
    template: ChatTemplate

    @classmethod
    def load(cls, model: ResolvedModel, path: str, chat_template: str | None = None) -> ChatEncoder:
        """The model's tokenizer and its template (--chat-template, else known model, else tokenizer's)."""
        from transformers import AutoTokenizer

        with model_load_errors(model):
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trusts_remote_code(model))
        return cls(tokenizer, choose(chat_template, model.known.template if model.known else None, tokenizer))

    def render(self, messages: Sequence[Message], fmt: PromptFormat = PromptFormat.CHAT) -> str:
        return prompt_formats.render(self.template, messages, fmt, self.tokenizer)

    def encode(self, messages: Sequence[Message], fmt: PromptFormat = PromptFormat.CHAT) -> list[int]:
        """Token ids; a raw completion gets the tokenizer's BOS, as TGI's tokenizer added it."""
        own_bos = fmt is not PromptFormat.COMPLETION and (
            self.template.adds_bos or self.template.name == "tokenizer"
        )
        text = self.render(messages, fmt)
        ids: list[int] = self.tokenizer(text, add_special_tokens=not own_bos)["input_ids"]
        return ids

    def stops(self, requested: Sequence[str]) -> tuple[str, ...]:
        """The request's stop strings, then the template's end-of-turn markers."""
        return tuple(dict.fromkeys([*requested, *self.template.stop]))
