"""Rebuilding read tables from the log: ``replay`` (in place, or as of a moment into a new
file) and ``verify`` (rebuild in memory and compare with the live tables)."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import projections
from lightml import store
from lightml.errors import InvalidInputError, NotARegistryError
from lightml.events import Change, UnknownEventError, decode_changes

_CHUNK = 20_000


def read_event_chunks(conn: sqlite3.Connection, *, schema: str = "main", upto: int | None = None,
                      as_of: str | None = None) -> Iterator[list[Change]]:
    """The log in order, as lists of up to 20,000 changes (never all rows in memory at once)."""
    last = 0
    bound = "" if upto is None else " AND seq <= :upto"
    bound += "" if as_of is None else " AND at <= :as_of"
    sql = (f"SELECT seq, type, version, payload FROM {schema}.events WHERE seq > :last{bound} "
           f"ORDER BY seq LIMIT {_CHUNK}")
    while True:
        rows = conn.execute(sql, {"last": last, "upto": upto, "as_of": as_of}).fetchall()
        if not rows:
            return
        try:
            yield decode_changes(rows)
        except UnknownEventError as exc:
            raise NotARegistryError(str(exc)) from None
        last = rows[-1][0]


def parse_as_of(text: str) -> str:
    """An ISO-8601 time (naive means UTC, as the log is) -> the log's timestamp format."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"--as-of must be an ISO-8601 time like 2026-11-28T14:30:00, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class ReplayResult:
    path: Path
    events_applied: int
    last_seq: int | None


def _open_live(db: str | os.PathLike) -> tuple[Path, sqlite3.Connection]:
    path = Path(db).expanduser()
    conn = store.connect_readonly(path)
    try:
        store.check_format(conn, path)
        if store.registry_format(conn) is None:
            raise NotARegistryError(f"{path} is empty: not a LightML registry")
    except BaseException:
        conn.close()
        raise
    return path.resolve(), conn


def _rebuild_and_commit(conn: sqlite3.Connection) -> tuple[int, int | None]:
    """Inside the caller's open transaction: rebuild from the file's own log, check the
    references (foreign keys are off during the rebuild), commit. (events, last seq)."""
    try:
        count = projections.rebuild(conn, read_event_chunks(conn))
        # Readers that keep tables in memory by log position (the dashboard) see by this that
        # the tables were built again though the log did not move.
        conn.execute("INSERT OR REPLACE INTO lightml_meta (key, value) VALUES ('read_tables_built', ?)",
                     (f"{datetime.now(timezone.utc).isoformat()} {os.urandom(4).hex()}",))
        problems = conn.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise NotARegistryError(f"the log produced rows with broken references, e.g. {problems[:3]}")
        last = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return count, last


def replay(db: str | os.PathLike, out: str | os.PathLike | None = None, *, as_of: str | None = None,
           upto: int | None = None) -> ReplayResult:
    """Rebuild the read tables from the log.

    Without ``out``: in place, in one transaction (``as_of``/``upto`` are refused: the
    live registry is never rewound). With ``out``: a new registry file holding the log up
    to ``upto`` (an event position) or ``as_of`` (an ISO time), and the tables it gives.
    """
    live_path, live = _open_live(db)
    live.close()
    if as_of is not None and upto is not None:
        raise InvalidInputError("give as_of (--as-of) or upto (--upto), not both")
    as_of_ts = parse_as_of(as_of) if as_of is not None else None
    if upto is not None and (isinstance(upto, bool) or not isinstance(upto, int) or upto < 0):
        raise InvalidInputError(f"upto (--upto) must be a non-negative event position, got {upto!r}")
    if out is None:
        if as_of is not None or upto is not None:
            raise InvalidInputError("as_of/upto (--as-of/--upto) write the past registry into out (--out); "
                                    "they never rewind the live file")
        return _replay_in_place(live_path)
    out_path = Path(os.path.abspath(Path(out).expanduser()))
    if out_path == live_path:
        raise InvalidInputError("--out must be a different file from --db")
    if out_path.exists():
        raise InvalidInputError(f"{out_path} already exists; choose a new file for --out")
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"folder {out_path.parent} does not exist")
    return _replay_into(live_path, out_path, as_of_ts, upto)


def _replay_in_place(path: Path) -> ReplayResult:
    conn = store.connect(path)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")  # checked once at the end instead of per row
        store.begin_immediate(conn)
        count, last = _rebuild_and_commit(conn)
    finally:
        conn.close()
    return ReplayResult(path, count, last)


