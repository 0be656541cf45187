"""A model's parameters (``lr``, ``beta``, ``dataset``...) and tags, as the read tables
``model_param`` and ``model_tag`` hold them."""

from __future__ import annotations

import json
from typing import Any

from lightml.read import resolve


def current_params(conn, model_id: int) -> dict[str, Any]:
    """key -> value (as given: an int stays an int), keys sorted."""
    return dict(sorted((key, json.loads(value)) for key, value in
                       conn.execute("SELECT key, value FROM model_param WHERE model_id = ?", (model_id,))))


def current_tags(conn, model_id: int) -> list[str]:
    return sorted(tag for (tag,) in conn.execute("SELECT tag FROM model_tag WHERE model_id = ?", (model_id,)))


def params_of(conn, model_name: str, run: int | None) -> dict[str, Any]:
    return current_params(conn, resolve.find_model_by_run_id(conn, model_name, run).id)


def tags_of(conn, model_name: str, run: int | None) -> list[str]:
    return current_tags(conn, resolve.find_model_by_run_id(conn, model_name, run).id)


def params_by_model(conn, model_ids: list[int]) -> dict[int, dict[str, Any]]:
    """model id -> its parameters, for several models (those without any left out)."""
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(model_ids), 500):
        chunk = model_ids[start:start + 500]
        for model_id, key, value in conn.execute(
                f"SELECT model_id, key, value FROM model_param WHERE model_id IN ({','.join('?' * len(chunk))})",
                chunk):
            found.setdefault(model_id, {})[key] = json.loads(value)
    return {model_id: dict(sorted(values.items())) for model_id, values in found.items()}
