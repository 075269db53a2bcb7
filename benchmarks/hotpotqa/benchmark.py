"""HotpotQA (held-out) under AgentTuning's protocol: BOLAA's ReAct agent, as ``eval_heldout/hotpotQA`` ran it.

Paper: Yang et al. 2018 (HotpotQA); protocol: THUDM/AgentTuning @ e33a45d ``eval_heldout/hotpotQA`` (BOLAA's
``React_HotPotQA_run_Agent``, see ``bolaa.py``). Data: the 300 questions of AgentTuning's split (easy, medium,
hard; 100 each), few-shot examples from its ``prompt.txt`` (= ``fewshots.py`` REACT_EXAMPLE). One raw
completion prompt; each step is a Thought generation then an Action generation, each cut at a newline.
Actions: Search[entity], Lookup[keyword], Finish[answer]; at most 10 steps, and the episode halts once the
prompt passes 1,700 cl100k tokens. Metric: token F1 against the gold answer with HotpotQA's official
normalisation (the original's reward), averaged over all questions and reported per level; success is exact
match. Search runs over an offline corpus of every HotpotQA context paragraph in the data dir (a documented
deviation) or live Wikipedia (``--search-backend wikipedia``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from typing import Any, Literal

from pydantic import Field

from agentflan_eval.benchmark import Benchmark, Environment, Sample, TaskOptions
from agentflan_eval.benchmarks.common.qa_metrics import exact_match, f1_score
from agentflan_eval.benchmarks.hotpotqa import bolaa
from agentflan_eval.benchmarks.hotpotqa.corpus import ParagraphCorpus, SearchBackend
from agentflan_eval.benchmarks.hotpotqa.env import THINK, HotpotQAEnv
from agentflan_eval.benchmarks.hotpotqa.split import load_split
from agentflan_eval.data import DataFile, read_json
from agentflan_eval.errors import DataFormatError
from agentflan_eval.records import Action, Decoding, Deviation, Message, Overflow, PromptFormat, Score, Step

LEVELS = ("easy", "medium", "hard")
QUESTION_FILES = {
    lv: DataFile(
        f"agenttuning/hotpotQA/src/data/{lv}.joblib",
        f"THUDM/AgentTuning eval_heldout/hotpotQA/src/data/{lv}.joblib",
    )
    for lv in LEVELS
}
PROMPT_FILE = DataFile(
    "agenttuning/hotpotQA/src/prompt.txt", "THUDM/AgentTuning eval_heldout/hotpotQA/src/prompt.txt"
)
EXTRA_CORPUS = DataFile(
    "hotpotqa/dev_distractor_subset/hotpot_dev_distractor_v1_100.json",
    "HotpotQA dev distractor set, first 103 questions (hotpotqa.github.io)",
)


class HotpotQASample(Sample):
    question: str
    answer: str
    type: str
    context: list[tuple[str, list[str]]]


def _context_pairs(ctx: Any, path: object, line: int) -> list[tuple[str, list[str]]]:
    """Raw HotpotQA ``[[title, sentences]]`` or the HF-datasets ``{title: [], sentences: []}`` layout."""
    if isinstance(ctx, dict) and "title" in ctx and "sentences" in ctx:
        return [(t, list(s)) for t, s in zip(ctx["title"], ctx["sentences"])]
    if isinstance(ctx, list) and all(isinstance(c, list) and len(c) == 2 for c in ctx):
        return [(t, list(s)) for t, s in ctx]
    raise DataFormatError(path, line, "'context' is neither [[title, sentences]] nor {title, sentences}")


class HotpotQAOptions(TaskOptions):
    search_backend: Literal["offline", "wikipedia"] = Field(
        default="offline", description="HotpotQA search: offline HotpotQA-paragraph corpus, or live Wikipedia"
    )


class HotpotQA(Benchmark):
    name = "hotpotqa"
    suite = "held-out"
    metric = "token F1"
    scale = 1.0
    max_turns = 2 * bolaa.MAX_STEPS  # a turn is one generation: a Thought or an Action
    n_standard = 300
    # BOLAA's TGI call (eval_heldout/hotpotQA/src/llms.py): temperature 1e-5, top-p 0.95, i.e. argmax.
    decoding = Decoding(source="AgentTuning eval_heldout/hotpotQA llms.py: T=1e-5, effectively greedy")
    overflow = Overflow.BENCHMARK
    overflow_note = "the episode halts once the prompt passes 1,700 cl100k tokens (BOLAA's is_halted)"
    prompt_format = PromptFormat.COMPLETION
    history = "the whole scratchpad in one raw prompt (BOLAA), halted past 1,700 cl100k tokens"
    server_truncates = False  # BOLAA sent TGI no ``truncate``: a prompt over its input limit was refused
    data_files = (*QUESTION_FILES.values(), PROMPT_FILE, EXTRA_CORPUS)  # the last: the offline search corpus
    stop = ("\n",)  # TGI stop_sequences=["\n"] on both generations (llms.py l.83)
    # BOLAA's budget, 256 new tokens a generation (llms.py l.82), is the run's default --max-new-tokens; the flag
    # stays free here, as a reply is cut at its first newline anyway.
    paper = "Yang et al. 2018; protocol: AgentTuning (Zeng et al. 2023) / BOLAA"
    Options = HotpotQAOptions
    options: HotpotQAOptions

    def load_samples(self) -> list[Sample]:
        return list(self._questions())

    def _questions(self) -> list[HotpotQASample]:
        """Levels interleaved (easy, medium, hard, easy, ...) so that --limit N stays balanced."""
        per_level = []
        for level, f in QUESTION_FILES.items():
            path = self.data.path(f)  # its sha256 checked before it is unpickled
            rows = []
            for line, r in enumerate(load_split(path), 1):
                try:
                    rows.append(
                        HotpotQASample(
                            id=f"{level}-{r['df_index']}",
                            subset=level,
                            question=r["question"],
                            answer=str(r["answer"]),
                            type=r.get("type", ""),
                            context=_context_pairs(r["context"], path, line),
                        )
                    )
                except KeyError as e:
                    raise DataFormatError(path, line, f"missing field {e}") from None
            per_level.append(rows)
        return [s for group in zip(*per_level) for s in group]

    @cached_property
    def examples(self) -> str:
        text = self.data.path(PROMPT_FILE).read_text(encoding="utf-8")
        m = re.search(r'"""(.*?)"""', text, re.DOTALL)  # prompt.txt assigns one triple-quoted string
        if m is None:
            raise DataFormatError(self.data.path(PROMPT_FILE), None, "no triple-quoted example block")
        return m.group(1)

    @cached_property
    def search_backend(self) -> SearchBackend:
        if self.options.search_backend == "wikipedia":
            from agentflan_eval.benchmarks.hotpotqa.wikipedia import WikipediaSearch

            return WikipediaSearch()
        return self._corpus

    @cached_property
    def _corpus(self) -> ParagraphCorpus:
        pages: dict[str, list[str]] = {}
        for s in self._questions():
            for title, sents in s.context:
                pages.setdefault(title, sents)
        for rec in read_json(self.data.path(EXTRA_CORPUS)):
            for title, sents in rec["context"]:
                pages.setdefault(title, sents)
        return ParagraphCorpus(pages)

    def deviations(self) -> list[Deviation]:
        if self.options.search_backend == "wikipedia":
            live = Deviation(
                task=self.name,
                what="live Wikipedia as it is on the day of the run",
                why="the pages BOLAA's runs searched in 2023 have changed since; the search is the same",
            )
            return [live]
        n = len(self._corpus.pages)
        return [
            Deviation(
                task=self.name,
                what=f"offline search corpus of {n} HotpotQA context paragraphs instead of live Wikipedia: a "
                "page is one paragraph, and a query that is not a title opens the best TF-IDF match where "
                "Wikipedia's search picked the hit",
                why="no internet; every question's gold and distractor paragraphs are included, "
                "other Wikipedia articles are not",
            ),
        ]

    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, HotpotQASample)
        return HotpotQAEnv(sample.question, sample.answer, self.examples, self.search_backend)

    def parse_action(self, reply: str) -> Action:
        return bolaa.parse_action(reply)

    def fit_prompt(self, messages: list[Message]) -> list[Message]:
        """The scratchpad as the original kept it: each reply joined as ``" " + format_step(reply)``."""
        return [
            m.model_copy(update={"content": " " + bolaa.format_step(m.content)})
            if m.role == "assistant"
            else m
            for m in messages
        ]

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        """F1 (the original's reward) of the Finish the transcript ends on, re-parsed so rescoring follows the
        parser; success is the original's ``is_correct``, an exact match after normalisation."""
        assert isinstance(sample, HotpotQASample)
        acts = [self.parse_action(s.reply) for s in steps if s.action.name != THINK]
        answer = next((a.argument for a in acts if a.name == "Finish"), None)
        if answer is None:
            return Score(value=0.0, success=False, details={"answer": None, "gold": sample.answer})
        f1, precision, recall = f1_score(answer, sample.answer)
        return Score(
            value=f1,
            success=exact_match(answer, sample.answer),
            details={"answer": answer, "gold": sample.answer, "precision": precision, "recall": recall},
        )
