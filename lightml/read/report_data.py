"""What the Excel report (``lightml.report.export``) shows, read as plain data: the models,
their checkpoints and values by family, and the history of overwrites and deletes.

``lightml.read.sql`` queries; the report runs them, and its significance tests, inside one
read snapshot (``sql.reading(db, snapshot=True)``), so a writer elsewhere cannot tear it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lightml.log.events import METRIC_OVERWRITTEN, MODEL_DELETED, MODEL_REGISTERED, MODEL_RENAMED, actor_text
from lightml.read import filters
from lightml.read.natural import natural_key
from lightml.read.sql import Rows, Statement, Steps, query


@dataclass
class ReportData:
    """The registry as the report shows it."""

    # (id, model name, run name, parent's name, parent id, path, notes, hidden, checkpoints),
    # ordered by run and name
    models: Rows
    # model id -> [(checkpoint id, step)], by step
    checkpoints: dict[int, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    # family -> {("F", model id) or ("S", checkpoint id): {metric: value}}
    values: dict[str, dict[tuple[str, int], dict[str, float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict)))
    # model id -> how many values it and its checkpoints have
    metric_count: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@query
def report_data(include_hidden: bool, where: str | None = None) -> Steps[ReportData]:
    """The models shown (hidden ones only with ``include_hidden``; with ``where``, those the
    filter expression selects: ``lightml.read.filters``), with what they hold."""
    selected, params = filters.condition(where)
    hidden = "" if include_hidden else "m.hidden = 0 AND "
    data = ReportData(sorted((yield Statement(
        "SELECT m.id, m.model_name, r.run_name, p.model_name, m.parent_id, m.path, m.notes, m.hidden, "
        "(SELECT count(*) FROM checkpoint c WHERE c.model_id = m.id) "
        f"FROM model m LEFT JOIN run r ON r.id = m.run_id LEFT JOIN model p ON p.id = m.parent_id "
        f"WHERE {hidden}{selected}", params)), key=lambda row: (natural_key(row[2]), natural_key(row[1]))))
    shown = {row[0] for row in data.models}
    for cid, mid, step in (yield Statement("SELECT id, model_id, step FROM checkpoint ORDER BY step, id")):
        if mid in shown:
            data.checkpoints[mid].append((cid, step))
    owner = {cid: mid for mid, cps in data.checkpoints.items() for cid, _ in cps}
    for mid, cid, family, metric, value in (yield Statement(
            "SELECT model_id, checkpoint_id, family, metric_name, value FROM metrics")):
        if mid is not None and mid in shown:
            data.values[family][("F", mid)][metric] = value
            data.metric_count[mid] += 1
        elif cid is not None and cid in owner:
            data.values[family][("S", cid)][metric] = value
            data.metric_count[owner[cid]] += 1
    return data


class HistoryEntry(NamedTuple):
    """One forced overwrite of a value, or one model's delete (``metrics_deleted`` set)."""

    at: str
    actor: str
    model: str  # the name the model had then (``#id`` if the log never named it)
    step: int | None = None
    family: str | None = None
    metric: str | None = None
    previous_value: Any = None
    value: Any = None
    metrics_deleted: int | None = None


@query
def overwrites_and_deletes() -> Steps[list[HistoryEntry]]:
    """Every forced overwrite and every delete, from the log, oldest first."""
    names: dict[int, str] = {}
    changes: list[HistoryEntry] = []
    for event_type, payload, at, user, host, origin in (yield Statement(
            "SELECT type, payload, at, user, host, origin FROM events WHERE type IN (?, ?, ?, ?) ORDER BY seq",
            (MODEL_REGISTERED, MODEL_RENAMED, METRIC_OVERWRITTEN, MODEL_DELETED))):
        p = json.loads(payload)
        if event_type in (MODEL_REGISTERED, MODEL_RENAMED):
            names[p["model_id"]] = p["model_name"]  # the name the model had at that moment
            continue
        who = actor_text(user, host, origin)
        model = names.get(p["model_id"], f"#{p['model_id']}")
        if event_type == MODEL_DELETED:
            changes.append(HistoryEntry(at, who, model, metrics_deleted=len(p["snapshot"]["metrics"])))
            continue
        changes.extend(HistoryEntry(at, who, model, p.get("step"), m["family"], m["metric_name"],
                                    m["previous_value"], m["value"]) for m in p["metrics"])
    return changes
