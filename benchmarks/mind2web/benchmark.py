"""Mind2Web (held-in) under AgentBench's protocol: each step as ranked multiple choice, CoT prompt.

Paper: Deng et al. 2023 (Mind2Web); protocol: AgentBench's ``Mind2Web-std`` task as AgentTuning ran
it. One sample is one step of a task. Its candidate elements ranked below 10 by Mind2Web's candidate
generator (``scores_all_data.pkl``) are shuffled and shown five at a time (the pruned page, the task,
the last five previous actions, "A. None of the above" and B–F) after the three-example CoT prompt
(``agentbench/mind2web/prompt/llm_prompt_cot.json``). The model answers ``Answer: <letter>``,
``Action: CLICK|TYPE|SELECT`` and ``Value: ...``; a picked element goes back into the pool and the
rounds go on until one candidate is left. The last pick is the prediction. Metrics: step success
rate (main: the element is a gold one and operation F1 is 1), element accuracy and operation F1,
over every step (a step whose gold element is not ranked in the top 10 counts as wrong).
Data: the password-protected test set on the Hub (``osunlp/Mind2Web`` ``test.zip``), split
``test_domain`` (AgentBench used its own 177-step subset ``data_std`` of it, read when present).
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
import zipfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from agentflan_eval.benchmark import Benchmark, Environment, GoldAgent, Observation, Sample
from agentflan_eval.benchmarks.common.agentbench import AgentBenchProtocol
from agentflan_eval.benchmarks.common.safe_pickle import load_plain
from agentflan_eval.benchmarks.mind2web.dom import multichoice, operation_f1
from agentflan_eval.data import DataFile, read_json
from agentflan_eval.errors import AgentFlanError, DataFormatError
from agentflan_eval.records import Action, Deviation, Message, Score, Step

log = logging.getLogger(__name__)

HUB = "osunlp/Mind2Web"
PROMPT = DataFile("agentbench/mind2web/prompt/llm_prompt_cot.json", "THUDM/AgentBench data/mind2web/prompt")
SCORES = DataFile(
    "mind2web/scores_all_data.pkl",
    f"Hub {HUB} scores_all_data.pkl (candidate ranks)",
    hub_repo=HUB,
    hub_filename="scores_all_data.pkl",
)
TEST_ZIP = DataFile(
    "mind2web/test.zip", f"Hub {HUB} test.zip (password-protected)", hub_repo=HUB, hub_filename="test.zip"
)
SPLITS = ("data_std", "test_domain")  # AgentBench's subset first, then the official split it was drawn from
PASSWORD_ENV = "MIND2WEB_ZIP_PASSWORD"
TOP_K, PER_ROUND, SEED = 10, 5, 123
_ANSWER = re.compile(r"Answer: (A|B|C|D|E|F)")
_OP = re.compile(r"Action: (CLICK|SELECT|TYPE)")
_VALUE = re.compile(r"Value: (.*)$", re.MULTILINE)


class Mind2WebSample(Sample):
    annotation_id: str
    action_uid: str
    website: str
    task: str
    previous_actions: list[str]
    cleaned_html: str
    pos_ids: list[str]  # gold elements ranked in the top k
    neg_ids: list[str]  # other candidates ranked in the top k
    target_operation: str  # "CLICK", "TYPE new york", ...


def parse_answer(reply: str) -> tuple[str | None, str]:
    """(letter or None, "OP value") as AgentBench reads a reply; no letter means "A"."""
    text = reply.strip()
    letter, op, value = _ANSWER.search(text), _OP.search(text), _VALUE.search(text)
    return (
        letter.group(1) if letter else None,
        f"{op.group(1) if op else ''} {value.group(1).strip() if value else ''}".strip(),
    )


def gold_operation(op: str, value: str) -> str:
    """The gold "OP value" as AgentBench scores it: ``get_data`` renders the target (``B.\\nAction: OP`` and,
    unless a click, ``\\nValue: value``) and reads it back with the reply parser, so a value counts only up
    to its first line break (AgentTuning e33a45d, AgentBench.old src/tasks/mind2web/task.py
    ``postprocess_action``, and dataloader.py ``format_input_multichoice``)."""
    return parse_answer(f"B.\nAction: {op}\n" + ("" if op == "CLICK" else f"Value: {value}"))[1]


def final_prediction(
    n_candidates: int, rounds: Sequence[Sequence[str]], replies: Sequence[str]
) -> tuple[str, str]:
    """Replay the tournament: the last pick, or ('', '') when nothing is picked or the pool runs dry."""
    final, pool = ("", ""), n_candidates
    for choices, reply in zip(rounds, replies):
        pool -= min(PER_ROUND, pool)
        letter, op = parse_answer(reply)
        i = ord(letter) - ord("B") if letter and letter != "A" else -1
        if 0 <= i < len(choices):
            final, pool = (choices[i], op), pool + 1
    return final if pool > 0 else ("", "")


class Mind2WebEnv(Environment):
    def __init__(self, sample: Mind2WebSample, examples: list[Message]):
        self.sample, self.examples = sample, examples
        pool = [*sample.pos_ids, *sample.neg_ids]
        random.Random(f"{SEED}:{sample.id}").shuffle(pool)
        self.pool, self.n_candidates = pool, len(pool)
        self.asked = bool(sample.pos_ids) and len(pool) > 1  # AgentBench asks nothing otherwise
        self.rounds: list[list[str]] = []

    def _round(self) -> str:
        ids = self.pool[:PER_ROUND] or [*self.sample.neg_ids, *self.sample.pos_ids][:PER_ROUND]
        self.pool = self.pool[PER_ROUND:]
        s = self.sample
        context, question, choices = multichoice(s.cleaned_html, s.task, s.previous_actions, ids)
        self.rounds.append([c for c, _ in choices])
        return f"'''\n{context}\n'''\n\n{question}"

    def reset(self) -> list[Message]:
        return [*self.examples, Message(role="user", content=self._round())]

    def step(self, action: Action) -> Observation:
        if not self.asked:
            return Observation(
                text="(no gold element in the top-ranked candidates: scored as wrong)", done=True
            )
        letter = action.name if action.valid else "A"
        i = ord(letter) - ord("B") if letter != "A" else -1
        if 0 <= i < len(self.rounds[-1]):
            self.pool.append(self.rounds[-1][i])
        if len(self.pool) <= 1:
            return Observation(done=True)
        return Observation(text=self._round(), restart=True)  # AgentBench clears the chat between rounds

    def info(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "n_candidates": self.n_candidates, "asked": self.asked}


class Mind2WebGoldAgent:
    """Picks a gold element whenever a round offers one (else "A. None of the above") with the gold operation.

    It plays its own copy of the step's tournament: the candidate order is seeded by the step, so the copy
    asks the same questions as the episode, which the agent checks against the conversation it is given.
    """

    def __init__(self, env: Mind2WebEnv):
        self.env, self.letter = env, ""

    def __call__(self, messages: Sequence[Message]) -> str:
        asked = (
            self.env.reset()[-1].content if not self.letter else self.env.step(Action(name=self.letter)).text
        )
        if not messages or messages[-1].content != asked:
            raise AgentFlanError("Mind2Web gold agent: the conversation is not the tournament it replays")
        s, choices = self.env.sample, self.env.rounds[-1]
        gold = [i for i, c in enumerate(choices) if c in s.pos_ids]
        self.letter = chr(ord("B") + gold[0]) if gold else "A"
        if not gold:
            return "Answer: A."
        op, _, value = s.target_operation.partition(" ")
        return f"Answer: {self.letter}.\nAction: {op}" + (f"\nValue: {value}" if value else "")


class Mind2Web(AgentBenchProtocol, Benchmark):
    name = "mind2web"
    suite = "held-in"
    metric = "step success rate"
    scale = 1.0
    max_turns = 10
    n_standard = 177
    data_files = (PROMPT, SCORES)
    paper = "Deng et al. 2023; protocol: AgentBench (Liu et al. 2023) as run by AgentTuning"

    def _split_dir(self) -> Path | None:
        for split in SPLITS:
            found = self.data.find(DataFile(f"mind2web/{split}", f"Mind2Web {split}"))
            if found is not None and any(found.glob("*.json")):
                return found
        return None

    def unavailable(self) -> str | None:
        if self._split_dir() is None and os.environ.get(PASSWORD_ENV) and not self.data.offline:
            try:
                self._download_split()
            except AgentFlanError as e:
                return f"Mind2Web test data could not be fetched: {e}"
        missing = [f.path for f in self.data_files if self.data.find(f) is None]
        if self._split_dir() is None:
            missing.insert(0, "mind2web/test_domain/*.json")
        if missing:
            return (
                f"needs {', '.join(missing)}: the test set is the password-protected test.zip on the Hub "
                f"({HUB}); extract its test_domain/ into <data-dir>/mind2web/ or set {PASSWORD_ENV} to "
                "download and extract it, with scores_all_data.pkl from the same repo"
            )
        return None

    def _download_split(self) -> None:
        """Fetch test.zip and the ranks from the Hub and extract ``test_domain`` into the cache."""
        archive = self.data.path(TEST_ZIP)
        self.data.path(SCORES)
        target = self.data.cache / "mind2web" / "test_domain"
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if "test_domain/" in n and n.endswith(".json")]
            if not names:
                raise DataFormatError(archive, None, "no test_domain/*.json inside")
            target.mkdir(parents=True, exist_ok=True)
            for n in names:
                try:
                    data = zf.read(n, pwd=os.environ[PASSWORD_ENV].encode())
                except (RuntimeError, NotImplementedError) as e:  # wrong password or AES encryption
                    raise AgentFlanError(
                        f"cannot decrypt {n} in {archive} ({e}); extract it by hand"
                    ) from None
                (target / Path(n).name).write_bytes(data)

    @cached_property
    def examples(self) -> list[Message]:
        msgs = read_json(self.data.path(PROMPT))
        roles = {"agent": "assistant"}
        return [Message(role=roles.get(m["role"], m["role"]), content=m["content"]) for m in msgs[:-1]]

    @cached_property
    def ranks(self) -> dict[str, dict[str, int]]:
        path = self.data.path(SCORES)  # checked against the sha256 recorded at its download
        with open(path, "rb") as fh:
            try:
                return load_plain(fh)["ranks"]
            except (pickle.UnpicklingError, KeyError, TypeError) as e:
                raise DataFormatError(path, None, f"not Mind2Web's candidate ranks ({e})") from None

    def load_samples(self) -> list[Sample]:
        split_dir = self._split_dir()
        if split_dir is None:
            raise AgentFlanError(self.unavailable() or "Mind2Web test split not found")
        samples: list[Sample] = []
        for path in sorted(split_dir.glob("*.json")):
            for task in read_json(path):
                try:
                    samples.extend(self._steps(task, split_dir.name))
                except KeyError as e:
                    raise DataFormatError(path, None, f"task record misses {e}") from None
        return samples

    def _steps(self, task: dict[str, Any], split: str) -> list[Mind2WebSample]:
        out = []
        for i, act in enumerate(task["actions"]):
            sid = f"{task['annotation_id']}_{act['action_uid']}"
            ranks = self.ranks.get(sid, {})

            def top(cands: list[dict[str, Any]], sid: str = sid, ranks: dict = ranks) -> list[str]:
                return [
                    str(c["backend_node_id"])
                    for c in cands
                    if c.get("rank", ranks.get(str(c["backend_node_id"]), TOP_K)) < TOP_K
                ]

            op = act["operation"]
            out.append(
                Mind2WebSample(
                    id=sid,
                    subset=split,
                    annotation_id=task["annotation_id"],
                    action_uid=act["action_uid"],
                    website=task.get("website", ""),
                    task=task["confirmed_task"],
                    previous_actions=list(task["action_reprs"][:i]),
                    cleaned_html=act["cleaned_html"],
                    pos_ids=top(act["pos_candidates"]),
                    neg_ids=top(act["neg_candidates"]),
                    target_operation=gold_operation(op["op"], op["value"]),
                )
            )
        return out

    def deviations(self) -> list[Deviation]:
        out = [
            Deviation(
                task=self.name,
                what="candidate order shuffled with a per-step seed (123, step id)",
                why="AgentBench used one global random stream, so its order depends on the step order",
            ),
        ]
        split = self._split_dir()
        if split is not None and split.name != "data_std":
            out.append(
                Deviation(
                    task=self.name,
                    what=f"official split {split.name} instead of AgentBench's 177-step data_std subset",
                    why="the subset was not published with the data",
                )
            )
        return out

    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, Mind2WebSample)
        return Mind2WebEnv(sample, self.examples)

    def gold_agent(self, sample: Sample) -> GoldAgent | None:
        """The step's gold element and operation from the test set (``Mind2WebGoldAgent``)."""
        assert isinstance(sample, Mind2WebSample)
        return Mind2WebGoldAgent(Mind2WebEnv(sample, self.examples))

    def parse_action(self, reply: str) -> Action:
        letter, op = parse_answer(reply)
        if letter is None:
            return Action(name="A", argument=op, valid=False, raw=reply)
        return Action(name=letter, argument=op, raw=reply)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        """Element, operation F1 and step success of the tournament's last pick."""
        assert isinstance(sample, Mind2WebSample)
        pred = ("", "")
        if env_info.get("asked"):
            pred = final_prediction(env_info["n_candidates"], env_info["rounds"], [s.reply for s in steps])
        gold = bool(sample.pos_ids)
        element = gold and pred[0] in sample.pos_ids
        f1 = operation_f1(pred[1], sample.target_operation) if gold else 0.0
        ok = element and f1 >= 1.0
        return Score(
            value=float(ok),
            success=ok,
            details={
                "element_correct": element,
                "operation_f1": f1,
                "prediction": list(pred),
                "gold": sample.pos_ids,
                "gold_operation": sample.target_operation,
            },
        )

    def task_score(self, scores: Sequence[tuple[str | None, Score]]) -> tuple[float | None, dict[str, float]]:
        if not scores:
            return None, {}
        n = len(scores)
        return sum(s.value for _, s in scores) / n, {
            "element_accuracy": sum(bool(s.details.get("element_correct")) for _, s in scores) / n,
            "operation_f1": sum(float(s.details.get("operation_f1", 0.0)) for _, s in scores) / n,
        }
