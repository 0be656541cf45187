"""The ``score_sources`` table: where the documents behind a metric's per-sample scores are.

One row per scored metric that ``scan`` read from an lm-eval samples file: the file (absolute
path; its SHA-256, size and modification time when scanned) and the byte offset of each
score's line, in the scores' order. The prompts, targets and responses stay in the file (they are most of its bytes);
``flips`` reads the lines it needs from there, and says so when the file moved or changed.
"""

from lightml.log.events import Change

TABLE = "score_sources"
DDL = """
CREATE TABLE score_sources (
    metric_id INTEGER PRIMARY KEY REFERENCES metrics(id),
    path      TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    offsets   TEXT NOT NULL
)"""
INDEXES: list[str] = []
# A row no sound event gives (replay checks the rebuilt table for one): offsets that are not
# JSON array text.
DAMAGED_ROW = "CASE WHEN json_valid(offsets) THEN json_type(offsets) <> 'array' ELSE 1 END"

_INSERT = "INSERT INTO score_sources (metric_id, path, sha256, size, mtime_ns, offsets) VALUES (?, ?, ?, ?, ?, ?)"


def _row(metric_id: int, samples: dict) -> tuple:
    return metric_id, samples["path"], samples["sha256"], samples["size"], samples["mtime_ns"], samples["offsets"]


def on_metric_inserted(conn, events: list[Change]) -> None:
    rows = [_row(m["metric_id"], m["samples"]) for e in events for m in e.payload["metrics"] if "samples" in m]
    if rows:
        conn.executemany(_INSERT, rows)


def on_metric_overwritten(conn, events: list[Change]) -> None:
    # Like the scores: an overwrite replaces where they came from with the new call's, or none.
    # A repeat's: none (the scores are then the means of several repeats, whose responses differ).
    for event in events:
        metrics = event.payload["metrics"]
        conn.executemany("DELETE FROM score_sources WHERE metric_id = ?", [(m["metric_id"],) for m in metrics])
        conn.executemany(_INSERT, [_row(m["metric_id"], m["samples"]) for m in metrics
                                   if "samples" in m and "repeat" not in m])


def on_model_deleted(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany("DELETE FROM score_sources WHERE metric_id = ?",
                         [(s["metric_id"],) for s in event.payload["snapshot"]["detailed_scores"]])


def on_model_restored(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany(_INSERT, [_row(s["metric_id"], s["samples"])
                                   for s in event.payload["snapshot"]["detailed_scores"] if "samples" in s])
