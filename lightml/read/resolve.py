"""Name -> id resolution, shared by the write commands and the read queries."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, NamedTuple

from lightml.errors import AmbiguousNameError, NotFoundError
from lightml.log.events import upcast
from lightml.read.natural import natural_key
from lightml.read.run_ids import require_run_id, run_id  # noqa: F401  (the one rule, re-exported)


class ModelRef(NamedTuple):
    """A model found from how a user spelled it: its id, its real name and its run's name."""

    id: int
    model_name: str
    run_name: str | None


def find_model(conn: sqlite3.Connection, spelling: str, run_name: str | None = None) -> ModelRef:
    """The model a user means by ``spelling``: THE rule for naming a model on every read path
    (compare, diff, stats, top, history, info, metric-get, notes and the other edits).

    1. An exact model name always wins (hub ids like ``meta-llama/Llama-3.2-1B`` contain
       ``/``, and names may contain ``@``). Of the models with that name, the one in
       ``run_name`` if there is one; else the only one in any run (``run_name`` is a
       preference, not a filter); several and none in ``run_name``: an error listing them.
    2. Otherwise a run-qualified spelling: ``RUN/MODEL`` or ``MODEL@RUN``, split at any
       ``/`` or ``@`` (run and model names may hold them too) where that run has that model.
       It names its run itself: ``run_name`` does not change it. Two readings naming
       different models: an error listing them.
    3. Otherwise NotFoundError.

    A name in several runs is ambiguous; the error gives, for each, a spelling that resolves
    to it (``RUN/MODEL``, or ``MODEL@RUN`` where the first is taken by an exact name).
    Hidden models are found like any other (hiding only keeps them out of listings).
    """
    return find_model_by_run_id(conn, spelling, require_run_id(conn, run_name))


def find_model_by_run_id(conn: sqlite3.Connection, spelling: str, run: int | None) -> ModelRef:
    """``find_model`` with the preferred run given by id (a handle knows its run's id)."""
    meant, exact = _meant(conn, spelling, run)
    if len(meant) == 1:
        return meant[0]
    if meant:
        what = f"model {spelling!r} exists in several runs" if exact else f"{spelling!r} names several models"
        raise _ambiguous(conn, what, meant)
    how = " (no model of that name, and no run has it as RUN/MODEL or MODEL@RUN)" if "/" in spelling or "@" in spelling else ""
    raise NotFoundError(f"model {spelling!r} not found{how}")


def _meant(conn: sqlite3.Connection, spelling: str, run: int | None) -> tuple[list[ModelRef], bool]:
    """The models ``spelling`` may mean by ``find_model``'s rule (one: found; several:
    ambiguous), and whether they were found by their exact name."""
    exact = _models_named(conn, spelling)
    if exact:
        preferred = [ref for ref, ref_run in exact if ref_run == run] if run is not None else []
        return (preferred if len(preferred) == 1 else [ref for ref, _ in exact]), True
    return _qualified_readings(conn, spelling), False


def _models_named(conn: sqlite3.Connection, model_name: str) -> list[tuple[ModelRef, int | None]]:
    return [(ModelRef(mid, model_name, name), rid) for mid, name, rid in conn.execute(
        "SELECT m.id, r.run_name, m.run_id FROM model m LEFT JOIN run r ON r.id = m.run_id "
        "WHERE m.model_name = ? ORDER BY r.run_name, m.id", (model_name,))]


def _qualified_readings(conn: sqlite3.Connection, spelling: str) -> list[ModelRef]:
    """Every model that ``RUN/MODEL`` or ``MODEL@RUN`` readings of ``spelling`` name (distinct)."""
    splits = []
    for i, ch in enumerate(spelling):
        if ch == "/":
            splits.append((spelling[:i], spelling[i + 1:]))  # (run, model)
        elif ch == "@":
            splits.append((spelling[i + 1:], spelling[:i]))
    found: dict[int, ModelRef] = {}
    for run_part, model_part in splits:
        row = conn.execute(
            "SELECT m.id FROM model m JOIN run r ON r.id = m.run_id WHERE r.run_name = ? AND m.model_name = ?",
            (run_part, model_part)).fetchone()
        if row is not None:
            found.setdefault(row[0], ModelRef(row[0], model_part, run_part))
    return list(found.values())


def spelling_for(conn: sqlite3.Connection, ref: ModelRef) -> str | None:
    """How to name this model so that ``find_model`` (without a run) finds exactly it: the bare
    name when unique, else ``RUN/MODEL``, else ``MODEL@RUN``; None when no spelling does."""
    candidates = [ref.model_name]
    if ref.run_name is not None:
        candidates += [f"{ref.run_name}/{ref.model_name}", f"{ref.model_name}@{ref.run_name}"]
    for candidate in candidates:
        if _meant(conn, candidate, None)[0] == [ref]:
            return candidate
    return None


def _ambiguous(conn: sqlite3.Connection, what: str, refs: list[ModelRef]) -> AmbiguousNameError:
    described = []
    for ref in refs:
        spelling = spelling_for(conn, ref)
        described.append(repr(spelling) if spelling is not None
                         else f"{ref.model_name!r} in {'no run' if ref.run_name is None else f'run {ref.run_name!r}'}")
    return AmbiguousNameError(f"{what}; say which: {', '.join(described)} (RUN/MODEL, MODEL@RUN, or the run)")


