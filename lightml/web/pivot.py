"""The dashboard's pivot table, built from per-family blocks that outlive a request.

A block is one family's values for every model and checkpoint that has some, as JSON text
SQLite builds (``json_group_object``), plus each row's list of metric names (for the
columns). The table of a request is the rows it shows (models, optionally checkpoints,
filtered by run and hidden flag: read fresh each time, a cheap query) joined with the blocks
of the families it shows.

Blocks change only through events, and the log says which: a metric log or overwrite names
its families, so only those blocks are built again (logging into one family while the page
polls costs one family, not all of them); a model's delete or restore adds or removes rows
in every family, so all blocks go. Other events (a model registered, renamed, hidden,
reparented; a checkpoint registered) change the rows, which are never cached.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from lightml.read.direction import lower_is_better
from lightml.log.events import METRIC_INSERTED, METRIC_OVERWRITTEN, MODEL_DELETED, MODEL_RESTORED
from lightml.web.data import rows

# Events that change which metric rows exist, in any family: every block goes.
_RESET = (MODEL_DELETED, MODEL_RESTORED)
# More new events than this since the blocks were built: rebuilding is cheaper than reading
# every one of them for its families.
_MAX_EVENTS_TO_READ = 5_000


@dataclass
class Block:
    """One family: row key ("m", model id) or ("c", checkpoint id) -> (values JSON, names JSON)."""

    cells: dict[tuple[str, int], tuple[str, str]] = field(default_factory=dict)


async def log_position(conn) -> tuple:
    """Where the registry stands: the last event (seq and time) and when the read tables were
    last built again from the log (``lightml replay``). Equal positions, equal tables."""
    last = await rows(conn, "SELECT seq, at FROM events ORDER BY seq DESC LIMIT 1")
    built = await rows(conn, "SELECT value FROM lightml_meta WHERE key = 'read_tables_built'")
    return (*(last[0] if last else (0, None)), built[0][0] if built else None)


class PivotTables:
    """The blocks of one registry, kept in step with its log (one per dashboard app)."""

    def __init__(self) -> None:
        self.position: tuple | None = None  # log_position the blocks are valid at
        self.families: list[str] | None = None
        self.blocks: dict[str, Block] = {}
        # One request at a time: a block read while another request moves ``seq`` past a
        # change to its family could otherwise be stored after that change was accounted for.
        self._lock = asyncio.Lock()

    async def table(self, conn, family: str | None, run: str | None, checkpoints: bool,
                    include_hidden: bool) -> bytes:
        """Models (and optionally their checkpoints) x metrics, as encoded JSON:
        ``{"family", "columns": [{"family", "metric", "lower_is_better"}], "rows": [{"id",
        "model", "run", "parent", "hidden", "step", "values": {family: {metric: value}}}]}``;
        model rows (``step`` null) also carry ``notes``, checkpoint rows ``checkpoint``.

        ``family`` None: all families (the same metric name in two families stays two
        columns). Hidden models are left out unless ``include_hidden``. A model is always
        listed; a checkpoint only with a value in the families shown. Values are SQLite's
        text of the stored doubles (15 significant digits); the page shows 4.
        """
        async with self._lock:
            await self._follow_log(conn, await log_position(conn))
            families = [family] if family is not None else await self._all_families(conn)
            blocks = [(name, await self._block(conn, name)) for name in families]
        model_rows, checkpoint_rows = await _rows(conn, run, checkpoints, include_hidden)
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
        for mid, name, run_name, parent, notes, hidden in model_rows:
            head = (f'{{"id":{mid},"model":{dump(name)},"run":{dump(run_name)},"parent":{dump(parent)},'
                    f'"hidden":{dump(bool(hidden))}')
            parts.append(f'{head},"step":null,"notes":{dump(notes)},"values":{values(("m", mid))}}}')
            for step, cid in checkpoint_rows.get(mid, []):
                checkpoint_values = values(("c", cid))
                if checkpoint_values != "{}":
                    parts.append(f'{head},"checkpoint":{cid},"step":{dump(step)},"values":{checkpoint_values}}}')
        # The columns: every (family, metric) of the rows shown. Most rows share one list of
        # names, so only the distinct lists are decoded.
        keys = {(name, metric) for name, text in name_lists for metric in json.loads(text)}
        columns = [{"family": f, "metric": m, "lower_is_better": lower_is_better(m)} for f, m in sorted(keys)]
        return (f'{{"family":{dump(family)},"columns":{dump(columns, separators=(",", ":"))},'
                f'"rows":[{",".join(parts)}]}}').encode()

    async def _follow_log(self, conn, position: tuple) -> None:
        """Drop the blocks the events since ``self.position`` changed."""
        if self.position == position:
            return
        seen, seen_at, built = self.position if self.position is not None else (None, None, None)
        last = position[0]
        if seen is None or position[2] != built or last < seen or (await rows(
                conn, "SELECT at FROM events WHERE seq = ?", (seen,)) != [(seen_at,)]):
            # First use; tables built again (replay); or another log under this file name
            # (the file was replaced): nothing kept can be trusted.
            self._forget_all(position)
            return
        since = (seen, last)
        types = dict(await rows(conn, "SELECT type, count(*) FROM events WHERE seq > ? AND seq <= ? GROUP BY type",
                                since))
        if any(t in types for t in _RESET) or sum(types.values()) > _MAX_EVENTS_TO_READ:
            self._forget_all(position)
            return
        if METRIC_INSERTED in types or METRIC_OVERWRITTEN in types:
            changed = {family for (family,) in await rows(
                conn, "SELECT DISTINCT json_extract(m.value, '$.family') FROM events e, json_each(e.payload, '$.metrics') m "
                      "WHERE e.seq > ? AND e.seq <= ? AND e.type IN (?, ?)", (*since, METRIC_INSERTED, METRIC_OVERWRITTEN))}
            for family in changed:
                self.blocks.pop(family, None)
            if self.families is not None and not changed <= set(self.families):
                self.families = sorted(set(self.families) | changed)  # a metric log can only add families
        self.position = position

    def _forget_all(self, position: tuple) -> None:
        self.position, self.families, self.blocks = position, None, {}

    async def _all_families(self, conn) -> list[str]:
        if self.families is None:
            self.families = [f for (f,) in await rows(conn, "SELECT DISTINCT family FROM metrics ORDER BY family")]
            missing = [f for f in self.families if f not in self.blocks]
            if len(missing) > 1:  # a cold start: every block in one pass over the table
                await self._build_blocks(conn, missing)
        return self.families

    async def _block(self, conn, family: str) -> Block:
        if family not in self.blocks:
            await self._build_blocks(conn, [family])
        return self.blocks[family]

    async def _build_blocks(self, conn, families: list[str]) -> None:
        built = {family: Block() for family in families}
        one = len(families) == 1
        # One family: the rows of that family. Several: one pass over the whole table.
        where = "WHERE family = ?" if one else ""
        for fam, model_id, checkpoint_id, values, names in await rows(conn, (
                "SELECT family, model_id, checkpoint_id, json_group_object(metric_name, value), "
                f"json_group_array(metric_name) FROM metrics {where} GROUP BY family, model_id, checkpoint_id"),
                families if one else ()):
            block = built.get(fam)
            if block is not None:
                key = ("m", model_id) if model_id is not None else ("c", checkpoint_id)
                block.cells[key] = (values, names)
        self.blocks.update(built)


async def _rows(conn, run: str | None, checkpoints: bool, include_hidden: bool):
    """The rows shown: models (id, name, run, parent, notes, hidden), and per model its
    checkpoints [(step, id)] when asked for."""
    where, params = ["1"], []  # "1": always true, so the WHERE clause is never empty
    if not include_hidden:
        where.append("m.hidden = 0")
    if run is not None:
        where.append("r.run_name = ?")
        params.append(run)
    condition = " AND ".join(where)
    model_rows = await rows(conn, (
        "SELECT m.id, m.model_name, r.run_name, p.model_name, m.notes, m.hidden FROM model m "
        "LEFT JOIN run r ON r.id = m.run_id LEFT JOIN model p ON p.id = m.parent_id "
        f"WHERE {condition} ORDER BY m.model_name, r.run_name"), params)
    checkpoint_rows: dict[int, list[tuple[Any, int]]] = {}
    if checkpoints:
        for mid, step, cid in await rows(conn, (
                "SELECT c.model_id, c.step, c.id FROM checkpoint c JOIN model m ON m.id = c.model_id "
                f"LEFT JOIN run r ON r.id = m.run_id WHERE {condition} ORDER BY c.step, c.id"), params):
            checkpoint_rows.setdefault(mid, []).append((step, cid))
    return model_rows, checkpoint_rows
