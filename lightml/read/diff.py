"""Side-by-side values of N models: ``diff_models``, ``format_diff`` and ``lightml diff``.

Kept free of pydantic, and of numpy until the AVG row's interval needs it, so that ``lightml
diff`` starts in a blink.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from typing import Any

from lightml.errors import InvalidInputError
from lightml.read import filters, repeats, resolve, settings, uncertainty
from lightml.read.natural import natural_pair
from lightml.read.params import params_by_model
from lightml.read.direction import is_uncertainty, lower_is_better
from lightml.read.run_ids import require_run_id
from lightml.read.sql import reading
from lightml.report.ansi import GREEN, RED, paint
from lightml.write.validation import check_name


# The AVG row's rule, printed under it and returned in ``average["rule"]``: an average of
# accuracies with a perplexity (~12, lower is better) would rank models by the perplexity.
AVERAGE_RULE = ("mean of the higher-is-better metrics that every model has, with every value in [0, 1] "
                "(never lower-is-better metrics, other scales or stderr rows)")


def diff_models(db: str | os.PathLike, model_names: list[str] | None = None, run_name: str | None = None,
                family: str | None = None, *, strict: bool = False, where: str | None = None,
                group_by: str | None = None) -> dict[str, Any]:
    """The model-level metrics of several models, row per (family, metric).

    Models are named by ``resolve.find_model``'s rule (``RUN/MODEL`` or ``MODEL@RUN``;
    ``run_name`` is the preferred run). Returns ``{"models": [as given], "runs": {model:
    run}, "run_name", "rows": [{"family", "metric", "values": {model: value or None},
    "lower_is_better", "uncertainty", "best": [models], "worst": [models]}], "average":
    {"rule", "values": {model: mean} or None, "metrics": [[family, metric]], "left_out":
    [{"family", "metric", "reason"}]}}``, rows sorted by family then metric. Each row also
    has ``stderr`` ({model: lm-eval's stderr} or None) and ``settings_differ`` (the decisive
    settings keys in which its values' eval settings differ); ``strict`` refuses a diff with
    such a row (InvalidInputError).

    ``where``: the models the filter expression selects (``lightml.read.filters``; visible ones,
    in ``run_name`` if given), or of ``model_names`` only those it selects. ``group_by``: a
    parameter (``set_params``); the columns are then its values, each the mean of its models
    (``groups``: {column: [models]}; models without it in ``<key>=-``).
    """
    with reading(db) as conn:
        return diff_in(conn, model_names, run_name, family, strict=strict, where=where, group_by=group_by)


def diff_in(conn: sqlite3.Connection, model_names: list[str] | None, run_name: str | None = None,
            family: str | None = None, *, strict: bool = False, where: str | None = None,
            group_by: str | None = None) -> dict[str, Any]:
    if isinstance(model_names, str):  # list("abc") would diff models "a", "b" and "c"
        raise InvalidInputError(f"model_names must be a list of model names, got the string {model_names!r}")
    if group_by is not None:
        check_name(group_by, "group_by")
    if where is not None:
        model_names = _selected(conn, model_names, run_name, where)
    elif model_names is None:
        raise InvalidInputError("name the models to diff, or select them with where=")
    names = list(model_names)
    if len(names) < 2:
        raise InvalidInputError("Need at least 2 models to diff")
    refs = {name: resolve.find_model(conn, name, run_name) for name in names}
    ids: dict[int, str] = {}
    for name in names:
        if refs[name].id in ids:
            raise InvalidInputError(f"model {name!r} is listed more than once"
                                    + ("" if ids[refs[name].id] == name else f" (also as {ids[refs[name].id]!r})"))
        ids[refs[name].id] = name
    placeholders = ",".join("?" * len(ids))
    sql = f"SELECT model_id, family, metric_name, value FROM metrics WHERE model_id IN ({placeholders})"
    params: list[Any] = list(ids)
    if family is not None:
        sql += " AND family = ?"
        params.append(family)
    table: dict[tuple[str, str], dict[str, float | None]] = {}
    for model_id, fam, metric, value in conn.execute(sql, params):
        table.setdefault((fam, metric), dict.fromkeys(names))[ids[model_id]] = value
    rows = [_row(fam, metric, table[(fam, metric)], names) for fam, metric in sorted(table, key=natural_pair)]
    for row in rows:  # lm-eval's stderr of each value, where logged
        stderrs = table.get((row["family"], uncertainty.stderr_name(row["metric"])), {})
        known = {name: uncertainty.usable_stderr(stderrs.get(name)) for name in names}
        row["stderr"] = known if not row["uncertainty"] and any(v is not None for v in known.values()) else None
    _mark_repeats(conn, rows, refs, names, family)
    _mark_differing_settings(conn, rows, refs, names, family)
    settings.refuse_if_strict(strict, [(f"{r['family']}/{r['metric']}", r["settings_differ"])
                                       for r in rows if r["settings_differ"]])
    average = _average(rows, names)
    if average["values"] is not None:
        average["interval"] = _average_interval(conn, [refs[name].id for name in names], names, average["metrics"],
                                                rows)
    data = {"models": names, "runs": {name: refs[name].run_name for name in names}, "run_name": run_name,
            "rows": rows, "average": average}
    if group_by is not None:
        found = params_by_model(conn, [refs[name].id for name in names])
        data = _grouped(data, {name: found.get(refs[name].id, {}).get(group_by) for name in names}, group_by)
    return data


def _selected(conn: sqlite3.Connection, model_names: list[str] | None, run_name: str | None,
              where: str) -> list[str]:
    """The models ``where`` selects, spelled so that each names one model: visible ones (in
    the run if given), name order; or those of ``model_names`` it selects."""
    if model_names is not None:
        chosen = filters.matching_model_ids(conn, where)
        names = [name for name in model_names if resolve.find_model(conn, name, run_name).id in chosen]
    else:
        run = require_run_id(conn, run_name)
        names = resolve.model_spellings(conn, run, selected_by=where)
    if len(names) < 2:
        raise InvalidInputError(f"the filter {where!r} selects {len(names)} model(s) to diff; it takes at least 2")
    return names


def _grouped(data: dict[str, Any], values_of: dict[str, Any], key: str) -> dict[str, Any]:
    """``data`` with one column per value of parameter ``key`` (numbers in numeric order,
    then text, then the models without it), each the mean of its models' values (None when
    none has the metric)."""
    # Grouped by the value as JSON (1, true and "1" are three groups; text is shown quoted, so
    # no value reads as another's, nor as "-", the models without it).
    groups: dict[str | None, list[str]] = {}
    found: dict[str | None, Any] = {}
    for name in data["models"]:
        value = values_of[name]
        text = None if value is None else json.dumps(value, ensure_ascii=False)
        groups.setdefault(text, []).append(name)
        found[text] = value

    def order(text: str | None) -> tuple:
        value = found[text]
        if text is None:
            return (3, 0, "")
        if isinstance(value, bool):
            return (1, 0, text)
        return (0, value, text) if isinstance(value, (int, float)) else (2, 0, text)

    columns = [f"{key}={'-' if text is None else text}" for text in sorted(groups, key=order)]
    members = {f"{key}={'-' if text is None else text}": names for text, names in groups.items()}
    rows = []
    for row in data["rows"]:
        if row["uncertainty"]:
            continue  # (a mean of stderrs is not the stderr of the mean: left out)
        values = {}
        for column in columns:
            known = [row["values"][name] for name in members[column] if row["values"][name] is not None]
            values[column] = math.fsum(known) / len(known) if known else None
        grouped = _row(row["family"], row["metric"], values, columns)
        grouped.update(stderr=None, repeats=None, settings_differ=row["settings_differ"])
        rows.append(grouped)
    average = _average(rows, columns)
    if average["values"] is not None:
        average["interval"] = _interval_over_tasks(rows, columns, average["metrics"],
                                                   "the columns are means of groups of models")
    return {**data, "models": columns, "runs": {}, "rows": rows, "average": average, "group_by": key,
            "groups": {column: members[column] for column in columns}}


def _mark_repeats(conn: sqlite3.Connection, rows: list[dict[str, Any]], refs: dict, names: list[str],
                  family: str | None) -> None:
    """``row["repeats"]``: {model: {"mean", "half_width", "n", "confidence"} or None} where some
    value of the row is the mean of repeats, else None."""
    spreads = {name: repeats.spreads_by_name(conn, refs[name].id, family) for name in names}
    for row in rows:
        key = (row["family"], row["metric"])
        known = {name: spreads[name].get(key) for name in names}
        row["repeats"] = ({name: None if s is None else s.to_dict() for name, s in known.items()}
                          if any(s is not None for s in known.values()) else None)


def _mark_differing_settings(conn: sqlite3.Connection, rows: list[dict[str, Any]], refs: dict, names: list[str],
                             family: str | None) -> None:
    """``row["settings_differ"]``: the decisive keys in which the row's values' settings differ."""
    found = settings.settings_by_model(conn, [refs[name].id for name in names], family)
    by_model = {name: found.get(refs[name].id, {}) for name in names}
    differing = settings.DifferingKeys()
    for row in rows:
        key = (row["family"], row["metric"])
        row["settings_differ"] = differing([by_model[name].get(key) for name in names])


def _average_interval(conn: sqlite3.Connection, model_ids: list[int], names: list[str], metrics: list[list[str]],
                      rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The AVG row's 95% interval per model: a paired bootstrap over documents when every
    averaged metric has per-sample scores on the same documents for every model, else the
    normal interval over the averaged metrics (tasks); ``method`` says which, ``why`` why not
    the first. None with one metric and no scores (nothing to go by)."""
    vectors = _score_vectors(conn, model_ids, metrics)
    if vectors is None:
        return _interval_over_tasks(rows, names, metrics,
                                    "not every averaged metric has per-sample scores on the same documents for every model")
    bounds = uncertainty.average_interval_over_documents(vectors)
    return {"method": "paired bootstrap over documents", "why": None, "confidence": 0.95,
            "resamples": uncertainty.AVERAGE_RESAMPLES, "seed": uncertainty.AVERAGE_SEED,
            "low": {n: b[0] for n, b in zip(names, bounds)}, "high": {n: b[1] for n, b in zip(names, bounds)}}


def _interval_over_tasks(rows: list[dict[str, Any]], names: list[str], metrics: list[list[str]],
                         why: str) -> dict[str, Any] | None:
    """The AVG row's normal 95% interval over the averaged metrics (tasks), per column; None
    with fewer than 2 metrics."""
    kept = {(r["family"], r["metric"]): r for r in rows}
    bounds = uncertainty.average_interval_over_tasks([[kept[(f, m)]["values"][n] for n in names] for f, m in metrics])
    if bounds is None:
        return None
    return {"method": "normal over tasks", "why": why, "confidence": 0.95, "resamples": None, "seed": None,
            "low": {n: b[0] for n, b in zip(names, bounds)}, "high": {n: b[1] for n, b in zip(names, bounds)}}


def _score_vectors(conn: sqlite3.Connection, model_ids: list[int], metrics: list[list[str]]) -> list | None:
    """Per averaged metric, every model's per-sample scores in the same document order; None
    when one is missing, or two models were scored on other documents (or in another order)."""
    placeholders = ",".join("?" * len(model_ids))
    found: dict[tuple[int, str, str], tuple[str, str | None]] = {}
    for model_id, fam, metric, scores, keys in conn.execute(
            "SELECT m.model_id, m.family, m.metric_name, d.scores, k.doc_keys FROM metrics m "
            "JOIN detailed_scores d ON d.metric_id = m.id LEFT JOIN score_docs k ON k.metric_id = m.id "
            f"WHERE m.model_id IN ({placeholders})", model_ids):
        found[(model_id, fam, metric)] = (scores, keys)
    stored_of = [[found.get((model_id, fam, metric)) for model_id in model_ids] for fam, metric in metrics]
    if any(None in stored or len({keys for _, keys in stored}) != 1 for stored in stored_of):
        return None
    from lightml.read import stats  # (numpy: only when there are vectors to read)

    vectors = []
    for stored in stored_of:
        try:
            per_model = [stats.vector_from_json(scores) for scores, _ in stored]
        except (ValueError, TypeError, OverflowError, RecursionError):
            return None
        if len({v.shape for v in per_model}) != 1 or per_model[0].ndim != 1 or per_model[0].size == 0:
            return None
        vectors.append(per_model)
    return vectors


def _row(family: str, metric: str, values: dict[str, float | None], names: list[str]) -> dict[str, Any]:
    uncertainty = is_uncertainty(metric)
    lower = lower_is_better(metric)
    best, worst = (set(), set()) if uncertainty else _best_and_worst(lower, [values[m] for m in names])
    return {"family": family, "metric": metric, "values": values, "lower_is_better": lower,
            "uncertainty": uncertainty, "best": [names[i] for i in sorted(best)],
            "worst": [names[i] for i in sorted(worst)]}


def _left_out_because(row: dict[str, Any]) -> str | None:
    """Why a row is not in the AVG row (None: it is in)."""
    values = list(row["values"].values())
    if row["uncertainty"]:
        return "uncertainty (stderr)"
    if any(v is None for v in values):
        return "not every model has it"
    if row["lower_is_better"]:
        return "lower is better"
    if any(not 0 <= v <= 1 for v in values):
        return "not on the [0, 1] scale"
    return None


def _average(rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """The AVG row by ``AVERAGE_RULE``: never a mix of directions or scales."""
    kept, left_out = [], []
    for row in rows:
        reason = _left_out_because(row)
        if reason is None:
            kept.append(row)
        else:
            left_out.append({"family": row["family"], "metric": row["metric"], "reason": reason})
    values = {m: sum(r["values"][m] for r in kept) / len(kept) for m in names} if kept else None
    return {"rule": AVERAGE_RULE, "values": values, "metrics": [[r["family"], r["metric"]] for r in kept],
            "left_out": left_out}


def _best_and_worst(lower: bool, values: list[float | None]) -> tuple[set[int], set[int]]:
    """Column indexes of the best and the worst value of a row (direction-aware). Best is
    marked when values differ; worst only with 3+ values (with two, it is just "the other")."""
    numbers = [(v, i) for i, v in enumerate(values) if v is not None]
    if len(numbers) < 2 or len({v for v, _ in numbers}) == 1:
        return set(), set()
    low, high = min(v for v, _ in numbers), max(v for v, _ in numbers)
    best, worst = (low, high) if lower else (high, low)
    best_cols = {i for v, i in numbers if v == best}
    worst_cols = {i for v, i in numbers if v == worst} if len(numbers) >= 3 else set()
    return best_cols, worst_cols


def format_diff(data: dict[str, Any], *, color: bool = True) -> str:
    if not data["rows"]:
        return "\n  No metrics found for the given models.\n"
    models = data["models"]
    # data built by hand may hold only family, metric and values: the rest follows from them
    rows = [r if "best" in r else _row(r["family"], r["metric"], r["values"], models) for r in data["rows"]]
    average = data.get("average") or _average(rows, models)
    fam_w = max([12] + [len(r["family"]) for r in rows])
    met_w = max([12] + [len(r["metric"]) for r in rows])
    with_stderr = any(r.get("stderr") for r in rows)
    with_repeats = any(r.get("repeats") for r in rows)
    # "0.6000 ±0.0110", "0.6000 ±0.0110 (n=5)"
    col_w = max([22 if with_repeats else 15 if with_stderr else 10] + [len(m) for m in models])

    def line(family: str, metric: str, cells: list[str]) -> str:
        return f"  {family:<{fam_w}} {metric:<{met_w}}" + "".join(f"  {c}" for c in cells)

    header = line("Family", "Metric", [f"{m:>{col_w}}" for m in models])
    width = len(header) - 2
    runs = data.get("runs") or {}
    if data.get("run_name"):
        run_info = f"  (run: {data['run_name']})"
    elif len(set(runs.values())) == 1:
        run_info = f"  (run: {next(iter(runs.values()))})"
    else:
        run_info = ""
    what = f"{len(models)} groups by {data['group_by']}" if data.get("group_by") else f"{len(models)} models"
    out = ["", f"  lightml diff — {what}{run_info}", "  " + "═" * width, header, "  " + "─" * width]
    previous_family = None
    for row in rows:
        if previous_family is not None and row["family"] != previous_family:
            out.append("")
        previous_family = row["family"]
        cells = []
        stderrs = row.get("stderr") or {}
        for model in models:
            value = row["values"][model]
            shown = "—" if value is None else f"{value:.4f}"
            spread = (row.get("repeats") or {}).get(model)
            if value is not None and spread is not None:
                shown += f" (n={spread['n']})" if spread["half_width"] is None else \
                    f" ±{spread['half_width']:.4f} (n={spread['n']})"
            elif value is not None and stderrs.get(model) is not None:
                shown += f" ±{stderrs[model]:.4f}"
            text = f"{shown:>{col_w}}"
            colour = GREEN if model in row["best"] else RED if model in row["worst"] else None
            cells.append(paint(text, colour, color))
        out.append(line(row["family"], row["metric"], cells) + ("  !" if row.get("settings_differ") else ""))
    out.append("  " + "─" * width)
    out += _average_lines(average, models, line, col_w)
    if with_repeats:
        out.append("  (n=...): the mean of n repeats, ± the half-width of its 95% t interval; "
                   "± alone: lm-eval's stderr")
    for column, members in (data.get("groups") or {}).items():
        out.append(f"  {column}: the mean of {', '.join(members)}")
    out += settings.footnote([(f"{r['family']}/{r['metric']}", r["settings_differ"])
                              for r in rows if r.get("settings_differ")])
    out.append("")
    return "\n".join(out)


def _average_lines(average: dict[str, Any], models: list[str], line, col_w: int) -> list[str]:
    lines = []
    interval = average.get("interval")
    if average["values"] is not None:
        n = len(average["metrics"])
        lines.append(line("AVG", f"({n} metric{'s' if n != 1 else ''})",
                          [f"{average['values'][m]:>{col_w}.4f}" for m in models]))
    else:
        lines.append("  AVG: none (no metric fits the rule below)")
    lines.append(f"  AVG: {average['rule']}.")
    if interval is not None:
        bounds = ", ".join(f"{m} [{interval['low'][m]:.4f}, {interval['high'][m]:.4f}]" for m in models)
        if interval["resamples"]:
            how = f"{interval['method']}, {interval['resamples']} resamples, seed {interval['seed']}"
        else:
            n = len(average["metrics"])
            how = f"normal over the {n} tasks (mean ± 1.96 sd / √{n}), since {interval['why']}"
        lines.append(f"  AVG 95% interval: {bounds}; {how}.")
    if average["left_out"]:
        shown = ", ".join(f"{x['metric']} ({x['reason']})" for x in average["left_out"][:4])
        more = f", and {len(average['left_out']) - 4} more" if len(average["left_out"]) > 4 else ""
        lines.append(f"  Left out: {shown}{more}.")
    return lines
