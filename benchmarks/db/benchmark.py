"""Database (DBBench, held-in) under AgentTuning's frozen AgentBench (``AgentBench.old``).

Paper: Liu et al. 2023 (AgentBench); tables and questions from WikiSQL, WikiTableQuestions, SQA,
HybridQA and FeTaQA. Data: the 300 samples of ``agentbench_old/dbbench/standard.jsonl`` (100 SELECT
of 7 kinds, 100 INSERT, 100 UPDATE). Protocol (AgentBench v0.1 ``dbbench``): the instruction, "Ok.",
then "<question>\\n<table description>"; a reply whose first ``Action: ...`` line says ``Operation``
runs the first ```sql block (newlines made spaces) and the result comes back as the next message;
any other reply ends the episode, its answer being what follows ``Final Answer:``; at most 15
operations (the 16th reply is read for its answer only). Judging, as AgentBench's metric: SELECT
answers parsed as a Python literal list (else one string) and compared with the label -- one value
numerically when both parse as numbers, else as strings; several values as sets; INSERT/UPDATE by
AgentBench's MD5 hash of the table after the episode against the hash of the gold statement's
effect (``answer_md5``), whatever the model answered. Metric: mean of the SELECT, INSERT and UPDATE
accuracies; per-type accuracies in the extras. Engine: a fresh in-memory SQLite database (default,
a deviation: AgentBench ran MySQL 8; statements are read with MySQL's lexical rules, see ``dialect.py``,
but MySQL-only functions fail and error texts differ) or a fresh
database on the MySQL/MariaDB server given by ``--db-url`` (the model's SQL runs there with that
user's rights: use a throw-away server, e.g. ``agentflan_eval.benchmarks.db.server.LocalMariaDB``).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from pydantic import Field

from agentflan_eval.benchmark import Benchmark, Environment, GoldAgent, Observation, Sample, TaskOptions
from agentflan_eval.benchmarks.common.agentbench import AgentBenchProtocol
from agentflan_eval.benchmarks.db.engines import SQLEngine, Table
from agentflan_eval.data import DataFile, read_jsonl
from agentflan_eval.errors import AgentFlanError, DataFormatError
from agentflan_eval.records import Action, Deviation, EpisodeStatus, Message, Score, Step

INSTRUCTION = """
I will ask you a question, then you should help me operate a MySQL database with SQL to answer the question.
You have to explain the problem and your solution to me and write down your thoughts.
After thinking and explaining thoroughly, every round you can choose to operate or to answer.
your operation should be like this:
Action: Operation
```sql
SELECT * FROM table WHERE condition;
```
You MUST put SQL in markdown format without any other comments. Your SQL should be in one line.
Every time you can only execute one SQL statement. I will only execute the statement in the first SQL code block. Every time you write a SQL, I will execute it for you and give you the output.
If you are done operating, and you want to commit your final answer, then write down:
Action: Answer
Final Answer: ["ANSWER1", "ANSWER2", ...]
DO NOT write this pattern unless you are sure about your answer. I expect an accurate and correct answer.
Your answer should be accurate. Your answer must be exactly the same as the correct answer.
If the question is about modifying the database, then after done operation, your answer field can be anything.
If your response cannot match any pattern I mentioned earlier, you will be judged as FAIL immediately.
Your input will be raw MySQL response, you have to deal with it by yourself.
"""
CATEGORIES = ("SELECT", "INSERT", "UPDATE")
MAX_OPERATIONS = 15
_ACTION = re.compile(r"Action: (.*?)\n")
_SQL = re.compile(r"```sql\n([\s\S]*?)\n```")
_FINAL = re.compile(r"\nFinal Answer:(.*)")
# Gold INSERT/UPDATE statements whose effect does not hash to the sample's answer_md5 on any engine (MySQL
# or SQLite), so no episode can pass them: defects of the data, not of an engine.
GOLD_DEFECTS = {
    "db-225": "the gold UPDATE sets Johnson's Points from '0' to '16'; answer_md5 is neither that table's hash "
    "nor the initial table's, nor that of any one cell set to '16', '0' or '' or any one row deleted",
}
DATA = DataFile(
    "agenttuning/agentbench_old/dbbench/standard.jsonl",
    "THUDM/AgentTuning AgentBench.old/data/dbbench/standard.jsonl",
)


class DBSample(Sample):
    description: str
    add_description: str
    table: Table
    kind: str  # AgentBench's type: other, counting, ..., INSERT, UPDATE
    label: list[str]
    answer_md5: str | None = None  # INSERT/UPDATE: the table hash after the gold statement
    gold_sql: str = ""  # SELECT: the data's ``sql.query``; INSERT/UPDATE: the label's statement


def select_correct(answer: str, label: Sequence[str]) -> bool:
    """AgentBench v0.1's SELECT check (``eval`` there; a literal parse here)."""
    try:
        ans = list(ast.literal_eval(answer))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        ans = [answer]
    if len(ans) == 1 and len(label) == 1:
        try:
            return float(ans[0]) == float(label[0])
        except (ValueError, TypeError):
            return ans[0] == label[0]
    try:
        return set(ans) == set(label)
    except TypeError:
        return False


