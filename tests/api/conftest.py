"""What the handle API tests share: reads of the registry file with plain sqlite3 (never
through LightML), to check what a call wrote."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest


def _query(db, sql, params=()):
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def query() -> Callable[..., list[tuple]]:
    """``query(db, sql, params=())``: the rows."""
    return _query


@pytest.fixture
def events() -> Callable[..., list[tuple]]:
    """``events(db, event_type=None)``: (seq, type, at, payload) of the events (of that type)."""

    def read(db, event_type=None):
        sql = "SELECT seq, type, at, payload FROM events"
        if event_type is not None:
            return _query(db, sql + " WHERE type = ? ORDER BY seq", (event_type,))
        return _query(db, sql + " ORDER BY seq")

    return read


@pytest.fixture
def n_events() -> Callable[[Path], int]:
    return lambda db: _query(db, "SELECT count(*) FROM events")[0][0]


@pytest.fixture
def last_seq() -> Callable[[Path], int]:
    return lambda db: _query(db, "SELECT coalesce(max(seq), 0) FROM events")[0][0]


@pytest.fixture
def model_row() -> Callable[[Path, int], tuple | None]:
    """``model_row(db, model_id)``: (id, model_name, path, parent_id, run_id), or None."""

    def read(db, model_id):
        rows = _query(db, "SELECT id, model_name, path, parent_id, run_id FROM model WHERE id = ?", (model_id,))
        return rows[0] if rows else None

    return read


@pytest.fixture
def symlinks_to() -> Callable[[Path, Path], list[Path]]:
    """``symlinks_to(folder, target)``: the links in ``folder`` that point at ``target``."""

    def find(folder: Path, target: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        return [p for p in folder.iterdir() if p.is_symlink() and Path(os.readlink(p)) == target]

    return find
