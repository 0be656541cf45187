"""The ``metric_insert_range`` table: which event inserted which metric ids.

A ``metric_inserted`` event assigns consecutive ids, so one row (seq, first id, last id)
describes it; ids that are not consecutive (a migrated 1.x registry) give one row per
run of consecutive ids. The inserted value itself stays in the event payload.
"""

from lightml.log.events import Change

TABLE = "metric_insert_range"
DDL = """
CREATE TABLE metric_insert_range (
    first_metric_id INTEGER PRIMARY KEY,
    last_metric_id  INTEGER NOT NULL,
    seq             INTEGER NOT NULL
)"""
INDEXES: list[str] = []


def id_runs(ids: list[int]) -> list[tuple[int, int]]:
    """[3, 4, 5, 9, 10] -> [(3, 5), (9, 10)]"""
    runs: list[tuple[int, int]] = []
    for metric_id in sorted(ids):
        if runs and metric_id == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], metric_id)
        else:
            runs.append((metric_id, metric_id))
    return runs


def event_ranges(seq: int, metrics: list[dict]) -> list[tuple[int, int, int]]:
    """The (first id, last id, seq) rows of one event's metrics."""
    ids = [m["metric_id"] for m in metrics]
    if ids == list(range(ids[0], ids[0] + len(ids))):  # the usual case: ids given in order, one block
        return [(ids[0], ids[-1], seq)]
    return [(a, b, seq) for a, b in id_runs(ids)]


def on_metric_inserted(conn, events: list[Change]) -> None:
    rows = []
    for e in events:
        metrics = e.payload["metrics"]
        if len(metrics) == 1:  # the common single-metric call
            metric_id = metrics[0]["metric_id"]
            rows.append((metric_id, metric_id, e.seq))
        else:
            rows.extend(event_ranges(e.seq, metrics))
    conn.executemany(
        "INSERT INTO metric_insert_range (first_metric_id, last_metric_id, seq) VALUES (?, ?, ?)", rows
    )