class DBEnv(Environment):
    def __init__(self, sample: DBSample, db_url: str | None):
        self.sample, self.db_url = sample, db_url
        self.engine: SQLEngine | None = None
        self.answer: str | None = None
        self.operations = 0

    def reset(self) -> list[Message]:
        from agentflan_eval.benchmarks.db.engines import MySQLEngine, SQLiteEngine

        self.engine = (
            MySQLEngine(self.db_url, self.sample.table) if self.db_url else SQLiteEngine(self.sample.table)
        )
        return [
            Message(role="user", content=INSTRUCTION),
            Message(role="assistant", content="Ok."),
            Message(role="user", content=self.sample.description + "\n" + self.sample.add_description),
        ]

    def step(self, action: Action) -> Observation:
        assert self.engine is not None
        if action.name == "operation" and self.operations < MAX_OPERATIONS:
            self.operations += 1
            return Observation(text=self.engine.execute(action.argument))
        if action.name == "operation":  # out of operations: AgentBench reads this last reply for an answer
            final = _FINAL.search(action.raw)
            self.answer = final.group(1) if final else ""
        elif action.name == "answer":
            self.answer = action.argument
        return Observation(done=True, status=None if action.valid else EpisodeStatus.INVALID_ACTION)

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "answer": self.answer,
            "operations": self.operations,
            "engine": self.engine.kind if self.engine else None,
            "setup_error": self.engine.setup_error if self.engine else None,
        }
        if self.engine is not None and self.sample.kind in ("INSERT", "UPDATE"):
            info["table_hash"] = self.engine.table_hash(self.sample.table)
        return info

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()


def parse_db_action(reply: str) -> Action:
    """``Action: Operation`` + the first ```sql block, else the ``Final Answer:`` text, else invalid."""
    m = _ACTION.search(reply)
    if m and m.group(1) == "Operation":
        sql = _SQL.search(reply)
        if sql is None:  # AgentBench ends the episode unanswered
            return Action(name="invalid", valid=False, raw=reply)
        return Action(name="operation", argument=sql.group(1).strip().replace("\n", " "), raw=reply)
    final = _FINAL.search(reply)
    if final is None:
        return Action(name="invalid", valid=False, raw=reply)
    return Action(name="answer", argument=final.group(1), raw=reply)


class DBOptions(TaskOptions):
    db_url: str | None = Field(
        default=None, description="Database task: MySQL/MariaDB URL (default: SQLite in memory)"
    )


