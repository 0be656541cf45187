"""The ``metric_repeats`` table: each repeat of a metric logged with a repeat label
(``repeat="seed=1234"``), with its own value and per-sample scores.

A metric logged with labels has one row here per label, and its ``metrics.value`` is their
mean (``mean_of``), so that 1.2's SQL still reads one number; its ``detailed_scores`` are the
per-document means (``document_means``) when every repeat has scores of the same documents.
A metric logged without a label has no rows here. A metric event's item with a ``repeat``
sets that repeat (inserting the metric when it is new); an overwrite without one replaces
the whole metric, repeats included.
"""

from __future__ import annotations

import json
import math

from lightml.log.events import Change
from lightml.log import codec

TABLE = "metric_repeats"
DDL = """
CREATE TABLE metric_repeats (
    metric_id INTEGER NOT NULL REFERENCES metrics(id),
    repeat    TEXT NOT NULL,
    value     REAL NOT NULL,
    scores    TEXT,
    n_samples INTEGER,
    doc_keys  TEXT,
    PRIMARY KEY (metric_id, repeat)
)"""
INDEXES: list[str] = []

_INSERT = ("INSERT INTO metric_repeats (metric_id, repeat, value, scores, n_samples, doc_keys) "
           "VALUES (?, ?, ?, ?, ?, ?)")
_SELECT = "SELECT repeat, value, scores, doc_keys FROM metric_repeats WHERE metric_id = ?"


def mean_of(values: list[float]) -> float:
    """The mean of a metric's repeat values: the one rule for ``metrics.value`` (the writer
    uses it too, for what it tells the next command). ``fsum`` is exact, so the order of the
    values does not change the result (replay gives the same bits)."""
    return math.fsum(values) / len(values)


def repeats_of(conn, metric_id: int) -> list[tuple[str, float, str | None, str | None]]:
    """(label, value, scores text, document keys text) of a metric's repeats, in label order
    (sorted here, not by the database, whose collation of text may differ between engines)."""
    return sorted(tuple(row) for row in conn.execute(_SELECT, (metric_id,)))


def repeat_values(conn, metric_ids: list[int]) -> dict[int, dict[str, float]]:
    """metric id -> {label: value} of those of the metrics that have repeats."""
    return {metric_id: {label: value for label, (value, _) in labels.items()}
            for metric_id, labels in repeat_rows(conn, metric_ids).items()}


def repeat_rows(conn, metric_ids: list[int]) -> dict[int, dict[str, tuple[float, str | None]]]:
    """metric id -> {label: (value, scores text or None)}, for those that have repeats."""
    found: dict[int, dict[str, tuple[float, str | None]]] = {}
    for start in range(0, len(metric_ids), 500):
        chunk = metric_ids[start:start + 500]
        for metric_id, label, value, scores in conn.execute(
                f"SELECT metric_id, repeat, value, scores FROM metric_repeats WHERE metric_id IN "
                f"({','.join('?' * len(chunk))})", chunk):
            found.setdefault(metric_id, {})[label] = (value, scores)
    return found


def document_means(repeats: list[tuple[str, float, str | None, str | None]]) -> str | None:
    """The per-document mean of the repeats' score vectors (``repeats_of``'s rows), as JSON
    text; None unless every repeat has scores of one length and the same document keys (or
    none), so that position i is one document in every repeat."""
    if not repeats or any(scores is None for _, _, scores, _ in repeats):
        return None
    if len({keys for _, _, _, keys in repeats}) != 1:
        return None
    if len(repeats) == 1:
        return repeats[0][2]
    vectors = [codec.loads(scores) for _, _, scores, _ in repeats]
    if len({len(v) for v in vectors}) != 1:
        return None
    count = len(vectors)
    return json.dumps([math.fsum(column) / count for column in zip(*vectors)], separators=(",", ":"))


def _row(m: dict) -> tuple:
    scored = m.get("scores") is not None
    return (m["metric_id"], m["repeat"], m["value"], m.get("scores"), m.get("n_samples"),
            m.get("doc_keys") if scored else None)


def on_metric_inserted(conn, events: list[Change]) -> None:
    rows = [_row(m) for e in events for m in e.payload["metrics"] if "repeat" in m]
    if rows:
        conn.executemany(_INSERT, rows)


def on_metric_overwritten(conn, events: list[Change]) -> None:
    for event in events:
        for m in event.payload["metrics"]:
            if "repeat" in m:
                conn.execute("DELETE FROM metric_repeats WHERE metric_id = ? AND repeat = ?",
                             (m["metric_id"], m["repeat"]))
                conn.execute(_INSERT, _row(m))
            else:  # a value without a label replaces every repeat
                conn.execute("DELETE FROM metric_repeats WHERE metric_id = ?", (m["metric_id"],))


def on_model_deleted(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany("DELETE FROM metric_repeats WHERE metric_id = ? AND repeat = ?",
                         [(r["metric_id"], r["repeat"]) for r in event.payload["snapshot"].get("repeats", ())])


def on_model_restored(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany(_INSERT, [(r["metric_id"], r["repeat"], r["value"], r.get("scores"), r.get("n_samples"),
                                    r.get("doc_keys")) for r in event.payload["snapshot"].get("repeats", ())])
