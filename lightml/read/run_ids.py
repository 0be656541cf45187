"""Run name -> run id: the lookup and its "not found" rule, as queries any read path runs
(``resolve`` for the handles and the CLI; the dashboard's pivot on aiosqlite)."""

from __future__ import annotations

from lightml.errors import NotFoundError
from lightml.read.sql import Statement, Steps, first, query


@query
def run_id(run_name: str) -> Steps[int | None]:
    row = first((yield Statement("SELECT id FROM run WHERE run_name = ?", (run_name,))))
    return row[0] if row else None


@query
def require_run_id(run_name: str | None) -> Steps[int | None]:
    """The run's id (None for no run named); NotFoundError for a name no run has."""
    if run_name is None:
        return None
    found = yield from run_id.steps(run_name)
    if found is None:
        raise NotFoundError(f"run {run_name!r} not found")
    return found
