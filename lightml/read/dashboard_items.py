"""The dashboard's saved items (charts, saved views, summary sets) as the page and the API
read them: live ones in their order, or the removed ones (newest first) to restore."""

from __future__ import annotations

import json
from typing import Any

from lightml.read.sql import Statement, Steps, query


@query
def dashboard_items(kind: str | None = None, removed: bool = False) -> Steps[list[dict[str, Any]]]:
    """[{id, kind, name, position, spec, changed_seq}] of ``kind`` (every kind if None)."""
    where, params = ["removed_seq IS NOT NULL" if removed else "removed_seq IS NULL"], []
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    order = "removed_seq DESC" if removed else "kind, position, id"
    rows = yield Statement(f"SELECT id, kind, name, position, spec, changed_seq FROM dashboard_item "
                           f"WHERE {' AND '.join(where)} ORDER BY {order}", params)
    return [{"id": item_id, "kind": k, "name": name, "position": position, "spec": json.loads(spec),
             "changed_seq": changed} for item_id, k, name, position, spec, changed in rows]


@query
def dashboard_item(item_id: int) -> Steps[dict[str, Any] | None]:
    """One item, live or removed (``removed`` says which), or None."""
    rows = yield Statement("SELECT id, kind, name, position, spec, changed_seq, removed_seq FROM dashboard_item "
                           "WHERE id = ?", (item_id,))
    if not rows:
        return None
    item_id, kind, name, position, spec, changed, removed = rows[0]
    return {"id": item_id, "kind": kind, "name": name, "position": position, "spec": json.loads(spec),
            "changed_seq": changed, "removed": removed is not None}
