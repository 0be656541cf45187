"""Rebuilding read tables from the log: ``replay`` (in place, or as of a moment into a new
file) and ``verify`` (rebuild in memory and compare with the live tables).

The registry is reached through its storage engine (``lightml.log.engine``). The past
registry of ``replay --out`` and the rebuild of ``verify`` are SQLite databases (a new
file, a memory database) whatever the registry's engine: the live registry is attached to
them (``StorageEngine.attach_as_live``) and compared there."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import projections
from lightml.log import network_fs, store
from lightml.errors import ConflictError, InvalidInputError, NotARegistryError
from lightml.log.engine import Connection, StorageEngine, engine_for, engine_of, result_location
from lightml.log.events import Change, UnknownEventError, decode_changes
from lightml.log.sqlite_engine import SQLiteEngine
from lightml.write.validation import check_int_range

_CHUNK = 20_000


def read_event_chunks(conn: Connection, *, schema: str | None = None, upto: int | None = None,
                      as_of: str | None = None) -> Iterator[list[Change]]:
    """The log in order, as lists of up to 20,000 changes (never all rows in memory at once);
    ``schema``: an attached database's (``live``). An event that cannot be decoded raises
    NotARegistryError naming it."""
    last = 0
    bound = "" if upto is None else " AND seq <= :upto"
    bound += "" if as_of is None else " AND at <= :as_of"
    events = "events" if schema is None else f"{schema}.events"
    sql = (f"SELECT seq, type, version, payload FROM {events} WHERE seq > :last{bound} "
           f"ORDER BY seq LIMIT {_CHUNK}")
    while True:
        rows = conn.execute(sql, {"last": last, "upto": upto, "as_of": as_of}).fetchall()
        if not rows:
            return
        yield _decoded(rows)
        last = rows[-1][0]


def _decoded(rows: list[tuple]) -> list[Change]:
    """``decode_changes`` for a chunk; when it fails, the rows are decoded one by one to
    name the event at fault (the fast path decodes the whole chunk at once)."""
    try:
        return decode_changes(rows)
    except Exception:  # not JSON, an unknown type, a payload an upcaster cannot read: find which
        pass
    for row in rows:
        try:
            decode_changes([row])
        except UnknownEventError as exc:  # written by a newer LightML (or a changed type)
            raise NotARegistryError(f"event #{row[0]}: {exc}") from None
        except Exception as exc:
            raise DamagedLogError(row[0], row[1], f"its payload cannot be read ({type(exc).__name__}: {exc})") from None
    raise DamagedLogError(rows[0][0], rows[0][1], "the chunk it starts cannot be read")


class DamagedLogError(NotARegistryError):
    """An event of the log that no table can be built from (not JSON, or the wrong shape)."""

    def __init__(self, seq: int, event_type: str, problem: str) -> None:
        self.seq, self.event_type = seq, event_type
        super().__init__(f"damaged log: event #{seq} ({event_type}) {problem}; nothing was rebuilt")


def event_problem(event: Change) -> str | None:
    """Why no table can be built from this event (its payload does not match its schema)."""
    from lightml.log.schemas import payload_problem

    try:
        problem = payload_problem(event.type, event.payload)
    except Exception as exc:  # a payload so malformed that checking it fails
        problem = f"{type(exc).__name__}: {exc}"
    return None if problem is None else f"payload does not match its schema: {problem}"


def first_damaged_event(conn: Connection, schema: str | None = None) -> DamagedLogError | None:
    """The first event of the log whose payload does not match its schema, as the error
    naming it, or None. (Every payload through pydantic: the slow path, taken only when a
    rebuild has failed or built a value of the wrong type.)"""
    for chunk in read_event_chunks(conn, schema=schema):
        for event in chunk:
            problem = event_problem(event)
            if problem is not None:
                return DamagedLogError(event.seq, event.type, problem)
    return None


# What a projection raises when a payload lacks a key or holds the wrong kind of value (and
# the engine's integrity error, when a table refuses the value).
_DAMAGE_SYMPTOMS = (KeyError, TypeError, AttributeError, IndexError, ValueError, OverflowError)


class _remembering_last:
    """The chunks of an iterator, passed through; ``last`` is the one given out last."""

    def __init__(self, chunks: Iterator[list[Change]]) -> None:
        self._chunks, self.last = chunks, []

    def __iter__(self) -> Iterator[list[Change]]:
        for chunk in self._chunks:
            self.last = chunk
            yield chunk


def rebuild_checked(conn: Connection) -> int:
    """``projections.rebuild`` of the connection's own log, refusing a damaged one: an
    event no table can be built from raises DamagedLogError naming it (seq, type).

    The rebuild trusts the payloads (checking each one's schema would cost more than
    applying it); a damaged one shows as a projection failing on it, or as a value of the
    wrong storage class in a rebuilt table, and only then are the events checked one by
    one to name it."""
    chunks = _remembering_last(read_event_chunks(conn))
    # In a savepoint: after a failed statement PostgreSQL takes no other until the rollback
    # to it, and the log must still be read to name the event at fault.
    conn.execute("SAVEPOINT lightml_rebuild")
    try:
        count = projections.rebuild(conn, chunks)
        conn.execute("RELEASE SAVEPOINT lightml_rebuild")
    except (*_DAMAGE_SYMPTOMS, engine_of(conn).integrity_error) as exc:
        conn.execute("ROLLBACK TO SAVEPOINT lightml_rebuild")
        # A schema violation names its event; a payload of the right shape that no table can
        # take (two events giving one metric id, say) is named by the chunk it is in.
        named = first_damaged_event(conn)
        if named is None and chunks.last:
            first, last = chunks.last[0], chunks.last[-1]
            named = DamagedLogError(first.seq, first.type, f"(or a later one up to #{last.seq}) cannot be applied "
                                                           f"({type(exc).__name__}: {exc})")
        raise (named or exc) from None
    mistyped = projections.first_mistyped_value(conn)
    if mistyped is not None:
        raise first_damaged_event(conn) or NotARegistryError(
            f"damaged log: the rebuilt tables hold a value of the wrong type ({mistyped}); nothing was rebuilt")
    return count


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
    path: Path | str  # a registry file, or the URL of a server's registry
    events_applied: int
    last_seq: int | None


def _open_live(db: str | os.PathLike) -> StorageEngine:
    """The engine of the registry ``db`` under its canonical name, once checked to be an
    event-sourced registry this version can read."""
    engine = engine_for(db)
    conn = engine.connect_readonly()
    try:
        store.check_format(conn, engine.location)
        if store.registry_format(conn) is None:
            raise NotARegistryError(f"{engine.location} is empty: not a LightML registry")
    finally:
        conn.close()
    return engine.resolved()


def rebuild_and_commit(conn: Connection) -> tuple[int, int | None]:
    """Inside the caller's transaction (begun with ``store.begin_write``): rebuild from the
    file's own log (a damaged one refused), check the references (foreign keys are off
    during the rebuild), commit. (events, last seq)."""
    engine = engine_of(conn)
    try:
        count = rebuild_checked(conn)
        # Readers that keep tables in memory by log position (the dashboard) see by this that
        # the tables were built again though the log did not move.
        engine.set_meta(conn, "read_tables_built", f"{datetime.now(timezone.utc).isoformat()} {os.urandom(4).hex()}")
        store.mark_tables_guarded_and_explained(conn)
        problems = engine.reference_problems(conn)
        if problems:
            raise NotARegistryError(f"the log produced rows with broken references, e.g. {problems[:3]}")
        last = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
        store.commit_write(conn)
    except BaseException:
        engine.rollback(conn)
        raise
    return count, last


def replay(db: str | os.PathLike, out: str | os.PathLike | None = None, *, as_of: str | None = None,
           upto: int | None = None, force: bool = False) -> ReplayResult:
    """Rebuild the read tables from the log.

    Without ``out``: in place, in one transaction (``as_of``/``upto`` are refused: the
    live registry is never rewound). Rows of the live tables that the log does not explain
    (written behind the log, e.g. by a LightML 1.x client) would be lost, so the replay
    refuses, naming them, unless ``force``. With ``out``: a new registry file holding the
    log up to ``upto`` (an event position) or ``as_of`` (an ISO time), and the tables it
    gives. Either way an event no table can be built from (a damaged log) is named and
    nothing is written.
    """
    live = _open_live(db)
    if as_of is not None and upto is not None:
        raise InvalidInputError("give as_of (--as-of) or upto (--upto), not both")
    as_of_ts = parse_as_of(as_of) if as_of is not None else None
    if upto is not None:
        check_int_range(upto, "upto (--upto), an event position,", 0)
    if out is None:
        if as_of is not None or upto is not None:
            raise InvalidInputError("as_of/upto (--as-of/--upto) write the past registry into out (--out); "
                                    "they never rewind the live file")
        return _replay_in_place(live, bool(force))
    return _replay_into(live, store.new_database_path(out, live.location), as_of_ts, upto)


def _replay_in_place(live: StorageEngine, force: bool) -> ReplayResult:
    network_fs.refuse_writing(live)  # rebuilding in place writes the live registry
    conn = live.connect()
    try:
        live.defer_reference_checks(conn)  # checked once at the end instead of per row
        store.begin_write(conn)
        try:
            # Under the write lock: nobody can add rows between the check and the rebuild.
            # Tables guarded since they last matched the log cannot hold such rows: no check.
            if not force and not store.tables_guarded_and_explained(conn):
                _refuse_unexplained_rows(live)
        except BaseException:
            live.rollback(conn)
            raise
        count, last = rebuild_and_commit(conn)
    finally:
        conn.close()
    return ReplayResult(result_location(live), count, last)


def _refuse_unexplained_rows(live: StorageEngine) -> None:
    """Raise ConflictError when the live tables hold rows a rebuild from the log would not
    give (they would be dropped), naming them; DamagedLogError for a damaged log."""
    mem, _, invalid = _replay_in_memory(live)
    try:
        if invalid:
            raise DamagedLogError(*invalid[0])
        live_tables = {r[0] for r in mem.execute("SELECT name FROM live.sqlite_master WHERE type = 'table'")}
        lines = [f"{table}: {line}" for table in projections.READ_TABLES if table in live_tables
                 for line in _compare_table(mem, table, directions=("live",))]
    finally:
        mem.close()
    if lines:
        raise ConflictError(
            f"the read tables of {live.location} hold rows the log does not explain (written behind the log, "
            f"e.g. by a LightML 1.x client); a replay would drop them: {' | '.join(lines)}. "
            "Copy them elsewhere first, or replay with --force (force=True) to drop them")


def _replay_into(live: StorageEngine, out_path: Path, as_of: str | None, upto: int | None) -> ReplayResult:
    out = SQLiteEngine(out_path)  # the past registry is a SQLite file, whatever the live one's engine
    conn = out.connect()
    try:
        out.prepare_for_writing(conn)
        out.defer_reference_checks(conn)
        live.attach_as_live(conn)
        store.begin_write(conn)
        try:
            store.create_schema(conn)
            conn.execute(
                f"INSERT INTO events ({store.EVENT_COLUMNS}) SELECT {store.EVENT_COLUMNS} FROM live.events "
                "WHERE (:upto IS NULL OR seq <= :upto) AND (:as_of IS NULL OR at <= :as_of) ORDER BY seq",
                {"upto": upto, "as_of": as_of},
            )
        except BaseException:
            out.rollback(conn)
            raise
        count, last = rebuild_and_commit(conn)
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
    """Rebuild every read table from the log in memory and compare it with the live one.
    Events no table can be built from are named (seq, type) and left out of the rebuild."""
    live = _open_live(db)
    try:
        mem, count, invalid = _replay_in_memory(live)
    except DamagedLogError as exc:  # an event that cannot even be read stops the rebuild
        return VerifyResult(False, 0, list(projections.READ_TABLES), {"events": [str(exc)]})
    except NotARegistryError:  # e.g. an event type of a newer LightML: upgrade, not a mismatch
        raise
    except (sqlite3.Error, *_DAMAGE_SYMPTOMS) as exc:  # a log that cannot be replayed at all (into SQLite)
        return VerifyResult(False, 0, list(projections.READ_TABLES),
                            {"events": [f"replaying the log failed: {exc}"]})
    try:
        differences: dict[str, list[str]] = {}
        if invalid:
            differences["events"] = [f"event #{seq} ({event_type}) {problem}" for seq, event_type, problem
                                     in invalid[:_SAMPLE]]
            if len(invalid) > _SAMPLE:
                differences["events"].append(f"... {len(invalid) - _SAMPLE} more damaged event(s)")
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


def _replay_in_memory(live: StorageEngine) -> tuple[sqlite3.Connection, int, list[tuple[int, str, str]]]:
    """A memory database with the live file attached (``live``) and the read tables rebuilt
    from its log, in one read transaction: the rebuild and any comparison see the same
    snapshot of the live file, even while another process keeps writing to it. Returns it,
    the events applied, and the events left out as damaged (seq, type, problem)."""
    mem = sqlite3.connect("file::memory:", uri=True, isolation_level=None)  # uri: ATTACH below is one
    try:
        live.attach_as_live(mem)
        mem.execute("BEGIN")
        invalid: list[tuple[int, str, str]] = []
        count = projections.rebuild(mem, _without_damaged(read_event_chunks(mem, schema="live"), invalid))
    except BaseException:
        mem.close()
        raise
    return mem, count, invalid


def _without_damaged(chunks: Iterator[list[Change]], invalid: list[tuple[int, str, str]]) -> Iterator[list[Change]]:
    """Pass events through, leaving out (and noting) those whose payload does not match
    their schema: no table is built from them."""
    for chunk in chunks:
        kept = []
        for event in chunk:
            problem = event_problem(event)
            if problem is None:
                kept.append(event)
            else:
                invalid.append((event.seq, event.type, problem))
        yield kept


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f'PRAGMA {schema}.table_info("{table}")')]


def _compare_table(mem: sqlite3.Connection, table: str, directions: tuple[str, ...] = ("live", "main")) -> list[str]:
    """Rows only in the live table / only in the replay (``directions``: the side whose
    extra rows are reported), or the columns when they differ."""
    expected, actual = _columns(mem, "main", table), _columns(mem, "live", table)
    if expected != actual:
        return [f"columns differ: live {actual}, replay {expected}"]
    lines = []
    for label, left, right in (("only in live", "live", "main"), ("only in replay", "main", "live")):
        if left not in directions:
            continue
        sql = f'SELECT * FROM {left}."{table}" EXCEPT SELECT * FROM {right}."{table}"'
        n = mem.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        if n:
            sample = mem.execute(f"{sql} LIMIT {_SAMPLE}").fetchall()
            lines.append(f"{n} row(s) {label}: " + "; ".join(map(repr, sample)) + (" ..." if n > _SAMPLE else ""))
    return lines
