"""The Excel report read back with openpyxl, and merging registries."""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

import openpyxl
import pytest

from lightml import export_excel, merge, verify
from lightml.errors import InvalidInputError, NotARegistryError
from lightml.report.export import sheet_names
from lightml.handle import LightMLHandle

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


def test_export_refuses_what_is_not_a_registry(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        export_excel(tmp_path / "missing.db", tmp_path / "r.xlsx")
    assert not (tmp_path / "r.xlsx").exists()


# -- merge ------------------------------------------------------------------------------------


def build(path: Path, run: str, models: dict[str, tuple[str | None, float, list | None]]) -> None:
    with LightMLHandle(path, run) as h:
        for name, (parent, value, scores) in models.items():
            h.register_model(name, f"org/{name}", parent_name=parent)
            h.log_model_metric(name, "eval", "acc", value, scores=scores)


def one_model_1x_file(path: Path) -> Path:
    """A LightML 1.x database (read tables only, no detailed_scores): run 1 'r' with model 1 'm'."""
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE run (id INTEGER PRIMARY KEY, run_name TEXT, description TEXT, metadata TEXT, created_at TEXT);
            CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT, path TEXT, parent_id INTEGER, run_id INTEGER);
            CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, model_id INTEGER, step INTEGER, path TEXT, created_at TEXT);
            CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER, family TEXT,
                                  metric_name TEXT, value REAL);
            INSERT INTO run VALUES (1, 'r', NULL, NULL, '2024-01-01 00:00:00');
            INSERT INTO model VALUES (1, 'm', 'org/m', NULL, 1);""")
    return path


def tamper(conn: sqlite3.Connection, sql: str) -> None:
    """Change a read table behind the log, as a broken or foreign tool could: without the
    triggers that keep LightML 1.x clients out."""
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute(sql)


def tables(db: Path) -> dict[str, list]:
    with sqlite3.connect(db) as conn:
        return {
            "models": conn.execute("SELECT m.model_name, r.run_name, p.model_name, m.notes FROM model m "
                                   "JOIN run r ON r.id = m.run_id LEFT JOIN model p ON p.id = m.parent_id "
                                   "ORDER BY 1, 2").fetchall(),
            "metrics": conn.execute("SELECT mo.model_name, x.family, x.metric_name, x.value, d.scores "
                                    "FROM metrics x JOIN model mo ON mo.id = x.model_id "
                                    "LEFT JOIN detailed_scores d ON d.metric_id = x.id ORDER BY 1, 2, 3").fetchall(),
        }


def test_merge_overlapping_registries(tmp_path: Path) -> None:
    mine, cluster = tmp_path / "mine.db", tmp_path / "cluster.db"
    build(mine, "shared", {"base": (None, 0.5, None), "sft": ("base", 0.6, None)})
    build(cluster, "shared", {"base": (None, 0.55, [1, 0]), "dpo": ("base", 0.7, [1, 1])})
    build(cluster, "cluster-only", {"probe": ("dpo", 0.1, None)})
    with LightMLHandle(cluster, "shared") as h:
        cid = h.register_checkpoint("dpo", 100, "/ckpt/dpo-100")
        h.log_checkpoint_metric(cid, "eval", "acc", 0.65)
        h.set_notes("dpo", "from the cluster")
    with sqlite3.connect(mine) as conn:
        (last_own_event,) = conn.execute("SELECT max(seq) FROM events").fetchone()
    result = merge(mine, cluster)
    assert result.to_dict() == {"runs_created": 1, "models_registered": 2, "checkpoints_registered": 1,
                                "metrics_inserted": 3, "metrics_overwritten": 0, "metrics_skipped": 1,
                                "metrics_unusable": 0, "scores_unusable": 0, "sources": [str(cluster.resolve())]}
    after = tables(mine)
    assert after["models"] == [("base", "shared", None, None), ("dpo", "shared", "base", "from the cluster"),
                               ("probe", "cluster-only", "dpo", None), ("sft", "shared", "base", None)]
    assert ("base", "eval", "acc", 0.5, None) in after["metrics"]  # mine kept: duplicates skipped
    assert ("dpo", "eval", "acc", 0.7, "[1,1]") in after["metrics"]
    assert merge(mine, cluster).to_dict()["metrics_inserted"] == 0  # twice adds nothing
    assert tables(mine) == after
    with sqlite3.connect(mine) as conn:
        origins = {o for (o,) in conn.execute("SELECT origin FROM events WHERE seq > ?", (last_own_event,))}
    assert origins == {"merge"}
    forced = merge(mine, cluster, force=True)
    assert (forced.metrics_overwritten, forced.metrics_inserted) == (1, 0)  # only base differed
    assert ("base", "eval", "acc", 0.55, "[1,0]") in tables(mine)["metrics"]
    assert merge(mine, cluster, force=True).metrics_overwritten == 0
    assert verify(mine).ok
    with LightMLHandle(mine) as h:
        assert [e["value"] for e in h.metric_history("base", "eval", "acc")] == [0.5, 0.55]


def test_merge_refuses_bad_sources_and_leaves_the_target_alone(tmp_path: Path) -> None:
    mine = tmp_path / "mine.db"
    build(mine, "r", {"a": (None, 0.5, None)})
    before = tables(mine)
    with pytest.raises(InvalidInputError, match="itself"):
        merge(mine, mine)
    with pytest.raises(FileNotFoundError):
        merge(mine, tmp_path / "nope.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(NotARegistryError):
        merge(mine, junk)
    # a schema rule in the target that the source breaks: the whole merge is refused
    other = tmp_path / "other.db"
    build(other, "r2", {"b": (None, 0.4, None)})
    with LightMLHandle(mine, "r") as h:
        h.add_schema_rule("eval", "f1")
    rules_before = tables(mine)
    with pytest.raises(ValueError, match="registry schema"):
        merge(mine, other)
    assert tables(mine) == rules_before == before


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


def test_merge_keeps_a_value_whose_stored_scores_are_not_finite(tmp_path: Path) -> None:
    mine, other = tmp_path / "mine.db", tmp_path / "other.db"
    build(mine, "r", {"base": (None, 0.5, None)})
    build(other, "r", {"sft": (None, 0.6, [1, 0]), "dpo": (None, 0.7, [1, 1])})
    with sqlite3.connect(other) as conn:  # as an older tool could have written it
        tamper(conn, "UPDATE detailed_scores SET scores = '[NaN, 1]' WHERE scores = '[1,0]'")
    result = merge(mine, other)
    assert (result.metrics_inserted, result.scores_unusable) == (2, 1)
    with sqlite3.connect(mine) as conn:
        rows = conn.execute("SELECT o.model_name, m.value, d.scores FROM metrics m JOIN model o ON o.id = m.model_id "
                            "LEFT JOIN detailed_scores d ON d.metric_id = m.id ORDER BY o.model_name").fetchall()
    assert rows == [("base", 0.5, None), ("dpo", 0.7, "[1,1]"), ("sft", 0.6, None)]
    assert verify(mine).ok


def test_merging_a_1x_file_with_a_control_character_in_a_name_is_refused_whole(tmp_path: Path) -> None:
    """1.x wrote whatever it was given; a name the API refuses (here a NUL in a family) is
    not brought in behind its back: the merge names the row and writes nothing."""
    source, target = one_model_1x_file(tmp_path / "old.db"), tmp_path / "mine.db"
    with sqlite3.connect(source) as conn:
        conn.executemany("INSERT INTO metrics VALUES (?, 1, NULL, ?, ?, ?)",
                         [(1, "fam\x00x", "acc", 0.5), (2, "fam", "acc", 0.6), (3, "fam", "f1", 0.7)])
    LightMLHandle(target, "r").close()
    with sqlite3.connect(target) as conn:
        events_before = conn.execute("SELECT count(*) FROM events").fetchone()
    with pytest.raises(InvalidInputError, match="metrics row id 1 .*control characters.*nothing was merged"):
        merge(target, source)
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == events_before
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (0,)
    assert verify(target).ok


def test_export_to_a_folder_is_refused_and_leaves_nothing(registry: Path, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    with pytest.raises(InvalidInputError, match="is a folder"):
        export_excel(registry, folder)
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(InvalidInputError, match="is a folder"):
        export_excel(registry, f"{tmp_path / 'not-yet'}/")
    assert not (tmp_path / "not-yet").exists()


def test_sheet_name_cut_to_31_characters_never_ends_with_an_apostrophe() -> None:
    (name,) = sheet_names(["x" * 30 + "'yz"]).values()
    assert name == "x" * 30 and not name.endswith("'")
