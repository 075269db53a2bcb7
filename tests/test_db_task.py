"""Database task: the same real samples on in-memory SQLite and on a throw-away MariaDB server."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from gold_replay import replay_gold
from test_db_dialect import hash_misses

from agentflan_eval.agent_loop import run_episodes
from agentflan_eval.backends.replay import ReplayBackend
from agentflan_eval.benchmarks.db.benchmark import (
    GOLD_DEFECTS,
    Database,
    DBSample,
    parse_db_action,
    select_correct,
)
from agentflan_eval.benchmarks.db.engines import MySQLEngine, SQLiteEngine, hash_rows
from agentflan_eval.benchmarks.db.server import LocalMariaDB, server_unavailable
from agentflan_eval.config import RunConfig
from agentflan_eval.data import DataResolver
from agentflan_eval.records import EpisodeRecord, EpisodeStatus, GenerationConfig, Message, Score
from agentflan_eval.runner import run


@pytest.fixture(scope="module")
def mariadb():
    """A real server in a temporary directory (mariadb-install-db + mariadbd on a socket), stopped at the end."""
    reason = server_unavailable()
    if reason:
        pytest.fail(f"{reason}; scripts/install.sh installs it")
    with LocalMariaDB() as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def bench(request: pytest.FixtureRequest, data_dir: Path) -> Database:
    url = request.getfixturevalue("mariadb").url if request.param == "mariadb" else None
    b = Database(RunConfig(data_dir=data_dir, db_url=url), DataResolver(data_dir))
    assert b.unavailable() is None
    return b


@pytest.fixture(scope="module")
def samples(data_dir: Path) -> dict[str, DBSample]:
    return {s.id: s for s in Database(RunConfig(), DataResolver(data_dir)).load_samples()}  # type: ignore[misc]


def test_the_300_standard_samples(samples: dict[str, DBSample], data_dir: Path) -> None:
    ordered = Database(RunConfig(), DataResolver(data_dir)).load_samples()
    assert len(samples) == 300 and [s.subset for s in ordered[:4]] == ["SELECT", "INSERT", "UPDATE", "SELECT"]
    kinds = [s.kind for s in samples.values()]
    assert kinds.count("INSERT") == kinds.count("UPDATE") == 100 and kinds.count("counting") == 17
    assert samples["db-100"].answer_md5 == "[('03b2eddd4fe471e0f29fc9e907fd5a5d',)]"


@pytest.mark.parametrize(
    ("answer", "label", "ok"),
    [
        (' ["Women +60kg Bronze"]', ["Women +60kg Bronze"], True),
        (" Women +60kg Bronze", ["Women +60kg Bronze"], False),  # not a list literal: the leading space stays
        (" [1174]", ["1174.0"], True),
        (" 1174", ["1174.0"], True),
        (' ["3,729.7"]', ["3,729.7"], True),
        (' ["a", "b"]', ["b", "a"], True),
        (' ["a"]', ["a", "b"], False),
        (' "abc"', ["abc"], False),  # a string literal is a sequence of letters, as with AgentBench's eval()
        ("", ["1"], False),
    ],
)
def test_select_comparison(answer: str, label: list[str], ok: bool) -> None:
    assert select_correct(answer, label) is ok


@pytest.mark.parametrize(
    ("reply", "name", "argument"),
    [
        ("Let me look.\nAction: Operation\n```sql\nSELECT *\nFROM t;\n```", "operation", "SELECT * FROM t;"),
        ('Action: Answer\nFinal Answer: ["x"]', "answer", ' ["x"]'),
        ("Action: Operation\nno block", "invalid", ""),
        ("Final Answer: [1]", "invalid", ""),  # AgentBench needs a line break before "Final Answer:"
        ("I don't know.", "invalid", ""),
    ],
)
def test_parse_action(reply: str, name: str, argument: str) -> None:
    a = parse_db_action(reply)
    assert (a.name, a.argument, a.valid) == (name, argument, name != "invalid")


def test_gold_statements_reproduce_the_answer_hashes(
    samples: dict[str, DBSample], mariadb: LocalMariaDB
) -> None:
    """The table hash after each of the 200 gold INSERT/UPDATEs equals the data's answer_md5 on MariaDB,
    except the listed data defects (tests/test_db_dialect.py checks the same on SQLite)."""
    edits = [s for s in samples.values() if s.subset != "SELECT"]
    wrong = hash_misses(edits, partial(MySQLEngine, mariadb.url))
    assert len(edits) == 200 and {sid for sid, _ in wrong} == set(GOLD_DEFECTS), wrong


def test_gold_agent_replays_reach_the_gold_score(bench: Database, samples: dict[str, DBSample]) -> None:
    """Every sample's gold agent (gold SQL, then AgentBench's commit) through the agent loop, the engine and
    the scorer: at least 99.5 % correct, on SQLite and on MariaDB; what fails is only the listed defects."""
    ordered = bench.load_samples()
    records = replay_gold(bench, ordered)
    failed = sorted(r.sample_id for r in records if not r.score.success)
    assert all(r.status == EpisodeStatus.COMPLETED and len(r.steps) == 2 for r in records)
    assert set(failed) <= set(GOLD_DEFECTS), failed
    assert 1 - len(failed) / len(records) >= 0.995, failed
    value, extra = bench.task_score([(r.subset, r.score) for r in records])
    assert value == pytest.approx((1 + 1 + 0.99) / 3)
    assert extra["SELECT_accuracy"] == extra["INSERT_accuracy"] == 1.0 and extra["UPDATE_accuracy"] == 0.99
    first = next(r for r in records if r.sample_id == "db-100")
    assert first.steps[0].action.argument == samples["db-100"].label[0] and first.steps[0].observation == "[]"


def test_gold_agent_answers_from_the_conversation(bench: Database, samples: dict[str, DBSample]) -> None:
    """The gold agent reads where the episode stands from the messages, so a retried turn gets the same reply."""
    sample = samples["db-0"]
    agent = bench.gold_agent(sample)
    assert agent is not None
    opening = bench.make_env(sample).reset()
    op = agent(opening)
    assert op == f"Action: Operation\n```sql\n{sample.gold_sql}\n```" and agent(opening) == op
    after = [*opening, Message(role="assistant", content=op), Message(role="user", content="[]")]
    assert agent(after) == 'Action: Answer\nFinal Answer: ["Women +60kg Bronze"]'
    assert bench.parse_action(agent(after)).argument == ' ["Women +60kg Bronze"]'


def test_python_hash_matches_the_server(samples: dict[str, DBSample], mariadb: LocalMariaDB) -> None:
    s = samples["db-101"]
    engine = MySQLEngine(mariadb.url, s.table)
    try:
        assert engine.table_hash(s.table) == hash_rows(s.table.rows)
        engine.execute(f"DELETE FROM `{s.table.name}`")
        assert engine.table_hash(s.table) == hash_rows([]) == "[(None,)]"
    finally:
        engine.close()


def test_observations_as_the_mysql_client_gives_them(
    samples: dict[str, DBSample], mariadb: LocalMariaDB
) -> None:
    s = samples["db-0"]
    mysql, lite = MySQLEngine(mariadb.url, s.table), SQLiteEngine(s.table)
    try:
        query = "SELECT Notes FROM `Jiu-Jitsu Championships Results` WHERE Method = 'decision'"
        assert mysql.execute(query) == lite.execute(query) == "[('Women +60kg Bronze',)]"  # case-insensitive
        assert mysql.execute("SELEC Notes").startswith("1064 (42000): You have an error in your SQL syntax")
        assert "syntax error" in lite.execute("SELEC Notes")
        assert mysql.execute("SELECT nope FROM `Jiu-Jitsu Championships Results`").startswith("1054 (42S22)")
        big = mysql.execute("SELECT * FROM `Jiu-Jitsu Championships Results`")
        assert len(big) == 800 + len("[TRUNCATED]") and big.endswith("[TRUNCATED]")
    finally:
        mysql.close()
        lite.close()


def _replay(bench: Database, sample: DBSample, replies: list[str], tmp_path: Path) -> EpisodeRecord:
    script = tmp_path / "replies.jsonl"
    script.write_text(json.dumps({"task": "db", "sample_id": sample.id, "replies": replies}) + "\n")
    done: list[EpisodeRecord] = []
    run_episodes(bench, [sample], ReplayBackend(script), GenerationConfig(), 1, done.append)
    return done[0]


def test_select_trajectories(bench: Database, samples: dict[str, DBSample], tmp_path: Path) -> None:
    sample = samples["db-0"]
    look = (
        "The Notes of the row whose Method is Decision.\nAction: Operation\n```sql\nSELECT Notes FROM "
        "`Jiu-Jitsu Championships Results` WHERE Method = 'Decision';\n```"
    )
    right = _replay(
        bench, sample, [look, 'It is.\nAction: Answer\nFinal Answer: ["Women +60kg Bronze"]'], tmp_path
    )
    assert right.steps[0].observation == "[('Women +60kg Bronze',)]"
    assert right.status == EpisodeStatus.COMPLETED and right.score.success
    wrong = _replay(
        bench, sample, [look, 'Action: Answer\nFinal Answer: ["Women +60kg Semifinal"]'], tmp_path
    )
    assert wrong.score.value == 0.0


def test_insert_and_update_trajectories(
    bench: Database, samples: dict[str, DBSample], tmp_path: Path
) -> None:
    for sid in ("db-100", "db-200"):
        sample = samples[sid]
        gold = f"Action: Operation\n```sql\n{sample.label[0]}\n```"
        right = _replay(bench, sample, [gold, "Action: Answer\nFinal Answer: []"], tmp_path)
        assert right.steps[0].observation == "[]" and right.score.success, right.env_info
        other = sample.label[0].replace("'", "'x", 1)  # the same statement with one value changed
        wrong = _replay(
            bench,
            sample,
            [f"Action: Operation\n```sql\n{other}\n```", "Action: Answer\nFinal Answer: []"],
            tmp_path,
        )
        assert not wrong.score.success
        untouched = _replay(bench, sample, ['Action: Answer\nFinal Answer: ["done"]'], tmp_path)
        assert not untouched.score.success


def test_malformed_replies(bench: Database, samples: dict[str, DBSample], tmp_path: Path) -> None:
    rec = _replay(bench, samples["db-0"], ["Sure! The notes are Women +60kg Bronze."], tmp_path)
    assert rec.status == EpisodeStatus.INVALID_ACTION and rec.invalid_actions == 1 and rec.score.value == 0.0
    broken = _replay(
        bench, samples["db-0"], ["Action: Operation\n```sql\nSELEC x\n```", "Action: Operation\n"], tmp_path
    )
    assert "syntax" in (broken.steps[0].observation or "") and broken.status == EpisodeStatus.INVALID_ACTION


def test_fifteen_operations_then_the_answer(
    bench: Database, samples: dict[str, DBSample], tmp_path: Path
) -> None:
    op = "Action: Operation\n```sql\nSELECT COUNT(*) FROM `Jiu-Jitsu Championships Results`\n```"
    rec = _replay(
        bench, samples["db-0"], [op] * 15 + [op + '\nFinal Answer: ["Women +60kg Bronze"]'], tmp_path
    )
    assert len(rec.steps) == 16 and rec.env_info["operations"] == 15
    assert (
        rec.steps[-1].observation is None and rec.score.success
    )  # the 16th reply is only read for its answer


def test_task_score_is_the_mean_of_the_three_types(bench: Database) -> None:
    scores = [
        ("SELECT", Score(value=1.0, details={"kind": "counting"})),
        ("SELECT", Score(value=0.0, details={"kind": "other"})),
        ("INSERT", Score(value=1.0, details={"kind": "INSERT"})),
        ("UPDATE", Score(value=0.0, details={"kind": "UPDATE"})),
    ]
    value, extra = bench.task_score(scores)
    assert value == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert extra["SELECT_accuracy"] == 0.5 and extra["counting_accuracy"] == 1.0 and extra["n_INSERT"] == 1.0


def test_cli_run_writes_per_type_scores(mariadb: LocalMariaDB, data_dir: Path, tmp_path: Path) -> None:
    """A run over the first 3 samples (one of each type) on the MariaDB engine, through the runner."""
    script = tmp_path / "replay.jsonl"
    insert = (
        "Action: Operation\n```sql\nINSERT INTO `Table of Year, Title, and Role` (Year, Title, Role) VALUES "
        "('2019', 'Aoharu Ride', 'Kou Mabuchi')\n```"
    )
    script.write_text(
        json.dumps(
            {"task": "db", "sample_id": "db-100", "replies": [insert, "Action: Answer\nFinal Answer: []"]}
        )
        + "\n"
        + json.dumps({"task": "db", "sample_id": "*", "replies": ['Action: Answer\nFinal Answer: ["?"]']})
        + "\n"
    )
    config = RunConfig(
        tasks=["db"],
        limit=3,
        backend="replay",
        replay_file=script,
        data_dir=data_dir,
        output_dir=tmp_path / "runs",
        db_url=mariadb.url,
        report=False,
    )
    store, results = run(config)
    db = results.tasks["db"]
    assert db.n == 3 and db.score == pytest.approx(1 / 3)
    assert db.extra["INSERT_accuracy"] == 1.0 and db.extra["SELECT_accuracy"] == 0.0
    manifest = json.loads((store.root / "manifest.json").read_text())
    assert any("MariaDB" in d["what"] for d in manifest["deviations"])


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE '{p}' AS x",
        "ATTACH DATABASE 'file:{p}?mode=rwc' AS x",
        "VACUUM INTO '{p}'",
        "VACUUM INTO 'file:{p}'",
    ],
)
def test_sqlite_statements_cannot_touch_host_files(
    samples: dict[str, DBSample], tmp_path: Path, sql: str
) -> None:
    """Probe: the model's SQL reaches only its in-memory database, never a file on the host."""
    target = tmp_path / "escape.db"
    lite = SQLiteEngine(samples["db-0"].table)
    try:
        out = lite.execute(sql.format(p=target))
        assert "not authorized" in out or "authorization denied" in out, out
        assert lite.execute("SELECT count(*) FROM `Jiu-Jitsu Championships Results`") != "[(0,)]"
    finally:
        lite.close()
    assert not list(tmp_path.iterdir())


