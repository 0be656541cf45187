"""The ``registry_schema`` table: allowed (family, metric_name) pairs; empty means anything goes."""

from lightml.log.events import Change

TABLE = "registry_schema"
DDL = """
CREATE TABLE registry_schema (
    family      TEXT NOT NULL,
    metric_name TEXT NOT NULL,
    PRIMARY KEY (family, metric_name)
)"""
INDEXES: list[str] = []


def on_schema_rule_added(conn, events: list[Change]) -> None:
    conn.executemany(
        "INSERT INTO registry_schema (family, metric_name) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(e.payload["family"], e.payload["metric_name"]) for e in events],
    )
