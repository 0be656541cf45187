"""examples/lm_eval/run_eval.py end to end, offline: lm-eval's dummy model on the local tasks.

Needs lm-eval (CI installs it; ``pip install -e ".[examples]"`` does too); skipped without it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install -e '.[examples]' to run this test)")
pytest.importorskip("yaml", reason="pyyaml is not installed (pip install -e '.[examples]')")

from lightml.ingest.scan import scan_and_import

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lm_eval"
DATA = Path(__file__).resolve().parent / "data"


def scanned_names(tmp_path: Path) -> dict[str, set[str]]:
    """family -> metric names that ``lightml scan`` gives the same tasks (real lm-eval 0.4.13 output)."""
    db = tmp_path / "scanned.db"
    scan_and_import(db, "r", DATA / "lm_eval_0413")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT x.family, x.metric_name FROM metrics x JOIN model m ON m.id = x.model_id "
                            "WHERE m.model_name = 'dummy-a' AND x.family IN ('tiny_mc', 'tiny_math')").fetchall()
    names: dict[str, set[str]] = {}
    for family, metric in rows:
        names.setdefault(family, set()).add(metric)
    return names


def test_run_eval_logs_every_metric_with_per_sample_scores(tmp_path: Path, cli) -> None:
    example = Path(shutil.copytree(EXAMPLE, tmp_path / "lm_eval", ignore=shutil.ignore_patterns("lightml-example")))
    config = (example / "config.yaml").read_text().replace("shots: [0, 5]", "shots: [0]")
    (example / "config.yaml").write_text(config)
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}
    result = subprocess.run([sys.executable, str(example / "run_eval.py")], capture_output=True, text=True,
                            env=env, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    logged = [line for line in result.stdout.splitlines() if line.startswith("  ✓ logged")]
    assert len(logged) == 8  # tiny_mc: acc, acc_norm and stderrs; tiny_math: two filters and stderrs
    assert "  ✓ logged tiny_mc acc = " in result.stdout and "+ 60 per-sample scores" in result.stdout
    db = example / "lightml-example" / "main.db"
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute(
            "SELECT m.metric_name, d.n_samples FROM metrics m JOIN detailed_scores d ON d.metric_id = m.id"))
        docs = conn.execute("SELECT count(*) FROM score_docs").fetchone()[0]
        names: dict[str, set[str]] = {}
        for family, metric in conn.execute("SELECT family, metric_name FROM metrics"):
            names.setdefault(family, set()).add(metric)
    assert rows == {"acc": 60, "acc_norm": 60, "exact_match,strict-match": 30, "exact_match,flexible-extract": 30}
    assert docs == 4
    # the names scan gives the same tasks: a scanned model and this one can be compared
    assert names == scanned_names(tmp_path)

    # run again: nothing is evaluated (the metrics are there), nothing logged
    again = subprocess.run([sys.executable, str(example / "run_eval.py")], capture_output=True, text=True,
                           env=env, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("already in the registry: not evaluated again") == 2
    assert "✓" not in again.stdout

    # the closing hint: every command it prints works on the registry just made (run in this process)
    for output in (result.stdout, again.stdout):
        hints = output.split("Done. Look at it:", 1)[1].strip().splitlines()
        assert len(hints) == 4
        for hint in hints:
            words = shlex.split(hint)
            assert words[0] == "lightml"
            ran = cli(*words[1:], cwd=tmp_path)
            assert ran.returncode == 0, (hint, ran.stdout, ran.stderr)


def test_quickstart_logs_the_mean_of_its_scores(tmp_path: Path) -> None:
    """The first example a user runs: its value and its per-sample scores say the same thing."""
    quickstart = EXAMPLE.parent / "quickstart.py"
    result = subprocess.run([sys.executable, str(quickstart)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    with sqlite3.connect(tmp_path / "quickstart.db") as conn:
        value, scores = conn.execute(
            "SELECT m.value, d.scores FROM metrics m JOIN detailed_scores d ON d.metric_id = m.id").fetchone()
    scores = [float(s) for s in scores.strip("[]").split(",")]
    assert value == sum(scores) / len(scores)
