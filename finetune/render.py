"""Conversation → token ids and labels through a model_zoo chat template, loss only where flagged.

The text is the template's own rendering of the whole conversation, so training sees exactly what
``run`` will send. Each assistant turn is located in it through the template's prefix property
(rendering the turns before it ends where its text begins); templates that merge consecutive turns
(Llama-2) fall back to finding the text after the previous turn. A supervised span is the turn's text
plus the end-of-turn marker right after it (the template's stop string, or the tokenizer's EOS for
the tokenizer's own template), so the model learns to stop.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentflan_eval.finetune.records import Turn
from agentflan_eval.model_zoo.chat_templates import ChatTemplate
from agentflan_eval.records import Message

IGNORE = -100


@dataclass(frozen=True)
class Rendered:
    text: str
    spans: list[tuple[int, int]]  # [start, end) character spans with loss


def render_spans(turns: Sequence[Turn], template: ChatTemplate, tokenizer: Any = None) -> Rendered:
    """The rendered text up to the end of the last assistant turn, and the supervised spans."""
    msgs = [Message(role=t.role, content=t.content) for t in turns]
    full = template.render(msgs, tokenizer)
    stops = [s for s in template.stop if s]
    if template.name == "tokenizer" and getattr(tokenizer, "eos_token", None):
        stops.append(tokenizer.eos_token)
    end_marker = re.compile(r"\s*(?:" + "|".join(map(re.escape, stops)) + ")") if stops else None
    spans: list[tuple[int, int]] = []
    cursor = 0
    for i, t in enumerate(turns):
        if t.role != "assistant":
            continue
        prefix = template.render(msgs[:i], tokenizer) if i else ""
        start = len(prefix) if full.startswith(prefix) and len(prefix) >= cursor else cursor
        content = t.content
        pos = full.find(content, start)
        if pos < 0 or not content:
            content = t.content.strip()
            pos = full.find(content, start)
        if pos < 0:
            raise ValueError(f"template {template.name!r} does not reproduce assistant turn {i} verbatim")
        end = pos + len(content)
        if end_marker is not None and (m := end_marker.match(full, end)):
            end = m.end()
        cursor = end
        if t.loss:
            spans.append((pos, end))
    return Rendered(full[:cursor], spans)


def tokenize(
    turns: Sequence[Turn], template: ChatTemplate, tokenizer: Any, max_length: int | None = None
) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` (IGNORE outside the supervised spans), cut to ``max_length``.

    Each piece between span boundaries is tokenized on its own, so a label never straddles a span
    edge; a BOS token is prepended when the tokenizer adds one and the text does not carry it.
    """
    r = render_spans(turns, template, tokenizer)
    ids: list[int] = []
    labels: list[int] = []
    own_bos = template.adds_bos or template.name == "tokenizer"
    bos = getattr(tokenizer, "bos_token_id", None)
    if not own_bos and bos is not None and tokenizer("a")["input_ids"][:1] == [bos]:
        ids, labels = [bos], [IGNORE]
    cuts = sorted({0, len(r.text), *(p for s in r.spans for p in s)})
    supervised = set(r.spans)
    for a, b in itertools.pairwise(cuts):
        piece = tokenizer(r.text[a:b], add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if any(s[0] <= a and b <= s[1] for s in supervised) else [IGNORE] * len(piece)
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}


def jinja_template(name: str, bos: str = "") -> str | None:
    """A tokenizer ``chat_template`` that renders exactly like model_zoo's template ``name`` (for the
    saved checkpoint, so ``run --model OUT`` renders as training did); None where none is written."""
    start = "{{ bos_token }}" if bos else ""
    if name == "chatml":
        return (
            start
            + "{% for m in messages %}{{ '<|im_start|>' + ('user' if m['role'] == 'tool' else m['role']) "
            "+ '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        )
    if name == "agentflan":
        return (
            start + "{% for m in messages %}{% if m['role'] == 'assistant' %}"
            "{{ '<|Assistant|>\u0d46' + m['content'] + '\u0d3f\\n ' }}{% else %}"
            "{{ '<|Human|>\u0d46' + m['content'] + '\\n ' }}{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|Assistant|>\u0d46' }}{% endif %}"
        )
    return None
