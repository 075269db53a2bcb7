"""SQL engines for the Database task: SQLite in memory (embedded default) and a MySQL/MariaDB server.

Both answer a statement the way AgentBench's DB container did: the rows as ``str(cursor.fetchall())``
(``"[('Women +60kg Bronze',)]"``), ``"[]"`` for a statement without rows, the client's error text for
a failing one (MySQL: ``1064 (42000): You have an error in your SQL syntax; ...``), cut at 800
characters plus ``[TRUNCATED]``. Every table column is TEXT and every cell its ``str()``, as there.
``table_hash`` is AgentBench's check for INSERT/UPDATE: the MD5 of the sorted 5-hex-digit MD5s of the
rows' ``CONCAT_WS(',', columns)``, formatted like the ``answer_md5`` field of the data.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import time
import unicodedata
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from agentflan_eval.benchmarks.db.dialect import to_sqlite
from agentflan_eval.errors import AgentFlanError, MissingDependencyError

log = logging.getLogger(__name__)

STATEMENT_SECONDS = 30  # AgentBench set none; a runaway cross join must not stall the whole batch
_GROUP_CONCAT_MAX_LEN = 1024  # MySQL 8's default, which AgentBench's answer hashes were made with


@dataclass(frozen=True)
class Table:
    name: str
    columns: list[str]
    rows: list[list[str]]


def observation(result: str) -> str:
    return result[:800] + "[TRUNCATED]" if len(result) > 800 else result


def hash_rows(rows: Sequence[Sequence[Any]]) -> str:
    """AgentBench's table hash computed in Python (SQLite has no MD5 or ordered GROUP_CONCAT)."""
    if not rows:
        return "[(None,)]"  # MD5(NULL) over an empty table
    parts = sorted(
        hashlib.md5(",".join(str(v) for v in row if v is not None).encode()).hexdigest()[:5] for row in rows
    )
    joined = ",".join(parts)[:_GROUP_CONCAT_MAX_LEN]
    return f"[('{hashlib.md5(joined.encode()).hexdigest()}',)]"


class SQLEngine(ABC):
    kind: str
    setup_error: str | None = None  # the table could not be made; the episode goes on without it

    @abstractmethod
    def execute(self, sql: str) -> str:
        """The model's statement; returns the observation (never raises for SQL errors)."""

    @abstractmethod
    def table_hash(self, table: Table) -> str: ...

    @abstractmethod
    def close(self) -> None: ...


def _fold(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).casefold()


def _mysql_collation(a: str, b: str) -> int:
    """Case- and accent-insensitive, like MySQL 8's default utf8mb4_0900_ai_ci ('Montreal' = 'Montréal')."""
    fa, fb = _fold(a), _fold(b)
    return (fa > fb) - (fa < fb)


class SQLiteEngine(SQLEngine):
    """One in-memory database per episode; text compares case- and accent-insensitively, as in MySQL, and
    statements are read with MySQL's lexical rules (``dialect.py``)."""

    kind = "sqlite"

    def __init__(self, table: Table):
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.conn.create_collation("mysql", _mysql_collation)
        # The model's SQL reaches only this in-memory database: ATTACH (and VACUUM INTO, which attaches
        # its target) would create or read files on the host.
        self.conn.set_authorizer(_no_attach)
        if hasattr(self.conn, "setlimit"):  # Python 3.11+: a second lock on the same door
            self.conn.setlimit(getattr(sqlite3, "SQLITE_LIMIT_ATTACHED", 7), 0)
        self._deadline = 0.0
        self.conn.set_progress_handler(lambda: time.monotonic() > self._deadline, 10000)
        self._deadline = time.monotonic() + STATEMENT_SECONDS
        cols = ",".join(f"{_quote(c)} TEXT COLLATE mysql" for c in table.columns)
        marks = ",".join("?" * len(table.columns))
        try:
            self.conn.execute(f"CREATE TABLE {_quote(table.name)} ({cols})")
            self.conn.executemany(f"INSERT INTO {_quote(table.name)} VALUES ({marks})", table.rows)
        except sqlite3.Error as e:  # e.g. two columns named "Score": AgentBench went on without the table
            self.setup_error = str(e)

    def execute(self, sql: str) -> str:
        """The statement as MySQL reads it (``dialect.to_sqlite``): its strings, digit-led names and stored
        decimals."""
        self._deadline = time.monotonic() + STATEMENT_SECONDS
        try:
            return observation(str(self.conn.execute(to_sqlite(sql)).fetchall()))
        except (sqlite3.Error, ValueError, OverflowError) as e:
            return observation(str(e))

    def table_hash(self, table: Table) -> str:
        cols = ",".join(_quote(c) for c in table.columns)
        self._deadline = time.monotonic() + STATEMENT_SECONDS
        try:
            return hash_rows(self.conn.execute(f"SELECT {cols} FROM {_quote(table.name)}").fetchall())
        except sqlite3.Error as e:  # the model dropped or broke the table
            return observation(str(e))

    def close(self) -> None:
        self.conn.close()