def model_spellings(conn: sqlite3.Connection, run: int | None = None, include_hidden: bool = False,
                    with_scores: bool = False, selected_by: str | None = None) -> list[str]:
    """What a picker offers: each model once (only those of ``run`` when given; only those with
    per-sample scores if ``with_scores``; only those the filter expression ``selected_by``
    selects), spelled so that ``find_model`` finds it with ``run`` preferred: the bare name
    when that is enough, else its ``RUN/MODEL`` spelling."""
    from lightml.read import filters

    where = ["1 = 1" if include_hidden else "m.hidden = 0"] + (["m.run_id = ?"] if run is not None else [])
    params: list[Any] = [] if run is None else [run]
    if with_scores:
        where.append("EXISTS (SELECT 1 FROM metrics x JOIN detailed_scores d ON d.metric_id = x.id "
                     "WHERE x.model_id = m.id)")
    if selected_by is not None:
        condition, selected_params = filters.condition(selected_by)
        where.append(condition)
        params += selected_params
    rows = conn.execute(
        "SELECT m.id, m.model_name, r.run_name, (SELECT count(*) FROM model o WHERE o.model_name = m.model_name) "
        f"FROM model m LEFT JOIN run r ON r.id = m.run_id WHERE {' AND '.join(where)}",
        params).fetchall()
    rows.sort(key=lambda row: (natural_key(row[1]), natural_key(row[2])))
    spellings = []
    for mid, name, run_name, same_name in rows:
        if same_name == 1 or run is not None:  # in ``run``, the bare name prefers that run's model
            spellings.append(name)
        else:
            spellings.append(spelling_for(conn, ModelRef(mid, name, run_name)) or name)
    return spellings


def _runs_having(conn: sqlite3.Connection, model_name: str) -> list[tuple[int, str | None]]:
    return conn.execute(
        "SELECT m.id, r.run_name FROM model m LEFT JOIN run r ON r.id = m.run_id "
        "WHERE m.model_name = ? ORDER BY m.id",
        (model_name,),
    ).fetchall()


def _describe_runs(rows: list[tuple[int, str | None]]) -> str:
    return ", ".join(repr(name) if name is not None else "(no run)" for _, name in rows)


def model_id(conn: sqlite3.Connection, model_name: str, run: int | None, run_name: str | None = None) -> int:
    """The model's id for a WRITE: exactly in ``run`` when given (a handle writes only to its
    run), else the only model with that name in any run. Reads use ``find_model``."""
    if run is not None:
        row = conn.execute(
            "SELECT id FROM model WHERE model_name = ? AND run_id = ?", (model_name, run)
        ).fetchone()
        if row:
            return row[0]
        raise not_in_run(conn, model_name, run_name)
    return model_id_any_run(conn, model_name)


def not_in_run(conn: sqlite3.Connection, model_name: str, run_name: str | None) -> NotFoundError:
    """The error for a model a write looked for in a run that lacks it (or does not exist
    yet, as the default run before its first write): where the name does exist, if anywhere."""
    elsewhere = _runs_having(conn, model_name)
    hint = f" (it exists in run {_describe_runs(elsewhere)})" if elsewhere else ""
    return NotFoundError(f"model {model_name!r} not found in run {run_name!r}{hint}")


def model_id_any_run(conn: sqlite3.Connection, model_name: str) -> int:
    """The only model with exactly that name, for a write through a handle without a run (the
    handle's methods take bare names: the way out of an ambiguity is the handle's run)."""
    rows = _runs_having(conn, model_name)
    if not rows:
        raise NotFoundError(f"model {model_name!r} not found")
    if len(rows) > 1:
        raise AmbiguousNameError(
            f"model {model_name!r} exists in several runs ({_describe_runs(rows)}); say which run"
        )
    return rows[0][0]


def parent_id(conn: sqlite3.Connection, parent_name: str, run: int | None) -> int:
    """A parent is named like any model on a read (``find_model``): the handle's run is
    preferred, ``RUN/MODEL`` or ``MODEL@RUN`` picks another run's model."""
    try:
        return find_model_by_run_id(conn, parent_name, run).id
    except NotFoundError:
        raise NotFoundError(f"parent model {parent_name!r} not found") from None
    except AmbiguousNameError as exc:
        raise AmbiguousNameError(f"parent {exc}") from None


def checkpoint_owner(conn: sqlite3.Connection, checkpoint_id: int) -> tuple[int, int | None]:
    """(model_id, step) of a checkpoint."""
    row = conn.execute("SELECT model_id, step FROM checkpoint WHERE id = ?", (checkpoint_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"checkpoint id {checkpoint_id} not found")
    return row[0], row[1]


def latest_deletes(conn: sqlite3.Connection, model_name: str, run: int | None) -> dict[int | None, tuple[int, dict[str, Any]]]:
    """run id -> (seq, payload) of the latest ``model_deleted`` event of a model of that name
    (only in ``run`` when given): where a deleted model's rows are still described."""
    latest: dict[int | None, int] = {}
    # A delete superseded by a later delete of the same model (restored, maybe renamed, then
    # deleted again) describes rows that are gone for good: only each model's latest counts.
    for seq, deleted_from in conn.execute(
        "SELECT t.seq, t.run_id FROM model_tombstone t WHERE t.model_name = ? AND NOT EXISTS ("
        "  SELECT 1 FROM model_tombstone later WHERE later.model_id = t.model_id AND later.seq > t.seq) "
        "ORDER BY t.seq DESC",
        (model_name,),
    ):
        if run is None or deleted_from == run:
            latest.setdefault(deleted_from, seq)
    # (The snapshot is in the event itself, read by its key.)
    return {deleted_from: (seq, event_payload(conn, seq)) for deleted_from, seq in latest.items()}


def event_payload(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
    """The payload of the event at ``seq`` (e.g. a delete's snapshot), at the current version."""
    event_type, version, payload = conn.execute(
        "SELECT type, version, payload FROM events WHERE seq = ?", (seq,)).fetchone()
    return upcast(event_type, version, json.loads(payload))
