"""The Excel report read back with openpyxl: sheets, values, formats, marks of significant
changes by direction, formula injection, and the paths it refuses."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

from lightml import export_excel
from lightml.errors import InvalidInputError
from lightml.handle import LightMLHandle
from lightml.report.export import sheet_names


BASE = [1] * 50 + [0] * 50
SFT = [1] * 50 + [1] * 30 + [0] * 20  # only_b = 30, only_a = 0: a significant gain


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model('=HYPERLINK("http://evil","x")', "org/evil")
        h.log_model_metric("base", "eval/arc", "acc", 0.5, scores=BASE)
        h.log_model_metric("sft", "eval/arc", "acc", 0.8, scores=SFT)
        h.log_metrics("base", {"eval/arc": {"loss": 2.0}, "knowledge": {"mmlu": 0.3}})
        h.log_metrics("sft", {"eval/arc": {"loss": 1.5}})
        h.log_model_metric('=HYPERLINK("http://evil","x")', "knowledge", "mmlu", 0.2)
        cid = h.register_checkpoint("sft", 500, "/ckpt/sft-500")
        h.log_checkpoint_metric(cid, "eval/arc", "acc", 0.7)
        h.log_model_metric("base", "knowledge", "mmlu", 0.31, force=True)
        h.register_model("gone", "org/gone")
        h.log_model_metric("gone", "knowledge", "mmlu", 0.1)
        h.delete_model("gone")
        h.register_model("secret", "org/secret")
        h.log_model_metric("secret", "knowledge", "mmlu", 0.9)
        h.set_hidden("secret")
        h.set_notes("sft", "lr 2e-5")
    return db


def test_report_sheets_values_and_formats(registry: Path, tmp_path: Path) -> None:
    out = export_excel(registry, tmp_path / "deep" / "report.xlsx")
    assert out == tmp_path / "deep" / "report.xlsx" and out.exists()
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Overview", "eval_arc", "knowledge", "History"]
    overview = wb["Overview"]
    rows = list(overview.iter_rows(values_only=True))
    assert rows[0] == ("Model", "Run", "Parent", "Path", "Checkpoints", "Metrics", "Notes")
    assert [r[0] for r in rows[1:]] == ['=HYPERLINK("http://evil","x")', "base", "sft"]  # hidden left out
    assert rows[3] == ("sft", "r1", "base", "org/sft", 1, 3, "lr 2e-5")

    arc = wb["eval_arc"]
    rows = list(arc.iter_rows(values_only=True))
    assert rows[0] == ("Model", "Phase", "Run", "Parent", "acc", "loss")
    assert rows[1:] == [("base", "F", "r1", None, 0.5, 2.0), ("sft", "F", "r1", "base", 0.8, 1.5),
                        ("sft", "S 500", "r1", "base", 0.7, None)]
    for sheet in wb.worksheets:
        assert sheet.freeze_panes == "B2"
    assert arc.auto_filter.ref == "A1:F4"
    scales = {str(cf.sqref): cf.rules[0].colorScale for cf in arc.conditional_formatting}
    assert set(scales) == {"E2:E4", "F2:F4"}
    acc_colors = [c.rgb[-6:] for c in scales["E2:E4"].color]
    loss_colors = [c.rgb[-6:] for c in scales["F2:F4"].color]
    assert acc_colors == ["F8696B", "FFEB84", "63BE7B"]  # red -> green: higher is better
    assert loss_colors == ["63BE7B", "FFEB84", "F8696B"]  # reversed for a loss
    # sft's acc gain over its parent is significant on the per-sample scores: marked
    assert arc["E3"].font.bold and "p = " in arc["E3"].comment.text and "base" in arc["E3"].comment.text
    assert not arc["E2"].font.bold and arc["E2"].comment is None

    knowledge = wb["knowledge"]
    evil = knowledge["A2"]
    assert evil.value == '=HYPERLINK("http://evil","x")' and evil.data_type == "s"
    with zipfile.ZipFile(out) as zf:
        assert not any(b"<f>" in zf.read(name) for name in zf.namelist() if name.startswith("xl/worksheets/"))

    history = list(wb["History"].iter_rows(values_only=True))
    assert history[0] == ("Time (UTC)", "Who", "Event", "Model", "Step", "Family", "Metric", "Old", "New")
    assert history[1][2:] == ("overwritten", "base", None, "knowledge", "mmlu", 0.3, 0.31)
    assert history[2][2:7] == ("model deleted", "gone", None, None, "1 metrics")
    assert history[1][1].endswith("(api)")


def test_report_with_hidden_models_and_default_path(registry: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = export_excel(str(registry), include_hidden=True)
    assert out == Path("report") / "reg_report.xlsx"
    wb = openpyxl.load_workbook(out)
    models = [r[0] for r in wb["Overview"].iter_rows(min_row=2, values_only=True)]
    assert "secret" in models and wb["Overview"]["H1"].value == "Hidden"


def test_sheet_names_are_valid_and_unique() -> None:
    names = sheet_names(["a/b", "a:b", "History", "x" * 40, "x" * 40 + "y", "'quoted'", "A/B"])
    assert list(names.values()) == ["a_b", "a_b (2)", "History (2)", "x" * 31, "x" * 27 + " (2)", "quoted",
                                    "A_B (3)"]
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names.values())


def test_sheet_name_cut_to_31_characters_never_ends_with_an_apostrophe() -> None:
    (name,) = sheet_names(["x" * 30 + "'yz"]).values()
    assert name == "x" * 30 and not name.endswith("'")


def test_export_refuses_what_is_not_a_registry(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        export_excel(tmp_path / "missing.db", tmp_path / "r.xlsx")
    assert not (tmp_path / "r.xlsx").exists()


def test_export_to_a_folder_is_refused_and_leaves_nothing(registry: Path, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    with pytest.raises(InvalidInputError, match="is a folder"):
        export_excel(registry, folder)
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(InvalidInputError, match="is a folder"):
        export_excel(registry, f"{tmp_path / 'not-yet'}/")
    assert not (tmp_path / "not-yet").exists()


def test_significant_regressions_are_marked_red_and_gains_green_by_direction(tmp_path: Path) -> None:
    db = tmp_path / "dir.db"
    worse = [1] * 50 + [0] * 50
    better = [1] * 90 + [0] * 10
    with LightMLHandle(db, "r") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        # acc: sft is significantly worse (a regression); error (1 = wrong): sft errs less (a gain)
        h.log_model_metric("base", "eval", "acc", 0.9, scores=better)
        h.log_model_metric("sft", "eval", "acc", 0.5, scores=worse)
        h.log_model_metric("base", "eval", "error", 0.5, scores=worse)
        h.log_model_metric("sft", "eval", "error", 0.1, scores=[1 - s for s in better])
    sheet = openpyxl.load_workbook(export_excel(db, tmp_path / "r.xlsx"))["eval"]
    assert [c.value for c in sheet[1]] == ["Model", "Phase", "Run", "Parent", "acc", "error"]
    acc, error = sheet["E3"], sheet["F3"]
    assert acc.font.bold and acc.font.color.rgb.endswith("9C0006") and "regression" in acc.comment.text
    assert error.font.bold and error.font.color.rgb.endswith("006100") and "gain" in error.comment.text


def test_a_value_shows_its_stderr_and_stays_a_number(tmp_path: Path) -> None:
    db = tmp_path / "se.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "org/m")
        h.log_metrics("m", {"mmlu": {"acc": 0.61, "acc_stderr": 0.0123, "f1": 0.5}})
    sheet = openpyxl.load_workbook(export_excel(db, tmp_path / "se.xlsx"))["mmlu"]
    header = [cell.value for cell in sheet[1]]
    acc, acc_stderr, f1 = (sheet.cell(2, header.index(name) + 1) for name in ("acc", "acc_stderr", "f1"))
    assert (acc.value, acc.number_format) == (0.61, '0.0000" ±0.0123"')
    assert (acc_stderr.value, acc_stderr.number_format) == (0.0123, "0.0000")  # its own column stays
    assert f1.number_format == "0.0000"
