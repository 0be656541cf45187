"""Summary sets: a named set of metrics (across families) averaged per model, the dashboard's
"reasoning average" column and chart.

The average is the plain mean of the model's values of the set's metrics (those it has; the
others are listed as missing, and the mean is then over fewer metrics, which ``n`` says). Its
95% interval takes each metric's standard error (the stderr lm-eval logged beside it, else
the one its per-sample scores give: sd / sqrt(n)) and the metrics as independent
measurements: ``mean +- 1.96 sqrt(sum se^2) / k``. That is the uncertainty of measuring these
metrics on these documents, not of which tasks were picked (``lightml diff``'s AVG row gives
that one). Without a standard error for every metric averaged, there is no interval.
"""

from __future__ import annotations

import math
from typing import Any

from lightml.log import codec
from lightml.read.natural import natural_key
from lightml.read.sql import Statement, Steps, query
from lightml.read.uncertainty import Z95, stderr_name, usable_stderr

_CHUNK = 500  # ids per IN (...) list


def scores_stderr(scores: list[Any]) -> float | None:
    """The standard error of the mean of per-sample scores (None under 2 numeric scores)."""
    numbers = [float(s) for s in scores if isinstance(s, (int, float)) and not isinstance(s, bool)
               and math.isfinite(s)]
    n = len(numbers)
    if n < 2:
        return None
    mean = math.fsum(numbers) / n
    return math.sqrt(math.fsum((x - mean) ** 2 for x in numbers) / (n - 1) / n)


def average_with_interval(values: list[float], stderrs: list[float | None]) -> tuple[float, float | None]:
    """The mean of ``values`` and the half-width of its 95% interval (None unless every value
    has a standard error)."""
    k = len(values)
    mean = math.fsum(values) / k
    if any(se is None for se in stderrs):
        return mean, None
    return mean, Z95 * math.sqrt(math.fsum(se * se for se in stderrs)) / k


@query
def summary_rows(metrics: list[tuple[str, str]], include_hidden: bool = False) -> Steps[list[dict[str, Any]]]:
    """Per model (model-level values; hidden models only with ``include_hidden``): ``mean``,
    ``half_width``, ``n`` (metrics it has) and ``missing``; models with none of the metrics
    are left out. In natural order of model, then run."""
    wanted = list(dict.fromkeys((f, m) for f, m in metrics))
    by_family: dict[str, set[str]] = {}
    for family, metric in wanted:
        by_family.setdefault(family, set()).add(metric)
    hidden = "" if include_hidden else " AND md.hidden = 0"
    found: dict[int, dict[tuple[str, str], list]] = {}  # model -> (family, metric) -> [value, stderr, metric id]
    stderr_of: dict[int, dict[tuple[str, str], float]] = {}
    models: dict[int, tuple[str, str | None]] = {}
    for family, names in by_family.items():
        stderr_names = {stderr_name(m): m for m in names}
        for model_id, name, run, metric, value, metric_id in (yield Statement(
                "SELECT md.id, md.model_name, r.run_name, m.metric_name, m.value, m.id FROM metrics m "
                "JOIN model md ON md.id = m.model_id LEFT JOIN run r ON r.id = md.run_id "
                f"WHERE m.family = ?{hidden}", (family,))):
            if metric in names and value is not None:
                models[model_id] = (name, run)
                found.setdefault(model_id, {})[(family, metric)] = [value, None, metric_id]
            if metric in stderr_names and usable_stderr(value) is not None:
                stderr_of.setdefault(model_id, {})[(family, stderr_names[metric])] = float(value)
    unexplained: dict[int, list] = {}  # metric id -> the entry still without a standard error
    for model_id, cells in found.items():
        for key, cell in cells.items():
            cell[1] = stderr_of.get(model_id, {}).get(key)
            if cell[1] is None:
                unexplained[cell[2]] = cell
    ids = list(unexplained)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for metric_id, scores in (yield Statement(
                f"SELECT metric_id, scores FROM detailed_scores WHERE metric_id IN ({','.join('?' * len(chunk))})",
                chunk)):
            unexplained[metric_id][1] = scores_stderr(codec.loads(scores))
    rows = []
    for model_id, cells in found.items():
        keys = [key for key in wanted if key in cells]
        mean, half = average_with_interval([cells[k][0] for k in keys], [cells[k][1] for k in keys])
        name, run = models[model_id]
        rows.append({"id": model_id, "model": name, "run": run, "mean": mean, "half_width": half, "n": len(keys),
                     "missing": [list(key) for key in wanted if key not in cells]})
    rows.sort(key=lambda row: (natural_key(row["model"]), natural_key(row["run"])))
    return rows
