"""Randomly initialised Llama models of a named shape, for speed and memory measurements.

Speed depends on the shape (layers, widths, heads), not on the weights, so a 7B-shaped model with random
weights measures what a real 7B agent model costs without a download. It is given a real tokenizer (the
embedded model's, by default), so prompts, chat template and stop strings are those of a real run; the
replies are random tokens, which run every turn to its token limit: the worst case for throughput.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# LlamaConfig fields of each shape; the vocabulary always comes from the tokenizer.
SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 4096,
    },
    "llama-2-7b": {
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 4096,
    },
    "llama-2-13b": {
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 40,
        "max_position_embeddings": 4096,
    },
}


def build_random_llama(
    out: Path,
    shape: str,
    tokenizer_dir: Path | str,
    dtype: str = "float32",
    device: str = "cpu",
    **overrides: Any,
) -> Path:
    """Write a random-weight Llama of ``shape`` (plus ``overrides``) with ``tokenizer_dir``'s tokenizer to ``out``.

    ``device="cuda"`` initialises a large shape on the GPU (seconds, where a CPU takes minutes)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if shape not in SHAPES:
        raise ValueError(f"unknown model shape {shape!r}; known: {', '.join(SHAPES)}")
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(
        **{
            **SHAPES[shape],
            "vocab_size": len(tok),
            "eos_token_id": tok.eos_token_id,
            "bos_token_id": tok.bos_token_id,
            "pad_token_id": tok.pad_token_id,
            "torch_dtype": dtype,
            **overrides,
        }
    )
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))  # initialised in the target precision: no float32 copy
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return Path(out)


def cached_random_llama(
    shape: str,
    tokenizer_dir: Path | str,
    dtype: str = "float32",
    device: str = "cpu",
    out: Path | str | None = None,
) -> Path:
    """``build_random_llama`` once, then reuse: in ``out`` or <cache>/random-models/<shape>-<dtype>-<tokenizer
    hash>, built in a temporary folder renamed when complete (config.json is written before the weights, so a
    killed build must never look finished)."""
    import hashlib
    import shutil

    from agentflan_eval.data import cache_root

    if out is None:
        tok = Path(tokenizer_dir, "tokenizer.json")
        key = tok.read_bytes() if tok.is_file() else str(Path(tokenizer_dir).resolve()).encode()
        out = cache_root() / "random-models" / f"{shape}-{dtype}-{hashlib.sha256(key).hexdigest()[:10]}"
    out = Path(out)
    if (out / "config.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    build_random_llama(tmp, shape, tokenizer_dir, dtype=dtype, device=device)
    tmp.replace(out)
    return out
