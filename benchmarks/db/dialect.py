"""MySQL's reading of a statement, re-spelled for SQLite, so the SQLite engine stores what MySQL 8 stored.

AgentBench's DBBench ran every statement on MySQL 8 (``AgentBench.old/src/tasks/dbbench/Interaction.py``,
``Container.execute``); its INSERT/UPDATE answer hashes (``answer_md5``) are of the table MySQL left. Where
SQLite reads the same text differently, ``to_sqlite`` rewrites it token by token:

- ``'...'`` and ``"..."`` are strings (MySQL reads double quotes as a string unless ``ANSI_QUOTES``), with
  MySQL's backslash escapes: ``\\n \\t \\r \\b \\Z \\0 \\' \\" \\\\``; ``\\%`` and ``\\_`` keep their backslash; any
  other ``\\x`` is ``x`` (MySQL manual, "String Literals", table 11.1). SQLite has no backslash escapes.
- an unquoted identifier that starts with a digit (``1952_British_Grand_Prix_0``) is back-quoted: MySQL
  allows it, SQLite reads a number followed by garbage.
- a decimal literal that is a whole value of an INSERT's VALUES list or of an UPDATE's SET clause is the
  text MySQL stores from a DECIMAL in a TEXT column, scale as written (``7.500`` -> ``'7.500'``; SQLite
  stores the REAL 7.5 as ``'7.5'``), and so is an integer too large for 64 bits. Elsewhere (WHERE,
  arithmetic) a number stays a number.
- ``#`` and ``-- `` start a comment that runs to the end (AgentBench made every statement one line); ``--``
  without the space is two minus signs; an unclosed quote is left for SQLite to reject, as MySQL does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<squote>'(?:[^'\\]|\\.|'')*')
  | (?P<dquote>"(?:[^"\\]|\\.|"")*")
  | (?P<backtick>`(?:[^`]|``)*`)
  | (?P<unclosed>['"`].*)
  | (?P<comment>\#.*|--(?:\s.*)?$)
  | (?P<decimal>(?<![\w$`.])(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?(?![\w$]))
  | (?P<word>[\w$]+)
  | (?P<space>\s+)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "Z": "\x1a", "0": "\0", "%": "\\%", "_": "\\_"}
_NUMBER_WORD = re.compile(r"\d+(?:[eE]\d+)?|0x[0-9a-fA-F]+|0b[01]+")
_VALUE_BEFORE = {"(", ",", "="}
_VALUE_AFTER = {",", ")", ";", "", "WHERE", "ORDER", "LIMIT", "ON"}
_INT64 = 2**63


@dataclass
class _Tok:
    kind: str
    text: str


def mysql_string(literal: str) -> str:
    """The value of a MySQL string literal, quotes included."""
    quote, body = literal[0], literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        elif c == quote and body[i + 1 : i + 2] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sqlite_string(value: str) -> str:
    """A SQLite literal for ``value`` (NUL, which SQLite's parser cannot take in the text, as char(0))."""
    parts = ["'" + p.replace("'", "''") + "'" for p in value.split("\0")]
    return parts[0] if len(parts) == 1 else "(" + " || char(0) || ".join(parts) + ")"


def decimal_text(literal: str, negative: bool) -> str:
    """What MySQL stores in a TEXT column from a DECIMAL literal: the digits as written, without leading
    zeros of the integer part, and no point when no digit follows it."""
    whole, _, frac = literal.partition(".")
    whole = whole.lstrip("0") or "0"
    text = f"{whole}.{frac}" if frac else whole
    return f"-{text}" if negative and text.strip("0.") else text


def _tokens(sql: str) -> list[_Tok]:
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        if kind == "comment":
            break
        out.append(_Tok(kind, m.group()))
    return out


def _value_regions(toks: list[_Tok]) -> list[bool]:
    """For each token, whether it lies in an INSERT's VALUES lists or in the SET clause of an UPDATE (or of
    MySQL's ``INSERT ... SET``)."""
    words = [t.text.upper() for t in toks if t.kind == "word"]
    inside = [False] * len(toks)
    if not words or words[0] not in ("INSERT", "REPLACE", "UPDATE"):
        return inside
    starts = {"SET"} if words[0] == "UPDATE" else {"SET", "VALUES", "VALUE"}
    depth, on = 0, False
    for i, t in enumerate(toks):
        depth += (t.text == "(") - (t.text == ")")
        if t.kind == "word" and depth == 0:
            up = t.text.upper()
            on = (on or up in starts) and up not in ("WHERE", "ORDER", "LIMIT", "ON", "SELECT")
        inside[i] = on
    return inside


def _neighbour(toks: list[_Tok], i: int, step: int) -> int | None:
    j = i + step
    while 0 <= j < len(toks) and toks[j].kind == "space":
        j += step
    return j if 0 <= j < len(toks) else None


def _text(toks: list[_Tok], j: int | None) -> str:
    return "" if j is None else toks[j].text.upper()


def to_sqlite(sql: str) -> str:
    """``sql`` as MySQL reads it, spelled for SQLite (see the module docstring)."""
    toks = _tokens(sql)
    values = _value_regions(toks)
    out: list[str] = []
    for i, t in enumerate(toks):
        if t.kind in ("squote", "dquote"):
            out.append(sqlite_string(mysql_string(t.text)))
        elif t.kind == "word" and t.text[0].isdigit() and not _NUMBER_WORD.fullmatch(t.text):
            out.append(f"`{t.text}`")
        elif values[i] and _is_value(toks, i):
            prev = _neighbour(toks, i, -1)
            negative = _text(toks, prev) == "-"
            if prev is not None and toks[prev].text in "+-":
                del out[prev - i :]  # the sign (and any space after it) belongs to the literal
            out.append(sqlite_string(decimal_text(t.text, negative)))
        elif t.text == "-" and out and out[-1] == "-":
            out.append(" -")  # MySQL's comment needs "-- " and a space; "5--3" is 5 - -3 there, not 5
        else:
            out.append(t.text)
    return "".join(out)


def _is_value(toks: list[_Tok], i: int) -> bool:
    """A decimal (or a >64-bit integer) that is a whole value: after ``(``/``,``/``=``, optionally signed,
    and before ``,``/``)``/the end of the list."""
    t = toks[i]
    if t.kind == "decimal":
        if "e" in t.text.lower():  # a DOUBLE: MySQL's float formatting is not emulated
            return False
    elif not (t.kind == "word" and t.text.isdigit() and int(t.text) >= _INT64):
        return False
    prev = _neighbour(toks, i, -1)
    if _text(toks, prev) in ("+", "-"):
        assert prev is not None
        prev = _neighbour(toks, prev, -1)
    return _text(toks, prev) in _VALUE_BEFORE and _text(toks, _neighbour(toks, i, 1)) in _VALUE_AFTER
