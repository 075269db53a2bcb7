"""transformers backend: continuously batched generation, greedy or seeded sampling (decode.py), over kept
prompt caches (prefix_cache.py), with stop strings; transformers' generate for models those cannot serve."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from functools import partial
from typing import Any

from agentflan_eval.backends.base import Backend, GenerationRequest, cut_at_stop, fit_context, request_seed
from agentflan_eval.backends.decode import Batcher, Job, Row, RowEnd
from agentflan_eval.backends.prefix_cache import PrefixCache
from agentflan_eval.model_resolve import ResolvedModel, model_hash
from agentflan_eval.model_zoo.chat_encoder import (
    ChatEncoder,
    load_path,
    model_load_errors,
    trusts_remote_code,
)
from agentflan_eval.records import Completion, FinishReason, GenerationConfig, Message

log = logging.getLogger(__name__)


def load_model(
    model: ResolvedModel, path: str, device: str | None, dtype: str | None, device_map: str | None
) -> tuple[Any, str]:
    """The model in eval mode, and the device its inputs go to (default: a GPU if there is one)."""
    import torch
    from transformers import AutoModelForCausalLM

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if device != "cpu" else torch.float32)
    with model_load_errors(model):
        # device_map="auto" (accelerate) spreads a model too large for one GPU over all visible ones.
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype, device_map=device_map, trust_remote_code=trusts_remote_code(model)
        )
    if device_map:
        device = str(loaded.get_input_embeddings().weight.device)  # where inputs go in
    else:
        loaded.to(device)
    loaded.eval()
    if str(device).startswith("cuda"):
        # cuDNN's attention builds an execution graph for each new shape and caches it per thread. An agent
        # loop's lengths change at every step: on an H200 the profiler counted 1.26 ms of CPU per attention
        # call (one per layer and step), and a 7B model's 32-row step took 79 ms, of which 15 ms on the GPU
        # (21 ms once that thread had seen the shapes). PyTorch's flash and memory-efficient kernels plan
        # nothing. The switch is process-wide and stays off after close().
        torch.backends.cuda.enable_cudnn_sdp(False)
    return loaded, device


def _abandon(job: Job, done: Future[Completion]) -> None:
    """The caller cancelled its future: stop decoding that row (or never start it)."""
    if done.cancelled():
        job.abandoned = True
        job.future.cancel()


class HFBackend(Backend):
    name = "hf"

    def __init__(
        self,
        model: ResolvedModel,
        chat_template: str | None = None,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str | None = None,
        device_map: str | None = None,
        prefix_cache: bool = True,
        kept_cache_gb: float | None = None,
    ):
        self.resolved = model
        self.batch_size = max(1, batch_size)
        load = load_path(model)
        self.encoder = ChatEncoder.load(model, load, chat_template)
        self.tokenizer, self.template = self.encoder.tokenizer, self.encoder.template
        self.model, self.device = load_model(model, load, device, dtype, device_map)
        self.device_map = device_map
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.template_name = self.template.name
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 0) or 4096)
        self._stop_criteria: dict[tuple[str, ...], Any] = {}
        self._tokenizer_lock = threading.Lock()
        self.prefixes = self._kept_caches(prefix_cache, kept_cache_gb)
        # Models with a plain cache decode in our own continuously batched loop; others through generate().
        self.batcher = (
            Batcher(self.model, self.prefixes, self.batch_size, self._eos_ids(), self._decode_text)
            if self.prefixes is not None
            else None
        )
        self.streaming = self.batcher is not None

    def _kept_caches(self, prefix_cache: bool, kept_cache_gb: float | None) -> PrefixCache | None:
        """Kept prompt caches, where the model's cache is a plain key/value stack on one device (a model
        spread over several GPUs decodes through generate())."""
        one_device = len(set((getattr(self.model, "hf_device_map", None) or {}).values())) <= 1
        if not (prefix_cache and kept_cache_gb != 0 and one_device and PrefixCache.supports(self.model)):
            return None
        # a kept cache per episode in flight (batch_size: the run's concurrency), a few for shared instructions
        budget = None if kept_cache_gb is None else int(kept_cache_gb * 1e9)
        return PrefixCache(self.model, self.device, capacity=self.batch_size + 4, max_bytes=budget)

    # -- prompt building -------------------------------------------------------------------
    def render_example(self, messages: Sequence[Message]) -> str:
        return self.encoder.render(messages)

    def render(self, request: GenerationRequest) -> str:
        return self.encoder.render(request.messages, request.prompt_format)

    def _stopping(self, stops: tuple[str, ...]) -> Any:
        """StopStringCriteria precomputes token tables; building it once per stop set saves ~0.1 s a call."""
        if stops not in self._stop_criteria:
            from transformers import StoppingCriteriaList, StopStringCriteria

            self._stop_criteria[stops] = (
                StoppingCriteriaList([StopStringCriteria(self.tokenizer, list(stops))]) if stops else None
            )
        return self._stop_criteria[stops]

    # -- generation --------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        if self.batcher is not None:
            return [f.result() for f in self._submit(requests, config)]
        fitted = [self._fit(self._encode(r), r, config) for r in requests]
        encoded = [ids for ids, _ in fitted]
        results: list[Completion | None] = [None] * len(requests)
        todo = [i for i, ids in enumerate(encoded) if self.context_length - len(ids) > 1]
        for i in set(range(len(requests))) - set(todo):
            results[i] = self._context_limit(encoded[i])
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            seed = request_seed(requests[chunk[0]], config)  # lock-step: one draw for the whole batch
            for i, c in zip(chunk, self.generate_ids([encoded[i] for i in chunk], config, seed)):
                results[i] = c.model_copy(update={"truncated_tokens": fitted[i][1]})
        return [r for r in results if r is not None]

    def submit(self, request: GenerationRequest, config: GenerationConfig) -> Future[Completion]:
        return self._submit([request], config)[0]

    def _submit(
        self, requests: Sequence[GenerationRequest], config: GenerationConfig
    ) -> list[Future[Completion]]:
        """Hand prompts to the decoding thread; each future resolves when its own reply ends."""
        assert self.batcher is not None
        stops = self.encoder.stops(config.stop)
        out: list[Future[Completion]] = []
        jobs = []
        for request in requests:
            ids, cut = self._fit(self._encode(request), request, config)
            done: Future[Completion] = Future()
            if self.context_length - len(ids) <= 1:
                done.set_result(self._context_limit(ids))
            elif len(ids) < 2:  # nothing to cache before the last token (no chat template does this)
                done.set_result(
                    self.generate_ids([ids], config, request_seed(request, config))[0].model_copy(
                        update={"truncated_tokens": cut}
                    )
                )
            else:
                job = Job(
                    Row(prompt=ids),
                    max_new=min(config.max_new_tokens, self.context_length - len(ids)),
                    temperature=config.temperature,
                    stops=stops,
                    seed=request_seed(request, config),
                    top_p=config.top_p,
                )
                job.future.add_done_callback(partial(self._complete, done, job, stops, cut))
                done.add_done_callback(partial(_abandon, job))
                jobs.append(job)
            out.append(done)
        self.batcher.submit(jobs)
        return out

    def _complete(
        self, done: Future[Completion], job: Job, stops: tuple[str, ...], cut: int, fut: Future[Row]
    ) -> None:
        if not done.set_running_or_notify_cancel():  # cancelled by the caller
            return
        error = CancelledError() if fut.cancelled() else fut.exception()
        if error is None:
            try:
                completion = self._completion(fut.result(), stops, time.perf_counter() - job.started)
                done.set_result(completion.model_copy(update={"truncated_tokens": cut}))
                return
            except Exception as e:  # noqa: BLE001 - a callback's exception would be swallowed, leaving done stuck
                error = e
        done.set_exception(error)

    def _encode(self, request: GenerationRequest) -> list[int]:
        with self._tokenizer_lock:  # the decoding thread uses the tokenizer too
            return self.encoder.encode(request.messages, request.prompt_format)

    def _fit(
        self, ids: list[int], request: GenerationRequest, config: GenerationConfig
    ) -> tuple[list[int], int]:
        return fit_context(ids, request, self.context_length, config.max_new_tokens)

    def _decode_text(self, ids: list[int]) -> str:
        with self._tokenizer_lock:
            return self.tokenizer.decode(ids, skip_special_tokens=True)

    @staticmethod
    def _context_limit(ids: list[int]) -> Completion:
        return Completion(text="", prompt_tokens=len(ids), finish_reason=FinishReason.CONTEXT_LIMIT)

    def _completion(self, row: Row, stops: tuple[str, ...], seconds: float) -> Completion:
        text, stopped = cut_at_stop(self._decode_text(row.generated), stops)
        return Completion(
            text=text,
            prompt_tokens=len(row.prompt),
            completion_tokens=len(row.generated),
            finish_reason=FinishReason.STOP if (stopped or row.reason is RowEnd.EOS) else FinishReason.LENGTH,
            seconds=seconds,
        )

    def generate_ids(
        self, batch: list[list[int]], config: GenerationConfig, seed: int | None = None
    ) -> list[Completion]:
        """transformers' generate on token-id prompts as one left-padded batch (no kept caches). Sampling
        draws from one generator seeded with ``seed`` (default: the run's), so a sampled reply here depends
        on its batch: reruns reproduce it as long as the batches are the same."""
        import torch

        stops = self.encoder.stops(config.stop)
        longest = max(len(ids) for ids in batch)
        max_new = max(1, min(config.max_new_tokens, self.context_length - longest))
        torch.manual_seed(config.seed if seed is None else seed)
        t0 = time.perf_counter()
        rows = self._generate(batch, config, stops, max_new)
        seconds = (time.perf_counter() - t0) / len(batch)
        return [self._completion(row, stops, seconds) for row in rows]

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}

    def _generate(
        self, batch: list[list[int]], config: GenerationConfig, stops: tuple[str, ...], max_new: int
    ) -> list[Row]:
        """transformers' generate: for models whose cache the kept-cache path cannot handle, or --no-prefix-cache."""
        import torch

        longest = max(len(ids) for ids in batch)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(batch), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, longest - len(ids) :] = torch.tensor(ids)
            mask[row, longest - len(ids) :] = 1
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=max_new,
                do_sample=config.temperature > 0,
                temperature=config.temperature if config.temperature > 0 else None,
                top_p=config.top_p if config.temperature > 0 and config.top_p < 1 else None,
                top_k=None,
                stopping_criteria=self._stopping(stops),
                pad_token_id=pad,
            )
        eos_ids, rows = self._eos_ids(), []
        for prompt, ids in zip(batch, out[:, longest:].tolist()):
            n = next((k + 1 for k, t in enumerate(ids) if t in eos_ids), None)
            if n is None:  # rows stopped by a stop string are padded after it
                n = len(ids)
                while n > 0 and ids[n - 1] == pad:
                    n -= 1
            rows.append(
                Row(
                    prompt=list(prompt),
                    generated=ids[:n],
                    reason=RowEnd.EOS if n and ids[n - 1] in eos_ids else None,
                )
            )
        return rows

    def describe(self) -> dict[str, Any]:
        return {
            "model_path": self.resolved.path,
            "model_hash": model_hash(self.resolved),
            "device": self.device,
            "device_map": getattr(self.model, "hf_device_map", None) or self.device_map,
            "dtype": str(self.model.dtype),
            "context_length": self.context_length,
            "kept_prompt_caches": self.prefixes is not None,
            "continuous_batching": self.batcher is not None,
            "kept_cache_bytes": self.prefixes.max_bytes if self.prefixes is not None else 0,
        }

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
