"""The ids a command needs, looked up inside its write transaction and cached there.

A bulk call names the same run and model thousands of times; the cache (``tx.cache``) lives
as long as one transaction, so a decision never reads an id from before BEGIN IMMEDIATE,
and forgets an id when an event of the transaction changes a table it was read from.
"""

from __future__ import annotations

from lightml.errors import InvalidInputError
from lightml.log.transaction import WriteTransaction
from lightml.read import resolve

# The read tables each lookup comes from.
_RUN_TABLES = frozenset({"run"})
_MODEL_TABLES = frozenset({"run", "model"})


def run_id(tx: WriteTransaction, run_name: str | None) -> int:
    if run_name is None:
        raise InvalidInputError("this needs a run: open the handle with run_name=...")
    key = ("run", run_name)
    rid = tx.cache.get(key)
    if rid is None:
        rid = tx.cache.put(key, resolve.require_run_id(tx.conn, run_name), _RUN_TABLES)
    return rid


def optional_run_id(tx: WriteTransaction, run_name: str | None) -> int | None:
    """The run's id, or None for a handle without a run (names then resolve across runs)."""
    return None if run_name is None else run_id(tx, run_name)


def model_id(tx: WriteTransaction, run_name: str | None, model_name: str) -> int:
    if run_name is not None and ("run", run_name) not in tx.cache:
        found = resolve.run_id(tx.conn, run_name)
        if found is None:
            # e.g. the default run before its first write: say where the model is, not that a run is missing
            raise resolve.not_in_run(tx.conn, model_name, run_name)
        tx.cache.put(("run", run_name), found, _RUN_TABLES)
    rid = run_id(tx, run_name)
    key = ("model", rid, model_name)
    mid = tx.cache.get(key)
    if mid is None:
        mid = tx.cache.put(key, resolve.model_id(tx.conn, model_name, rid, run_name), _MODEL_TABLES)
    return mid


def is_live(conn, model_id: int | None) -> bool:
    return model_id is not None and conn.execute("SELECT 1 FROM model WHERE id = ?", (model_id,)).fetchone() is not None
