"""The Excel report: ``export_excel`` and ``lightml export``.

Sheets: Overview (one row per model), one per metric family (models and their checkpoints,
a colour scale per metric, significant gains over the parent marked), and History (every
overwrite and delete from the event log). Every user string is written as text, never as a
formula, and sheet names are made valid, so the file opens without a repair prompt.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.formatting.rule import ColorScaleRule
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from lightml.errors import InvalidInputError
from lightml.log import store
from lightml.read import filters, repeats, settings, significance
from lightml.read.natural import natural_sorted
from lightml.read.direction import is_uncertainty, lower_is_better
from lightml.read.uncertainty import stderr_name, usable_stderr
from lightml.read.report_data import ReportData, overwrites_and_deletes, report_data
from lightml.read.sql import reading

RED, YELLOW, GREEN = "F8696B", "FFEB84", "63BE7B"
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", start_color="DDEBF7")
SIGNIFICANT_GAIN_FONT = Font(bold=True, color="006100")  # dark green
SIGNIFICANT_REGRESSION_FONT = Font(bold=True, color="9C0006")  # dark red
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
RESERVED_SHEETS = ("Overview", "History")


def default_output(db_path: str | os.PathLike) -> Path:
    """``report/<db stem>_report.xlsx`` in the current folder (LightML 1.2's default)."""
    return Path("report") / f"{Path(db_path).stem}_report.xlsx"


def sheet_names(families: list[str]) -> dict[str, str]:
    """family -> a valid, unique sheet name: at most 31 characters, none of ``[]:*?/\\``,
    no leading or trailing apostrophe, unique ignoring case (as Excel compares them)."""
    taken = {name.lower() for name in RESERVED_SHEETS}
    names = {}
    for family in families:
        base = _BAD_SHEET_CHARS.sub("_", family).strip("'") or "family"
        # (cut to 31 characters, a name could end with an apostrophe again)
        candidate, n = base[:31].rstrip("'") or "family", 1
        while candidate.lower() in taken:
            n += 1
            suffix = f" ({n})"
            candidate = base[:31 - len(suffix)] + suffix
        taken.add(candidate.lower())
        names[family] = candidate
    return names


def _text(value: Any) -> Any:
    """Strings as they can live in a cell: control characters XML cannot hold are escaped."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub(lambda m: repr(m.group())[1:-1], value)
    return value


def _put(ws, row: int, column: int, value: Any):
    cell = ws.cell(row=row, column=column, value=_text(value))
    if isinstance(value, str):
        cell.data_type = "s"  # "=HYPERLINK(...)" as a model name stays text, never a formula
    return cell


def _header(ws, headers: list[str]) -> None:
    for column, title in enumerate(headers, 1):
        cell = _put(ws, 1, column, title)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL


def _finish(ws, n_rows: int, n_columns: int, widths: dict[int, int]) -> None:
    ws.freeze_panes = "B2"  # header row and the model column stay in view
    if n_columns:
        ws.auto_filter.ref = f"A1:{get_column_letter(n_columns)}{max(n_rows, 1) + 1}"
    for column, width in widths.items():
        ws.column_dimensions[get_column_letter(column)].width = min(max(width + 2, 8), 60)


def _overview(wb: Workbook, reg: ReportData, include_hidden: bool) -> None:
    ws = wb.active
    ws.title = "Overview"
    headers = ["Model", "Run", "Parent", "Path", "Checkpoints", "Metrics", "Notes"] + (
        ["Hidden"] if include_hidden else [])
    _header(ws, headers)
    widths = {i: len(h) for i, h in enumerate(headers, 1)}
    for row, (mid, name, run, parent, _, path, notes, hidden, n_ckpt) in enumerate(reg.models, 2):
        values = [name, run, parent, path, n_ckpt, reg.metric_count[mid], notes] + (
            ["yes" if hidden else ""] if include_hidden else [])
        for column, value in enumerate(values, 1):
            _put(ws, row, column, value)
            if isinstance(value, str):
                widths[column] = max(widths[column], len(value))
    _finish(ws, len(reg.models), len(headers), widths)


def _significant_changes(conn, reg: ReportData, family: str) -> dict[tuple[int, str], tuple[bool, str]]:
    """(child model id, metric) -> (is a gain, comment text), where the child's change over
    its parent is significant (p < 0.05) on the per-sample scores both have. A gain is a
    higher score, or a lower one for a loss-like metric."""
    names = {row[0]: row[1] for row in reg.models}
    marks = {}
    for mid, name, _, parent_name, parent_id, *_ in reg.models:
        if parent_id is None or parent_id not in names:
            continue
        verdicts = significance.verdicts_by_id(conn, parent_id, mid, parent_name, name, family)
        for (_, metric), verdict in verdicts.items():
            if verdict.get("significant"):
                child_higher = verdict["delta"] < 0  # delta is parent - child
                gain = child_higher != lower_is_better(metric)
                marks[(mid, metric)] = (gain, f"Significant {'gain' if gain else 'regression'} over parent "
                                              f"{parent_name}: p = {verdict['p_value']:.2g} "
                                              f"({verdict['test']}, paired on per-sample scores)")
    return marks


def _differing_settings(conn, reg: ReportData, family: str) -> dict[str, str]:
    """metric -> the comment on its column's header when the models' values of it were
    produced with eval settings that differ in a key that changes the number."""
    if not settings.any_recorded(conn):
        return {}
    shown = {row[0]: row[1] for row in reg.models}
    by_metric: dict[str, dict[str, dict]] = {}  # (a model without settings for a metric: unknown, left out)
    for model_id, of_name in settings.settings_by_model(conn, list(shown), family).items():
        for (_, metric), recorded in of_name.items():
            by_metric.setdefault(metric, {})[shown[model_id]] = recorded
    comments = {}
    for metric, of_model in by_metric.items():
        keys = settings.differing_keys(of_model.values())
        if keys:
            comments[metric] = ("Not comparable: these models' values were produced with eval settings that "
                                f"differ in {settings.describe(keys, of_model.values())}.")
    return comments


def _family_sheet(wb: Workbook, conn, reg: ReportData, family: str, title: str) -> None:
    ws = wb.create_sheet(title)
    table = reg.values[family]
    metrics = natural_sorted({metric for row in table.values() for metric in row})
    headers = ["Model", "Phase", "Run", "Parent"] + metrics
    _header(ws, headers)
    widths = {i: len(h) for i, h in enumerate(headers, 1)}
    marks = _significant_changes(conn, reg, family)
    spreads = {mid: repeats.spreads_by_name(conn, mid, family) for mid, *_ in reg.models}
    column_of = {metric: i for i, metric in enumerate(metrics, 5)}
    for metric, comment in _differing_settings(conn, reg, family).items():
        # (a comment, not a colour: the header says in words which values are not comparable)
        ws.cell(row=1, column=column_of[metric]).comment = Comment(comment, "LightML")
    row = 1
    for mid, name, run, parent, *_ in reg.models:
        targets = [("F", mid, "F")] + [("S", cid, f"S {step}") for cid, step in reg.checkpoints.get(mid, [])]
        for kind, key, phase in targets:
            values = table.get((kind, key))
            if not values:
                continue
            row += 1
            for column, value in enumerate((name, phase, run, parent), 1):
                _put(ws, row, column, value)
                if isinstance(value, str):
                    widths[column] = max(widths[column], len(value))
            for metric, value in values.items():
                cell = _put(ws, row, column_of[metric], value)
                # lm-eval's stderr of the value is shown beside it by the cell's format: the cell
                # stays a number (sorting and formulas work); the stderr keeps its own column.
                stderr = usable_stderr(values.get(stderr_name(metric))) if not is_uncertainty(metric) else None
                cell.number_format = "0.0000" if stderr is None else f'0.0000" ±{stderr:.4f}"'
                spread = spreads[key].get((family, metric)) if kind == "F" else None
                if spread is not None:  # the mean of repeats: its 95% interval over them, and their count
                    cell.number_format = (f'0.0000" (n={spread.n})"' if spread.half is None
                                          else f'0.0000" ±{spread.half:.4f} (n={spread.n})"')
                    widths[column_of[metric]] = max(widths[column_of[metric]], 22)
                if stderr is not None:
                    widths[column_of[metric]] = max(widths[column_of[metric]], 16)
                mark = marks.get((mid, metric)) if kind == "F" else None
                if mark:
                    gain, comment = mark
                    cell.font = SIGNIFICANT_GAIN_FONT if gain else SIGNIFICANT_REGRESSION_FONT
                    cell.comment = Comment(comment, "LightML")
    for metric, column in column_of.items():
        if row < 2:
            break
        low, high = (GREEN, RED) if lower_is_better(metric) else (RED, GREEN)
        letter = get_column_letter(column)
        ws.conditional_formatting.add(f"{letter}2:{letter}{row}", ColorScaleRule(
            start_type="min", start_color=low, mid_type="percentile", mid_value=50, mid_color=YELLOW,
            end_type="max", end_color=high))
    _finish(ws, row - 1, len(headers), widths)


def _history(wb: Workbook, conn) -> None:
    """Every forced overwrite and every delete, from the log, oldest first."""
    ws = wb.create_sheet("History")
    headers = ["Time (UTC)", "Who", "Event", "Model", "Step", "Family", "Metric", "Old", "New"]
    _header(ws, headers)
    row = 1
    for entry in overwrites_and_deletes(conn):
        row += 1
        when = entry.at.replace("T", " ").rstrip("Z")
        if entry.metrics_deleted is not None:
            cells = (when, entry.actor, "model deleted", entry.model, None, None, f"{entry.metrics_deleted} metrics",
                     None, None)
        else:
            cells = (when, entry.actor, "overwritten", entry.model, entry.step, entry.family, entry.metric,
                     entry.previous_value, entry.value)
        for column, value in enumerate(cells, 1):
            _put(ws, row, column, value)
    _finish(ws, row - 1, len(headers), {1: 26, 2: 24, 3: 14, 4: 24, 6: 16, 7: 24})


def export_excel(db_path: str | os.PathLike, output_path: str | os.PathLike | None = None, *,
                 include_hidden: bool = False, where: str | None = None) -> Path:
    """Write the report and return its path (folders are created as needed). ``where``: only
    the models the filter expression selects (``lightml.read.filters``)."""
    output = Path(output_path) if output_path is not None else default_output(db_path)
    # (A trailing slash means a folder even if it does not exist yet; Path() would drop it.)
    if output.is_dir() or (output_path is not None and str(output_path).endswith(("/", os.sep))):
        raise InvalidInputError(f"{output} is a folder; give the report a file name, e.g. {output / 'report.xlsx'}")
    tmp = output.with_name(output.name + ".tmp")
    store.refuse_registry_file(output, db_path, "the output")
    store.refuse_registry_file(tmp, db_path, "the output's temporary file")  # written first, then renamed
    if where is not None:
        filters.parse(where)  # (a bad expression: the error, before anything is read or written)
    with reading(db_path, snapshot=True) as conn:  # one snapshot: a writer elsewhere cannot tear the report
        reg = report_data(conn, include_hidden, where)
        wb = Workbook()
        _overview(wb, reg, include_hidden)
        families = natural_sorted(reg.values)
        for family, title in sheet_names(families).items():
            _family_sheet(wb, conn, reg, family, title)
        _history(wb, conn)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        wb.save(tmp)
        os.replace(tmp, output)  # never leave a half-written report under the real name
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return output