def _no_attach(action: int, *_: object) -> int:
    return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_ATTACH else sqlite3.SQLITE_OK


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def connect_args(url: str) -> dict[str, Any]:
    """``mysql://user:password@host:port/?unix_socket=/path`` -> mysql.connector.connect() arguments."""
    parts = urlsplit(url)
    if not parts.scheme.split("+")[0] in ("mysql", "mariadb"):
        raise AgentFlanError(f"--db-url must be a mysql:// or mariadb:// URL, not {url!r}")
    args: dict[str, Any] = {
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
    }
    query = parse_qs(parts.query)
    if "unix_socket" in query:
        args["unix_socket"] = query["unix_socket"][0]
    else:
        args.update(host=parts.hostname or "127.0.0.1", port=parts.port or 3306)
    return args


def _mysql():
    try:
        import mysql.connector
    except ImportError as e:
        raise MissingDependencyError(
            "mysql-connector-python", "heldin", "the Database task's --db-url"
        ) from e
    return mysql.connector


class MySQLEngine(SQLEngine):
    """A fresh database on a MySQL/MariaDB server per episode, dropped at the end."""

    kind = "mysql"

    def __init__(self, url: str, table: Table):
        connector = _mysql()
        self.error = connector.Error
        self.conn = connector.connect(**connect_args(url), autocommit=True, connection_timeout=20)
        self.database = f"agentflan_{uuid.uuid4().hex[:16]}"
        try:
            self._setup(table)
        except BaseException:
            self.close()
            raise

    def _setup(self, table: Table) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"SET SESSION group_concat_max_len = {_GROUP_CONCAT_MAX_LEN}")
            # Not strict: the data's answer hashes include UPDATEs that compare TEXT with numbers
            # ("Truncated incorrect DECIMAL value" is an error in strict mode).
            cur.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
            for limit in (
                f"max_statement_time = {STATEMENT_SECONDS}",
                f"max_execution_time = {STATEMENT_SECONDS}000",
            ):
                try:  # MariaDB and MySQL spell it differently
                    cur.execute(f"SET SESSION {limit}")
                except self.error:
                    continue
            cur.execute(f"CREATE DATABASE `{self.database}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{self.database}`")
            cols = ",".join(f"{_quote(c)} TEXT" for c in table.columns)
            marks = ",".join(["%s"] * len(table.columns))
            try:
                cur.execute(f"CREATE TABLE {_quote(table.name)} ({cols})")
                cur.executemany(
                    f"INSERT INTO {_quote(table.name)} VALUES ({marks})", [tuple(r) for r in table.rows]
                )
            except self.error as e:  # e.g. two columns named "Score": AgentBench went on without the table
                self.setup_error = str(e)

    def execute(self, sql: str) -> str:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                return observation(str(cur.fetchall()) if cur.with_rows else "[]")
        except self.error as e:
            return observation(str(e))

    def table_hash(self, table: Table) -> str:
        cols = ",".join(_quote(c) for c in table.columns)
        return self.execute(
            f"select md5(group_concat(rowhash order by rowhash)) as hash from (SELECT "
            f"substring(MD5(CONCAT_WS(',', {cols})), 1, 5) AS rowhash FROM {_quote(table.name)}) as sub"
        )

    def close(self) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
        except self.error as e:
            log.warning("could not drop %s: %s", self.database, e)
        finally:
            self.conn.close()
