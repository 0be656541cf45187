"""LightML's SQL, as written for SQLite, in PostgreSQL's words.

The read and write code is written once, in the SQL both engines speak, with SQLite's
parameter styles (``?`` and ``:name``). The PostgreSQL adapter's connection passes every
statement through ``translate`` (cached: the code has a few hundred distinct statements):

- parameters: ``?`` -> ``%s``, ``:name`` -> ``%(name)s``, and a literal ``%`` doubled;
- ``x IS ?`` (SQLite's null-safe equality) -> ``x IS NOT DISTINCT FROM %s``;
- the column ``user`` quoted (a bare ``user`` is PostgreSQL's CURRENT_USER);
- the schema prefix ``main.`` dropped (the registry's schema is on the search path);
- ``LIKE`` -> ``ILIKE`` (SQLite's LIKE ignores ASCII case; callers filter exactly after);
- in ``CREATE TABLE``: 64-bit integers, doubles, text compared byte by byte as SQLite
  does (``COLLATE "C"``), no ``WITHOUT ROWID``. References are checked at every
  statement, as on SQLite (the projections' handlers keep them valid in that order),
  except in a bulk rebuild: ``without_references`` takes them out of a ``CREATE TABLE``,
  to be added once the rows are in (one check of all rows instead of one per row).

String literals and quoted identifiers are left as they are (their ``%`` aside). What
cannot be said in shared SQL (triggers, catalog queries, JSON functions) is not
translated: the adapter has its own statements for it.
"""

from __future__ import annotations

import functools
import re

# A string literal, a quoted identifier, or a run of anything else.
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[^'\"]+|['\"]")

_OUTSIDE_QUOTES = [
    (re.compile(r"\bIS\s+NOT\s+\?"), "IS DISTINCT FROM ?"),
    (re.compile(r"\bIS\s+\?"), "IS NOT DISTINCT FROM ?"),
    (re.compile(r"\bIS\s+NOT\s+:(\w+)"), r"IS DISTINCT FROM :\1"),
    (re.compile(r"\bIS\s+:(\w+)"), r"IS NOT DISTINCT FROM :\1"),
    (re.compile(r"\bmain\."), ""),
    (re.compile(r"(?<![\w\"])user\b(?!\s*\()"), '"user"'),
    (re.compile(r"\bLIKE\b"), "ILIKE"),
]
_DDL = [
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bTEXT\b"), 'TEXT COLLATE "C"'),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT\s+ROWID\s*$"), ")"),
]
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+(TEMP\s+|TEMPORARY\s+)?TABLE\b", re.IGNORECASE)
_NAMED = re.compile(r"(?<!:):([A-Za-z_]\w*)")


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """``sql`` (SQLite's dialect, as LightML writes it) for PostgreSQL through psycopg."""
    ddl = _CREATE_TABLE.match(sql) is not None
    out = []
    for token in _TOKENS.findall(sql):
        if token[0] in "'\"" and len(token) > 1:
            out.append(token.replace("%", "%%"))
            continue
        token = token.replace("%", "%%")
        for pattern, replacement in _OUTSIDE_QUOTES:
            token = pattern.sub(replacement, token)
        if ddl:
            for pattern, replacement in _DDL:
                token = pattern.sub(replacement, token)
        token = _NAMED.sub(r"%(\1)s", token.replace("?", "%s"))
        out.append(token)
    return "".join(out)


# "column TYPE ... REFERENCES table(column)" in a column's definition.
_REFERENCE = re.compile(r"^\s*(\w+)\b([^,\n]*?)\s+REFERENCES\s+(\w+)\s*\(\s*(\w+)\s*\)", re.MULTILINE)
_TABLE_NAME = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)


def without_references(ddl: str) -> tuple[str, list[str]]:
    """A translated ``CREATE TABLE`` without its columns' ``REFERENCES`` clauses, and the
    ``ALTER TABLE ... ADD FOREIGN KEY`` statements that put them back (PostgreSQL names
    the constraints as it names inline ones, ``<table>_<column>_fkey``). Anything else
    is returned as it is, with no statements."""
    table = _TABLE_NAME.match(ddl)
    if table is None:
        return ddl, []
    added = []

    def drop(match: re.Match) -> str:
        column, definition, target, target_column = match.groups()
        added.append(f"ALTER TABLE {table.group(1)} ADD FOREIGN KEY ({column}) REFERENCES {target} ({target_column})")
        return f"{match.group(0)[:match.start(2) - match.start(0)]}{definition}"
    return _REFERENCE.sub(drop, ddl), added