class Database(AgentBenchProtocol, Benchmark):
    name = "db"
    suite = "held-in"
    metric = "mean of SELECT/INSERT/UPDATE accuracy"
    scale = 1.0
    max_turns = MAX_OPERATIONS + 1
    n_standard = 300
    # AgentBench v0.1 dropped a sample whose set-up raised; errors during the interaction counted as wrong
    errored_left_out = "start"
    data_files = (DATA,)
    paper = "Liu et al. 2023 (AgentBench); protocol: AgentTuning (Zeng et al. 2023)"
    Options = DBOptions
    options: DBOptions

    def unavailable(self) -> str | None:
        reason = super().unavailable()
        if reason is None and self.options.db_url:
            return _server_problem(self.options.db_url)
        return reason

    def deviations(self) -> list[Deviation]:
        if not self.options.db_url:
            return [
                Deviation(
                    task=self.name,
                    what="SQLite in memory instead of MySQL 8, statements read with MySQL's lexical rules "
                    "(backslash escapes, double-quoted strings, digit-led names, stored decimals as written; "
                    "text compared case- and accent-insensitively)",
                    why="no database server given (--db-url); MySQL-only functions and syntax still fail, "
                    "error messages, float formatting and number-to-text comparisons differ",
                )
            ]
        version = _server_version(self.options.db_url)
        if "mariadb" in version.lower():
            return [
                Deviation(
                    task=self.name,
                    what=f"MariaDB {version} instead of MySQL 8",
                    why="the server given by --db-url; SQL dialects differ in details",
                )
            ]
        return []

    def load_samples(self) -> list[Sample]:
        """Types interleaved (SELECT, INSERT, UPDATE, SELECT, ...) so that --limit N covers all three."""
        path = self.data.path(DATA)
        groups: dict[str, list[DBSample]] = {c: [] for c in CATEGORIES}
        for line, r in read_jsonl(path):
            try:
                kind = r["type"][0]
                t = r["table"]
                table = Table(
                    name=t["table_name"],
                    columns=[c["name"] for c in t["table_info"]["columns"]],
                    rows=[[str(v) for v in row] for row in t["table_info"]["rows"]],
                )
                category = kind if kind in ("INSERT", "UPDATE") else "SELECT"
                groups[category].append(
                    DBSample(
                        id=f"db-{line - 1}",
                        subset=category,
                        description=r["description"],
                        add_description=r["add_description"],
                        table=table,
                        kind=kind,
                        label=r["label"],
                        answer_md5=r.get("answer_md5") if category != "SELECT" else None,
                        gold_sql=_gold_sql(r, category),
                    )
                )
            except (KeyError, IndexError, TypeError) as e:
                raise DataFormatError(path, line, f"{type(e).__name__}: {e}") from None
        longest = max(len(g) for g in groups.values())
        return [g[i] for i in range(longest) for g in groups.values() if i < len(g)]

    def make_env(self, sample: Sample) -> Environment:
        assert isinstance(sample, DBSample)
        return DBEnv(sample, self.options.db_url)

    def gold_agent(self, sample: Sample) -> GoldAgent | None:
        """Runs the sample's gold SQL, then commits in AgentBench's answer format: the label for a SELECT
        (whatever its SQL gave: the data's SELECT queries are often not runnable), anything for an edit."""
        assert isinstance(sample, DBSample)
        operation = f"Action: Operation\n```sql\n{sample.gold_sql}\n```"
        answer = json.dumps(sample.label if sample.subset == "SELECT" else [], ensure_ascii=False)
        commit = f"Action: Answer\nFinal Answer: {answer}"

        def agent(messages: Sequence[Message]) -> str:
            ran = any(m.role == "assistant" and m.content == operation for m in messages)
            return commit if ran or not sample.gold_sql else operation

        return agent

    def parse_action(self, reply: str) -> Action:
        return parse_db_action(reply)

    def score(self, sample: Sample, steps: Sequence[Step], env_info: dict[str, Any]) -> Score:
        assert isinstance(sample, DBSample)
        if sample.subset == "SELECT":
            answer = env_info.get("answer") or ""
            ok = select_correct(answer, sample.label)
            return Score(
                value=float(ok),
                success=ok,
                details={"kind": sample.kind, "answer": answer, "label": sample.label},
            )
        got = env_info.get("table_hash")
        ok = got is not None and got == sample.answer_md5
        return Score(
            value=float(ok),
            success=ok,
            details={"kind": sample.kind, "table_hash": got, "answer_md5": sample.answer_md5},
        )

    def subset_scores(self, scores: Sequence[tuple[str | None, Score]]) -> dict[str, float]:
        by_kind: dict[str, list[float]] = {}
        for subset, s in scores:
            for key in {subset, s.details.get("kind")} - {None}:
                by_kind.setdefault(str(key), []).append(s.value)
        return {k: sum(v) / len(v) for k, v in sorted(by_kind.items())}

    def task_score(self, scores: Sequence[tuple[str | None, Score]]) -> tuple[float | None, dict[str, float]]:
        """Mean over the categories present of per-category accuracy (AgentBench's overall_cat_accuracy)."""
        per = self.subset_scores(scores)
        present = [per[c] for c in CATEGORIES if c in per]
        extra = {f"{k}_accuracy": v for k, v in per.items()}
        extra.update({f"n_{c}": float(sum(1 for sub, _ in scores if sub == c)) for c in CATEGORIES})
        return (sum(present) / len(present) if present else None), extra


def _gold_sql(record: dict[str, Any], category: str) -> str:
    if category != "SELECT":
        return str(record["label"][0])
    sql = record.get("sql")
    return str(sql.get("query", "")) if isinstance(sql, dict) else ""


@cache
def _server_version(url: str) -> str:
    from agentflan_eval.benchmarks.db.engines import _mysql, connect_args

    conn = _mysql().connect(**connect_args(url), connection_timeout=10)
    try:
        return str(conn.server_info)
    finally:
        conn.close()


def _server_problem(url: str) -> str | None:
    try:
        _server_version(url)
    except AgentFlanError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001 - any connection failure means "not available"
        return f"cannot connect to --db-url: {e}"
    return None
