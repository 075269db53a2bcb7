"""The judge behind WebArena's ``fuzzy_match`` (``evaluation_harness/helper_functions.py`` l.146-208,
web-arena-x/webarena f62e0b9): GPT-4 (``gpt-4-1106-preview``, temperature 0, 768 tokens) asked whether
an answer matches a reference (``llm_fuzzy_match``: "correct" without "incorrect" or "partially
correct" passes) or whether a reported reason a task cannot be done is the actual one
(``llm_ua_match``: "same" passes, "different" fails).

``OpenAIJudge`` sends those exact messages to any OpenAI-compatible ``/chat/completions`` endpoint
(``--webarena-judge``); ``StandIn`` is what scores when no judge is given, a recorded deviation.
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Protocol

from agentflan_eval.benchmarks.common.qa_metrics import normalize_answer

JUDGE_MODEL = "gpt-4-1106-preview"
SYSTEM = "You are a helpful assistant"


class Judge(Protocol):
    name: str

    def fuzzy_match(self, pred: str, reference: str, question: str) -> float: ...

    def ua_match(self, pred: str, reference: str, question: str) -> float: ...


class StandIn:
    """No model: a reference matches when all its normalised tokens are in the answer; an unachievable
    task's reason is never judged the same (only the literal answer ``N/A`` passes)."""

    name = "stand-in (all reference tokens in the answer; N/A only literally)"

    def fuzzy_match(self, pred: str, reference: str, question: str) -> float:
        if not pred:
            return float(not reference)
        ref_toks, pred_toks = normalize_answer(reference).split(), set(normalize_answer(pred).split())
        return float(bool(ref_toks) and all(t in pred_toks for t in ref_toks))

    def ua_match(self, pred: str, reference: str, question: str) -> float:
        return 0.0


def fuzzy_prompt(pred: str, reference: str, question: str) -> str:
    return (
        "Help a teacher to grade the answer of a student given a question. Keep in mind that the student may "
        "use different phrasing or wording to answer the question. The goal is to evaluate whether the answer "
        "is semantically equivalent to the reference answer.\n"
        f"question: {question}\n"
        f"reference answer: {reference}\n"
        "all the string 'N/A' that you see is a special sequence that means 'not achievable'\n"
        f"student answer: {pred}\n"
        "Conclude the judgement by correct/incorrect/partially correct."
    )


def ua_prompt(pred: str, reference: str, question: str) -> str:
    return (
        f"task: {question}\n"
        f"actual unachievable reason: {reference}\n"
        f"reported unachievable reason: {pred}\n"
        "The task described above is inherently unachievable due to the reason specified under 'actual "
        "unachievable reason'. An individual previously attempted this task and was unable to complete it. "
        "They provided a reason for their failure, which is listed under 'reported unachievable reason'. Your "
        "role is to review both the actual and reported reasons. Determine if the reported reason aligns with "
        "the actual reason, even if implicitly. If the stated reason is in line with the actual reason, "
        "respond with 'same'. Otherwise, respond with 'different'."
    )


class OpenAIJudge:
    """The judge model behind an OpenAI-compatible endpoint (API key from ``OPENAI_API_KEY`` if set)."""

    def __init__(self, api_base: str, model: str = JUDGE_MODEL, timeout: float = 120.0):
        self.api_base, self.model, self.timeout = api_base.rstrip("/"), model, timeout
        self.name = f"{model} at {self.api_base}"

    def ask(self, message: str) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": message}],
            "temperature": 0,
            "max_tokens": 768,
            "top_p": 1.0,
        }
        headers = {"Content-Type": "application/json"}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        req = urllib.request.Request(
            f"{self.api_base}/chat/completions", data=json.dumps(body).encode(), headers=headers
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as r:
            return str(json.load(r)["choices"][0]["message"]["content"]).lower()

    def fuzzy_match(self, pred: str, reference: str, question: str) -> float:
        verdict = self.ask(fuzzy_prompt(pred, reference, question))
        if "partially correct" in verdict or "incorrect" in verdict:
            return 0.0
        if "correct" not in verdict:  # upstream asserts here; an unclear verdict is a failed judgement
            raise ValueError(f"judge gave no verdict: {verdict[:200]!r}")
        return 1.0

    def ua_match(self, pred: str, reference: str, question: str) -> float:
        verdict = self.ask(ua_prompt(pred, reference, question))
        if "different" in verdict:
            return 0.0
        if "same" not in verdict:
            raise ValueError(f"judge gave no verdict: {verdict[:200]!r}")
        return 1.0
