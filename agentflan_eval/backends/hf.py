"""transformers backend: batched greedy generation with stop strings and cached shared prompt prefixes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentflan_eval.backends.base import Backend, GenerationRequest, cut_at_stop
from agentflan_eval.backends.prefix_cache import PrefixCache
from agentflan_eval.errors import ModelLoadError
from agentflan_eval.model_resolve import ResolvedModel, converted_gguf_dir, model_hash
from agentflan_eval.model_zoo.chat_templates import ChatTemplate, choose
from agentflan_eval.records import Completion, GenerationConfig, Message

log = logging.getLogger(__name__)


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
        raise ModelLoadError(f"cannot load model {model.spec!r}: {type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}") from None


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

    def render(self, messages: Sequence[Message]) -> str:
        return self.template.render(messages, self.tokenizer)

    def encode(self, messages: Sequence[Message]) -> list[int]:
        own_bos = self.template.adds_bos or self.template.name == "tokenizer"
        return self.tokenizer(self.render(messages), add_special_tokens=not own_bos)["input_ids"]

    def stops(self, requested: Sequence[str]) -> tuple[str, ...]:
        """The request's stop strings, then the template's end-of-turn markers."""
        return tuple(dict.fromkeys([*requested, *self.template.stop]))


class HFBackend(Backend):
    name = "hf"

    def __init__(self, model: ResolvedModel, chat_template: str | None = None, batch_size: int = 8,
                 device: str | None = None, dtype: str | None = None, device_map: str | None = None,
                 prefix_cache: bool = True):
        import torch
        from transformers import AutoModelForCausalLM

        self.resolved = model
        self.batch_size = max(1, batch_size)
        load = load_path(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if self.device != "cpu" else torch.float32)
        self.encoder = ChatEncoder.load(model, load, chat_template)
        self.tokenizer, self.template = self.encoder.tokenizer, self.encoder.template
        with model_load_errors(model):
            # device_map="auto" (accelerate) spreads a model too large for one GPU over all visible ones.
            self.model = AutoModelForCausalLM.from_pretrained(load, dtype=torch_dtype, device_map=device_map,
                                                              trust_remote_code=trusts_remote_code(model))
        self.device_map = device_map
        if device_map:
            self.device = str(self.model.get_input_embeddings().weight.device)  # where inputs go in
        else:
            self.model.to(self.device)
        self.model.eval()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.template_name = self.template.name
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 0) or 4096)
        self._stop_criteria: dict[tuple[str, ...], Any] = {}
        keep = prefix_cache and PrefixCache.supports(self.model)
        self.prefixes = PrefixCache(self.model, self.device, capacity=self.batch_size + 4) if keep else None

    # -- prompt building -------------------------------------------------------------------
    def render_example(self, messages: Sequence[Message]) -> str:
        return self.encoder.render(messages)

    def _stopping(self, stops: tuple[str, ...]) -> Any:
        """StopStringCriteria precomputes token tables; building it once per stop set saves ~0.1 s a call."""
        if stops not in self._stop_criteria:
            from transformers import StoppingCriteriaList, StopStringCriteria

            self._stop_criteria[stops] = StoppingCriteriaList(
                [StopStringCriteria(self.tokenizer, list(stops))]) if stops else None
        return self._stop_criteria[stops]

    # -- generation --------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        encoded = [self.encoder.encode(r.messages) for r in requests]
        results: list[Completion | None] = [None] * len(requests)
        room = [self.context_length - len(ids) for ids in encoded]
        todo = [i for i in range(len(requests)) if room[i] > 1]
        for i in set(range(len(requests))) - set(todo):
            results[i] = Completion(text="", prompt_tokens=len(encoded[i]), finish_reason="context_limit")
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            for i, c in zip(chunk, self.generate_ids([encoded[i] for i in chunk], config)):
                results[i] = c
        return [r for r in results if r is not None]

    def generate_ids(self, batch: list[list[int]], config: GenerationConfig) -> list[Completion]:
        """Greedy generation for token-id prompts, left-padded into one batch; prompts start from kept caches."""
        import torch

        stops = self.encoder.stops(config.stop)
        t0 = time.perf_counter()
        past = self.prefixes.batch_cache(batch) if self.prefixes else None
        longest = max(len(ids) for ids in batch)
        max_new = max(1, min(config.max_new_tokens, self.context_length - longest))
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(batch), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, longest - len(ids):] = torch.tensor(ids)
            mask[row, longest - len(ids):] = 1
        torch.manual_seed(config.seed)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                **({self.prefixes.kwarg: past} if past is not None else {}),
                max_new_tokens=max_new, do_sample=config.temperature > 0,
                temperature=config.temperature if config.temperature > 0 else None, top_p=None, top_k=None,
                stopping_criteria=self._stopping(stops), pad_token_id=pad,
            )
        seconds = (time.perf_counter() - t0) / len(batch)
        gen = out[:, longest:].tolist()
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        completions, used = [], []
        for row, ids in enumerate(gen):
            n = next((k + 1 for k, t in enumerate(ids) if t in eos_ids), None)
            ended_eos = n is not None
            if n is None:  # rows stopped by a stop string are padded after it
                n = len(ids)
                while n > 0 and ids[n - 1] == pad:
                    n -= 1
            text, stopped = cut_at_stop(self.tokenizer.decode(ids[:n], skip_special_tokens=True), stops)
            reason = "stop" if (stopped or ended_eos) else "length"
            completions.append(Completion(text=text, prompt_tokens=len(batch[row]), completion_tokens=n,
                                          finish_reason=reason, seconds=seconds))
            used.append(n)
        if self.prefixes is not None:
            self.prefixes.keep(batch, gen, used, past)
        return completions

    def describe(self) -> dict[str, Any]:
        return {"model_path": self.resolved.path, "model_hash": model_hash(self.resolved),
                "device": self.device, "device_map": getattr(self.model, "hf_device_map", None) or self.device_map,
                "dtype": str(self.model.dtype), "context_length": self.context_length,
                "kept_prompt_caches": self.prefixes is not None}
