"""The pivot table (models and checkpoints x metrics), built from per-family blocks that
outlive a request.

A block is one family's values for every model and checkpoint that has some, as JSON text
the database builds (SQLite's ``json_group_object``, PostgreSQL's ``json_object_agg``), plus each row's list of metric names (for the
columns). A table is the rows it shows (models, optionally checkpoints, filtered by run and
hidden flag: read fresh each time, a cheap query) joined with the blocks of the families it
shows; a table computed at a log position is kept as the answer until the position moves.

Blocks are built from the ``metrics`` table, which changes only through events, and the log
says which: ``projections.TABLES_CHANGED`` names the event types that change it. A metric
log or overwrite names its families, so only those blocks are built again (logging into one
family while the page polls costs one family, not all of them); any other event type that
changes ``metrics`` (a model's delete or restore) may change every family, so all blocks go.
Other events (a model registered, renamed, hidden, reparented; a checkpoint registered)
change the rows, which are never cached.

``PivotTables.table`` is a ``lightml.read.sql`` query generator: the dashboard runs it on
aiosqlite, one run at a time (its caches are shared state; see ``table``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import projections
from lightml.log.events import METRIC_INSERTED, METRIC_OVERWRITTEN
from lightml.read import filters
from lightml.read.catalog import family_names
from lightml.read.natural import natural_key, natural_pair
from lightml.read.dashboard import require_family
from lightml.read.direction import is_uncertainty, lower_is_better
from lightml.read.uncertainty import stderr_name
from lightml.read.run_ids import require_run_id
from lightml.read.sql import Rows, Statement, Steps, first, query

_BLOCK_TABLE = "metrics"
# Events that change blocks and name the families they change (in their payload's metrics).
_PER_FAMILY = (METRIC_INSERTED, METRIC_OVERWRITTEN)
# Events that change blocks without naming families: every block goes.
_RESET = frozenset(t for t, tables in projections.TABLES_CHANGED.items() if _BLOCK_TABLE in tables) - set(_PER_FAMILY)
# More new events than this since the blocks were built: rebuilding is cheaper than reading
# every one of them for its families.
_MAX_EVENTS_TO_READ = 5_000
# Whole tables kept (one per family / run / checkpoints / hidden choice) before they are all dropped.
_MAX_TABLES = 64


@dataclass
class Block:
    """One family: row key ("m", model id) or ("c", checkpoint id) -> (values JSON, names JSON)."""

    cells: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)


@query
def log_position() -> Steps[tuple]:
    """Where the registry stands: the last event (seq and time) and when the read tables were
    last built again from the log (``lightml replay``). Equal positions, equal tables."""
    last = first((yield Statement("SELECT seq, at FROM events ORDER BY seq DESC LIMIT 1")))
    built = first((yield Statement("SELECT value FROM lightml_meta WHERE key = 'read_tables_built'")))
    return (*(last if last else (0, None)), built[0] if built else None)


class PivotTables:
    """The blocks and tables of one registry, kept in step with its log (one per dashboard app)."""

    def __init__(self) -> None:
        self.position: tuple | None = None  # log_position the blocks are valid at
        self.families: list[str] | None = None
        self.blocks: dict[str, Block] = {}
        # (family, run, checkpoints, include_hidden) -> (log position, encoded JSON)
        self.tables: dict[tuple, tuple[tuple, bytes]] = {}

    def table(self, family: str | None, run: str | None, checkpoints: bool, include_hidden: bool,
              where: str | None = None) -> Steps[bytes]:
        """Models (and optionally their checkpoints) x metrics, as encoded JSON:
        ``{"family", "columns": [{"family", "metric", "lower_is_better"}], "rows": [{"id",
        "model", "run", "parent", "parent_id", "hidden", "step", "values": {family: {metric: value}}}]}``;
        model rows (``step`` null) also carry ``notes`` and ``params`` (the model's parameters),
        checkpoint rows ``checkpoint``; every row ``repeats``: {family: {metric: {"half_width",
        "n"}}} of its values that are the mean of repeats.

        ``family`` None: all families (the same metric name in two families stays two
        columns); an unknown family or run is a NotFoundError. Hidden models are left out
        unless ``include_hidden``; with ``where``, only the models the filter expression
        selects (``lightml.read.filters``). A model is always listed; a checkpoint only with a value
        in the families shown. Values are SQLite's text of the stored doubles (15 significant
        digits); the page shows 4.

        One run at a time: a block read while another run moves the position past a change
        to its family could otherwise be stored after that change was accounted for.
        """
        position = yield from log_position.steps()
        key = (family, run, checkpoints, include_hidden, where)
        cached = self.tables.get(key)
        if cached is not None and cached[0] == position:
            return cached[1]
        if family is not None:
            yield from require_family.steps(family)
        yield from require_run_id.steps(run)
        yield from self._follow_log(position)
        families = [family] if family is not None else (yield from self._all_families())
        blocks = []
        for name in families:
            blocks.append((name, (yield from self._block(name))))
        model_rows, checkpoint_rows = yield from _rows(run, checkpoints, include_hidden, where)
        params = yield from _params_text()
        spreads = yield from _spreads_text(family)
        body = _encoded(family, blocks, model_rows, checkpoint_rows, params, spreads)
        if len(self.tables) > _MAX_TABLES:
            self.tables.clear()
        self.tables[key] = (position, body)
        return body

    def _follow_log(self, position: tuple) -> Steps[None]:
        """Drop the blocks the events since ``self.position`` changed."""
        if self.position == position:
            return
        seen, seen_at, built = self.position if self.position is not None else (None, None, None)
        last = position[0]
        if seen is None or position[2] != built or last < seen or (
                (yield Statement("SELECT at FROM events WHERE seq = ?", (seen,))) != [(seen_at,)]):
            # First use; tables built again (replay); or another log under this file name
            # (the file was replaced): nothing kept can be trusted.
            self._forget_all(position)
            return
        since = (seen, last)
        types = dict((yield Statement(
            "SELECT type, count(*) FROM events WHERE seq > ? AND seq <= ? GROUP BY type", since)))
        if any(t in types for t in _RESET) or sum(types.values()) > _MAX_EVENTS_TO_READ:
            self._forget_all(position)
            return
        if any(t in types for t in _PER_FAMILY):
            kinds = ", ".join("?" * len(_PER_FAMILY))
            changed = {family for (family,) in (yield Statement(
                "SELECT DISTINCT json_extract(m.value, '$.family') FROM events e, json_each(e.payload, '$.metrics') m "
                f"WHERE e.seq > ? AND e.seq <= ? AND e.type IN ({kinds})", (*since, *_PER_FAMILY),
                postgresql="SELECT DISTINCT m ->> 'family' FROM events e, json_array_elements(e.payload::json -> 'metrics') m "
                           f"WHERE e.seq > ? AND e.seq <= ? AND e.type IN ({kinds})"))}
            for family in changed:
                self.blocks.pop(family, None)
            if self.families is not None and not changed <= set(self.families):
                self.families = sorted(set(self.families) | changed)  # a metric log can only add families
        self.position = position

    def _forget_all(self, position: tuple) -> None:
        self.position, self.families, self.blocks = position, None, {}

    def _all_families(self) -> Steps[list[str]]:
        if self.families is None:
            self.families = yield from family_names.steps()
            missing = [f for f in self.families if f not in self.blocks]
            if len(missing) > 1:  # a cold start: every block in one pass over the table
                yield from self._build_blocks(missing)
        return self.families

    def _block(self, family: str) -> Steps[Block]:
        if family not in self.blocks:
            yield from self._build_blocks([family])
        return self.blocks[family]

    def _build_blocks(self, families: list[str]) -> Steps[None]:
        built = {family: Block() for family in families}
        one = len(families) == 1
        # One family: the rows of that family. Several: one pass over the whole table.
        where = "WHERE family = ?" if one else ""
        grouping = f"FROM {_BLOCK_TABLE} {where} GROUP BY family, model_id, checkpoint_id"
        for fam, model_id, checkpoint_id, values, names in (yield Statement(
                f"SELECT family, model_id, checkpoint_id, json_group_object(metric_name, value), "
                f"json_group_array(metric_name) {grouping}", families if one else (),
                postgresql="SELECT family, model_id, checkpoint_id, json_object_agg(metric_name, value)::text, "
                           f"json_agg(metric_name)::text {grouping}")):
            block = built.get(fam)
            if block is not None:
                key = ("m", model_id) if model_id is not None else ("c", checkpoint_id)
                block.cells[key] = (values, names)
        self.blocks.update(built)


def _rows(run: str | None, checkpoints: bool, include_hidden: bool,
          selected_by: str | None = None) -> Steps[tuple[Rows, dict[int, list]]]:
    """The rows shown: models (id, name, run, parent, notes, hidden, parent id), and per model its
    checkpoints [(step, id)] when asked for."""
    where, params = ["1 = 1"], []  # always true (in every dialect), so the WHERE clause is never empty
    if not include_hidden:
        where.append("m.hidden = 0")
    if run is not None:
        where.append("r.run_name = ?")
        params.append(run)
    if selected_by is not None:
        selected, selected_params = filters.condition(selected_by)
        where.append(selected)
        params += selected_params
    condition = " AND ".join(where)
    model_rows = sorted((yield Statement(
        "SELECT m.id, m.model_name, r.run_name, p.model_name, m.notes, m.hidden, m.parent_id FROM model m "
        "LEFT JOIN run r ON r.id = m.run_id LEFT JOIN model p ON p.id = m.parent_id "
        f"WHERE {condition}", params)), key=lambda row: (natural_key(row[1]), natural_key(row[2])))
    checkpoint_rows: dict[int, list[tuple[Any, int]]] = {}
    if checkpoints:
        for mid, step, cid in (yield Statement(
                "SELECT c.model_id, c.step, c.id FROM checkpoint c JOIN model m ON m.id = c.model_id "
                f"LEFT JOIN run r ON r.id = m.run_id WHERE {condition} ORDER BY c.step, c.id", params)):
            checkpoint_rows.setdefault(mid, []).append((step, cid))
    return model_rows, checkpoint_rows


def _params_text() -> Steps[dict[int, str]]:
    """model id -> its parameters as JSON object text, assembled from the stored JSON values."""
    found: dict[int, list[str]] = {}
    for model_id, key, value in (yield Statement("SELECT model_id, key, value FROM model_param")):
        found.setdefault(model_id, []).append(f"{json.dumps(key)}:{value}")
    return {model_id: "{" + ",".join(sorted(parts)) + "}" for model_id, parts in found.items()}


def _spreads_text(family: str | None) -> Steps[dict[tuple[str, int], str]]:
    """("m", model id) or ("c", checkpoint id) -> {family: {metric: {"half_width", "n"}}} as JSON
    text, for the values that are the mean of repeats (``lightml.read.repeats``: the 95% t
    interval over them), in ``family`` if given."""
    from lightml.read.repeats import spread

    where, params = ("WHERE m.family = ?", (family,)) if family is not None else ("", ())
    values: dict[tuple, dict[str, dict[str, list[float]]]] = {}
    for model_id, checkpoint_id, fam, metric, value in (yield Statement(
            "SELECT m.model_id, m.checkpoint_id, m.family, m.metric_name, r.value FROM metric_repeats r "
            f"JOIN metrics m ON m.id = r.metric_id {where}", params)):
        key = ("m", model_id) if model_id is not None else ("c", checkpoint_id)
        values.setdefault(key, {}).setdefault(fam, {}).setdefault(metric, []).append(value)
    return {key: json.dumps({fam: {metric: {"half_width": (found := spread(v)).half, "n": found.n}
                                   for metric, v in metrics.items()} for fam, metrics in by_family.items()},
                            separators=(",", ":"))
            for key, by_family in values.items()}


def _encoded(family: str | None, blocks: list[tuple[str, Block]], model_rows: Rows,
             checkpoint_rows: dict[int, list], params: dict[int, str],
             spreads: dict[tuple[str, int], str]) -> bytes:
    """The table's JSON, assembled from the blocks' JSON text without decoding the values."""
    dump = json.dumps
    name_lists: set[tuple[str, str]] = set()

    def values(key: tuple[str, int]) -> str:
        parts = []
        for name, block in blocks:
            cell = block.cells.get(key)
            if cell is not None:
                parts.append(f"{dump(name)}:{cell[0]}")
                name_lists.add((name, cell[1]))
        return "{" + ",".join(parts) + "}"

    parts = []
    for mid, name, run_name, parent, notes, hidden, parent_id in model_rows:
        head = (f'{{"id":{mid},"model":{dump(name)},"run":{dump(run_name)},"parent":{dump(parent)},'
                f'"parent_id":{dump(parent_id)},"hidden":{dump(bool(hidden))}')
        parts.append(f'{head},"step":null,"notes":{dump(notes)},"params":{params.get(mid, "{}")},'
                     f'"repeats":{spreads.get(("m", mid), "{}")},"values":{values(("m", mid))}}}')
        for step, cid in checkpoint_rows.get(mid, []):
            checkpoint_values = values(("c", cid))
            if checkpoint_values != "{}":
                parts.append(f'{head},"checkpoint":{cid},"step":{dump(step)},'
                             f'"repeats":{spreads.get(("c", cid), "{}")},"values":{checkpoint_values}}}')
    # The columns: every (family, metric) of the rows shown. Most rows share one list of
    # names, so only the distinct lists are decoded.
    keys = {(name, metric) for name, text in name_lists for metric in json.loads(text)}
    columns = [{"family": f, "metric": m, "lower_is_better": lower_is_better(m)}
               for f, m in sorted(keys, key=natural_pair)]
    for column in columns:  # the column of lm-eval's stderr of a score, when shown too
        stderr = stderr_name(column["metric"])
        if (column["family"], stderr) in keys and not is_uncertainty(column["metric"]):
            column["stderr"] = stderr
    return (f'{{"family":{dump(family)},"columns":{dump(columns, separators=(",", ":"))},'
            f'"rows":[{",".join(parts)}]}}').encode()