def add_missing_read_tables(path: str | os.PathLike, *, timeout: float = store.DEFAULT_TIMEOUT) -> list[str]:
    """Bring a registry written by an earlier 2.x build up to this one's read tables.

    The missing tables are built from the registry's own log (by rebuilding every read
    table, in one transaction, exactly as ``replay`` does), so the registry answers as if it
    had always had them. Returns the tables that were missing.
    """
    conn = store.connect(Path(path), timeout=timeout)
    try:
        if not store.missing_read_tables(conn):
            return []
        conn.execute("PRAGMA foreign_keys = OFF")  # checked once at the end instead of per row
        try:
            store.begin_immediate(conn)
            missing = store.missing_read_tables(conn)  # another process may have added them meanwhile
            if missing:
                _rebuild_and_commit(conn)
            else:
                conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # e.g. a read-only file or folder
            raise NotARegistryError(
                f"{path} was written by an earlier LightML 2 and lacks the tables "
                f"{', '.join(store.missing_read_tables(conn))}; adding them failed ({exc}). "
                f"Make the file writable and run: lightml replay --db {path}"
            ) from None
    finally:
        conn.close()
    return missing


def _replay_into(live_path: Path, out_path: Path, as_of: str | None, upto: int | None) -> ReplayResult:
    conn = store.connect(out_path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("ATTACH DATABASE ? AS live", (live_path.as_uri() + "?mode=ro",))
        conn.execute("BEGIN IMMEDIATE")
        try:
            store.create_schema(conn)
            conn.execute(
                f"INSERT INTO events ({store.EVENT_COLUMNS}) SELECT {store.EVENT_COLUMNS} FROM live.events "
                "WHERE (:upto IS NULL OR seq <= :upto) AND (:as_of IS NULL OR at <= :as_of) ORDER BY seq",
                {"upto": upto, "as_of": as_of},
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        count, last = _rebuild_and_commit(conn)
        conn.execute("DETACH DATABASE live")
    except BaseException:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{out_path}{suffix}").unlink(missing_ok=True)
        raise
    conn.close()
    return ReplayResult(out_path, count, last)


@dataclass
class VerifyResult:
    ok: bool
    events: int
    tables_checked: list[str]
    # table -> human-readable lines: rows only in the live table / only in the replay
    differences: dict[str, list[str]] = field(default_factory=dict)


_SAMPLE = 5


def verify(db: str | os.PathLike) -> VerifyResult:
    """Rebuild every read table from the log in memory and compare it with the live one."""
    live_path, live = _open_live(db)
    live.close()
    mem = sqlite3.connect("file::memory:", uri=True, isolation_level=None)  # uri: ATTACH below is one
    try:
        mem.execute("ATTACH DATABASE ? AS live", (live_path.as_uri() + "?mode=ro",))
        # One read transaction: the rebuild and the comparison see the same snapshot of the
        # live file, even while another process keeps writing to it.
        mem.execute("BEGIN")
        invalid: list[str] = []
        try:
            count = projections.rebuild(mem, _validated(read_event_chunks(mem, schema="live"), invalid))
        except (sqlite3.Error, KeyError, TypeError) as exc:  # a log that cannot be replayed at all
            invalid.append(f"replaying the log failed: {exc}")
            return VerifyResult(False, 0, list(projections.READ_TABLES), {"events": invalid})
        differences: dict[str, list[str]] = {}
        if invalid:
            differences["events"] = invalid
        live_tables = {r[0] for r in mem.execute("SELECT name FROM live.sqlite_master WHERE type = 'table'")}
        for table in projections.READ_TABLES:
            if table not in live_tables:
                differences[table] = ["table missing from the live registry"]
                continue
            lines = _compare_table(mem, table)
            if lines:
                differences[table] = lines
        mem.execute("ROLLBACK")
        return VerifyResult(not differences, count, list(projections.READ_TABLES), differences)
    finally:
        mem.close()


def _validated(chunks: Iterator[list[Change]], invalid: list[str]) -> Iterator[list[Change]]:
    """Pass events through, noting (a sample of) payloads that do not match their schema."""
    from lightml.event_schemas import payload_problem

    for chunk in chunks:
        for event in chunk:
            if len(invalid) < _SAMPLE:
                problem = payload_problem(event.type, event.payload)
                if problem is not None:
                    invalid.append(f"event #{event.seq} ({event.type}) payload does not match its schema: {problem}")
        yield chunk


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA {schema}.table_info("{table}")')]


def _compare_table(mem: sqlite3.Connection, table: str) -> list[str]:
    expected, actual = _columns(mem, "main", table), _columns(mem, "live", table)
    if expected != actual:
        return [f"columns differ: live {actual}, replay {expected}"]
    lines = []
    for label, left, right in (("only in live", "live", "main"), ("only in replay", "main", "live")):
        sql = f'SELECT * FROM {left}."{table}" EXCEPT SELECT * FROM {right}."{table}"'
        n = mem.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        if n:
            sample = mem.execute(f"{sql} LIMIT {_SAMPLE}").fetchall()
            lines.append(f"{n} row(s) {label}: " + "; ".join(map(repr, sample)) + (" ..." if n > _SAMPLE else ""))
    return lines
