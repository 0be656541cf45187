"""Copying a registry's whole log between stores (``lightml copy --from SRC --to DST``): a
laptop's SQLite file into the lab's PostgreSQL, a PostgreSQL registry into a SQLite file to
carry home, or any other pair.

The events go across as they are stored (position, type, payload version, payload text, time
and actor), so the copy's log is the source's, byte for byte; the copy's read tables are then
built from its own log, exactly as ``replay`` builds them, in the same transaction. So the
destination holds all of it or, on any error, nothing; and ``verify`` passes on both ends.
The source is read as one snapshot: writers may go on meanwhile, the copy is the log as of
the moment the copy began.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lightml.errors import ConflictError, InvalidInputError, NotARegistryError
from lightml.log import network_fs, store
from lightml.log.engine import engine_for, result_location
from lightml.log.replay import rebuild_and_commit

_CHUNK = 20_000
_ROWS = f"SELECT {store.EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT {_CHUNK}"


@dataclass
class CopyResult:
    source: object       # each a file's Path, or a server registry's URL (no password)
    destination: object
    events: int
    last_seq: int | None


def copy_registry(source: str | os.PathLike, destination: str | os.PathLike) -> CopyResult:
    """Copy the registry ``source`` into ``destination`` (a new SQLite file, an empty
    database, or an empty registry): every event, ids, times and actors kept, then the read
    tables built from the copied log. A destination that holds events is refused
    (ConflictError) and left as it was; so is one holding other tables (NotARegistryError).
    """
    src = engine_for(source)
    dst = engine_for(destination)
    if src.location == dst.location:
        raise InvalidInputError(f"--from and --to are the same registry ({src.location})")
    network_fs.refuse_writing(dst)
    reader = src.checked(create=False).connect_readonly()
    try:
        store.check_format(reader, src.location)
        if store.registry_format(reader) is None:
            raise NotARegistryError(f"{src.location} is empty: not a LightML registry")
        src.begin_snapshot(reader)  # one moment of the source, whatever its writers do
        dst = dst.checked(create=True)
        new_file = dst.dialect == "sqlite" and not os.path.exists(dst.location)
        try:
            count, last = _copy_into(reader, dst)
        except BaseException:
            if new_file:  # nothing of a failed copy is left behind
                for path in (dst.location, *store.companion_files(dst.location)):
                    if os.path.exists(path):
                        os.remove(path)
            raise
    finally:
        reader.close()
    return CopyResult(result_location(src), result_location(dst), count, last)


def _copy_into(reader, dst) -> tuple[int, int | None]:
    """One transaction: the schema (if the destination is empty), the events, the tables."""
    writer = dst.connect()
    try:
        store.check_format(writer, dst.location)
        dst.prepare_for_writing(writer)
        dst.defer_reference_checks(writer)  # checked once, after the rebuild
        store.begin_write(writer)
        try:
            if store.registry_format(writer) is None:
                store.create_schema(writer)
            (present,), = writer.execute("SELECT count(*) FROM events").fetchall()
            if present:
                raise ConflictError(f"{dst.location} already holds {present} events: copy into an empty "
                                    "registry (a new file, or an empty database)")
            _copy_events(reader, writer)
        except BaseException:
            dst.rollback(writer)
            raise
        return rebuild_and_commit(writer)
    finally:
        writer.close()


def _copy_events(reader, writer) -> None:
    last = 0
    while rows := reader.execute(_ROWS, (last,)).fetchall():
        writer.executemany(store.INSERT_EVENT, [tuple(row) for row in rows])
        last = rows[-1][0]
