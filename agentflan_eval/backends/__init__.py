"""Model backends behind one interface; each imports its heavy dependencies only when built."""

from __future__ import annotations

from pathlib import Path

from agentflan_eval.backends.base import Backend, GenerationRequest
from agentflan_eval.config import RunConfig
from agentflan_eval.errors import AgentFlanError

__all__ = ["Backend", "GenerationRequest", "make_backend"]


def make_backend(config: RunConfig) -> Backend:
    if config.backend == "replay":
        from agentflan_eval.backends.replay import ReplayBackend

        path = config.replay_file or (Path(config.model) if config.model else None)
        if not path:
            raise AgentFlanError("--backend replay needs --replay-file FILE (or --model FILE)")
        return ReplayBackend(path)
    if config.backend == "openai":
        from agentflan_eval.backends.openai_backend import OpenAIBackend

        if not config.model:
            raise AgentFlanError("--backend openai needs --model NAME (the model name the endpoint serves)")
        return OpenAIBackend(
            config.model,
            config.api_base,
            config.api_key_env,
            config.concurrency,
            timeout=config.request_timeout,
        )
    if config.backend == "hf":
        from agentflan_eval.backends.hf import HFBackend
        from agentflan_eval.model_resolve import resolve

        return HFBackend(
            resolve(config.model),
            config.chat_template,
            config.concurrency,
            config.device,
            config.dtype,
            config.device_map,
            config.prefix_cache,
            config.kept_cache_gb,
        )
    if config.backend == "vllm":
        from agentflan_eval.backends.vllm_backend import VLLMBackend
        from agentflan_eval.backends.vllm_options import VLLMOptions, require_vllm
        from agentflan_eval.model_resolve import resolve

        options = VLLMOptions.from_config(config)  # bad flags fail before anything loads
        require_vllm()
        return VLLMBackend(resolve(config.model), options, config.chat_template, config.seed)
    raise AgentFlanError(f"backend {config.backend!r} is not available in this build")