def test_sqlite_escape_through_an_episode(
    samples: dict[str, DBSample], data_dir: Path, tmp_path: Path
) -> None:
    bench = Database(RunConfig(data_dir=data_dir), DataResolver(data_dir))
    target = tmp_path / "out" / "y.db"
    target.parent.mkdir()
    replies = [
        f"Action: Operation\n```sql\nATTACH DATABASE '{target}' AS x\n```",
        f"Action: Operation\n```sql\nVACUUM INTO '{target}'\n```",
        'Action: Answer\nFinal Answer: ["x"]',
    ]
    rec = _replay(bench, samples["db-0"], replies, tmp_path)
    assert [s.observation for s in rec.steps[:2]] == ["not authorized", "authorization denied"]
    assert not target.exists()


def test_local_mariadb_statements_cannot_touch_host_files(
    samples: dict[str, DBSample], mariadb: LocalMariaDB, tmp_path: Path
) -> None:
    """Probe: the throw-away server runs as the host's root, yet the model's SQL reads and writes no host file."""
    target = tmp_path / "out.txt"
    mysql = MySQLEngine(mariadb.url, samples["db-0"].table)
    try:
        wrote = mysql.execute(f"SELECT 'x' INTO OUTFILE '{target}'")
        read = mysql.execute("SELECT LOAD_FILE('/etc/passwd')")
    finally:
        mysql.close()
    assert "secure-file-priv" in wrote and not target.exists()
    assert read == "[(None,)]"
