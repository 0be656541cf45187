"""Samples files read by worker processes give the registry one process gives: the same
events in the same order (so the same tables); a worker that dies loses no folder."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from lightml.errors import InvalidInputError
from lightml.ingest import scan_folder
from lightml.ingest.scan import scan_and_import
from lightml.ingest.scan_workers import WorkerGone, WorkerPool


@pytest.fixture
def tree(lm_eval_results: Path, tmp_path: Path) -> Path:
    """Eight model folders: the four of tests/data, and a copy of each under another name."""
    root = tmp_path / "tree"
    shutil.copytree(lm_eval_results, root)
    for folder in sorted(root.iterdir()):
        shutil.copytree(folder, root / f"{folder.name}-again")
    return root


def log_of(db: Path) -> list[tuple[str, dict]]:
    """The events as written, but for what differs between two runs of the same import: when."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT type, payload FROM events ORDER BY seq").fetchall()
    events = []
    for event_type, payload in rows:
        data = json.loads(payload)
        if event_type == "run_created":
            data.pop("created_at")
        events.append((event_type, data))
    return events


def test_two_workers_write_what_one_process_writes(tree: Path, tmp_path: Path) -> None:
    one = scan_and_import(tmp_path / "one.db", "evals", tree, workers=1)
    two = scan_and_import(tmp_path / "two.db", "evals", tree, workers=2)
    assert one.metrics_logged > 0 and one.scores_imported > 0
    assert two.to_dict() == one.to_dict()
    assert log_of(tmp_path / "two.db") == log_of(tmp_path / "one.db")
    # and a second scan of the unchanged tree reads nothing, with or without workers
    assert scan_and_import(tmp_path / "two.db", "evals", tree, workers=2).files_read == 0


def test_a_worker_that_dies_is_noticed_and_the_folder_read_here(tree: Path, tmp_path: Path) -> None:
    folder = sorted(tree.iterdir())[0]
    parsed = scan_folder.parse_lm_eval(folder, folder.name, "{task}", "folder")
    files = [(p, p.stat()) for p in scan_folder.candidate_files(folder, "lm_eval")]
    with WorkerPool(1) as pool:
        first = pool.submit(folder, "lm_eval", parsed, files)
        answer = pool.answer(first)
        assert isinstance(answer, scan_folder.FolderRead) and answer.items
        expected = scan_folder.read_folder(folder, "lm_eval", parsed, files)
        assert answer.records == expected.records and len(answer.items) == len(expected.items)
        pool._workers[0].kill()
        pool._workers[0].wait()
        second = pool.submit(folder, "lm_eval", parsed, files)
        with pytest.raises(WorkerGone):
            pool.answer(second)


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2"])
def test_workers_must_be_a_positive_integer(tree: Path, tmp_path: Path, workers) -> None:
    with pytest.raises(InvalidInputError, match="workers must be a positive integer"):
        scan_and_import(tmp_path / "r.db", "evals", tree, workers=workers)
    assert not (tmp_path / "r.db").exists()


def write_big_folder(folder: Path, docs: int = 6_000) -> None:
    """A model folder whose answer from a worker is far larger than a pipe's buffer (64 KiB)."""
    folder.mkdir(parents=True)
    stamp = "2026-11-01T12-00-00.000000"
    results = {"results": {}, "n-shot": {}, "n-samples": {}, "config": {"model": "hf"}, "lm_eval_version": "0.4.13"}
    for t in range(2):
        task = f"task_{t}"
        scores = [float((d * 7 + t) % 3 == 0) for d in range(docs)]
        results["results"][task] = {"alias": task, "acc,none": sum(scores) / docs, "acc_stderr,none": 0.01}
        results["n-shot"][task] = 0
        results["n-samples"][task] = {"original": docs, "effective": docs}
        with (folder / f"samples_{task}_{stamp}.jsonl").open("w") as out:
            for d, score in enumerate(scores):
                out.write(json.dumps({"doc_id": d, "doc": {"q": f"question {d}"}, "target": "a", "arguments": {},
                                      "resps": [], "filtered_resps": [], "filter": "none", "metrics": ["acc"],
                                      "doc_hash": "h", "prompt_hash": "p", "target_hash": "t", "acc": score}) + "\n")
    (folder / f"results_{stamp}.json").write_text(json.dumps(results))


def test_answers_larger_than_a_pipe_do_not_stall_the_scan(tmp_path: Path) -> None:
    import threading

    tree = tmp_path / "big"
    for m in range(6):
        write_big_folder(tree / f"model-{m}")
    done: dict[str, object] = {}
    scanning = threading.Thread(target=lambda: done.setdefault("stats", scan_and_import(
        tmp_path / "r.db", "evals", tree, workers=2)), daemon=True)
    scanning.start()
    scanning.join(timeout=120)
    assert not scanning.is_alive(), "the scan stalled: a worker and the scanning process wait on each other"
    assert done["stats"].scores_imported == 12 and done["stats"].skips == []
    assert log_of(tmp_path / "r.db") == log_of_one_process(tree, tmp_path)


def log_of_one_process(tree: Path, tmp_path: Path) -> list[tuple[str, dict]]:
    scan_and_import(tmp_path / "alone.db", "evals", tree, workers=1)
    return log_of(tmp_path / "alone.db")
