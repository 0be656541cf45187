"""projections.imported_file: what ``scan`` imported, one row per file,
(path, sha256, size, mtime_ns, model_id, seq of the file_imported event)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from lightml import LightMLHandle
from lightml.ingest.scan import scan_and_import
from lightml.log import events as ev

DATA = Path(__file__).resolve().parents[1] / "data" / "lm_eval_0413"


def _evals(tmp_path: Path, *models: str) -> Path:
    root = tmp_path / "evals"
    for model in models:
        shutil.copytree(DATA / model, root / model)
    return root


def _expected_row(path: Path, model_id: int, seq: int) -> tuple:
    stat = path.stat()
    return (str(path), hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_size, stat.st_mtime_ns, model_id, seq)


def test_file_imported_records_each_file_read_with_its_hash_size_time_and_event(bench, tmp_path):
    root, db = _evals(tmp_path, "dummy-a"), tmp_path / "scan.db"
    scan_and_import(db, "r", root)
    changes = bench.log_of(db)
    seq_of = {c.payload["path"]: c.seq for c in bench.of_type(changes, ev.FILE_IMPORTED)}
    files = sorted((root / "dummy-a").iterdir())
    assert sorted(seq_of) == [str(f) for f in files]
    assert bench.rows(bench.live(changes), "imported_file") == [_expected_row(f, 1, seq_of[str(f)]) for f in files]


def test_a_later_import_of_the_same_path_replaces_its_row(bench, tmp_path):
    root, db = _evals(tmp_path, "dummy-a"), tmp_path / "scan.db"
    scan_and_import(db, "r", root)
    scan_and_import(db, "r", root)  # unchanged files: skipped, nothing recorded
    first = bench.log_of(db)
    scan_and_import(db, "r", root, force=True)  # read again: recorded again
    changes = bench.log_of(db)
    again = {c.payload["path"]: c.seq for c in changes[len(first):] if c.type == ev.FILE_IMPORTED}
    files = sorted((root / "dummy-a").iterdir())
    assert sorted(again) == [str(f) for f in files]
    assert [c.type for c in first].count(ev.FILE_IMPORTED) == 3
    assert bench.rows(bench.live(changes), "imported_file") == [_expected_row(f, 1, again[str(f)]) for f in files]


def test_model_deleted_removes_that_models_files_only(bench, tmp_path):
    root, db = _evals(tmp_path, "dummy-a", "dummy-d"), tmp_path / "scan.db"
    scan_and_import(db, "r", root)
    with LightMLHandle(db, "r") as handle:
        handle.delete_model("dummy-a")
    before, after, _ = bench.step(bench.log_of(db), ev.MODEL_DELETED, "imported_file")
    assert sorted({row[4] for row in before}) == [1, 2]
    assert after == [row for row in before if row[4] == 2]
    assert [Path(row[0]).parent.name for row in after] == ["dummy-d", "dummy-d"]
