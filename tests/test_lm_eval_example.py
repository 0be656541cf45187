"""examples/lm_eval/run_eval.py end to end, offline: lm-eval's dummy model on the local tasks.

Needs lm-eval (CI installs it; ``pip install -e ".[examples]"`` does too); skipped without it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install -e '.[examples]' to run this test)")
pytest.importorskip("yaml", reason="pyyaml is not installed (pip install -e '.[examples]')")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lm_eval"


def test_run_eval_logs_every_metric_with_per_sample_scores(tmp_path: Path) -> None:
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
    assert "  ✓ logged eng_tiny_mc_0shot tiny_mc/acc = " in result.stdout and "+ 60 per-sample scores" in result.stdout
    db = example / "lightml-example" / "main.db"
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute(
            "SELECT m.metric_name, d.n_samples FROM metrics m JOIN detailed_scores d ON d.metric_id = m.id"))
        docs = conn.execute("SELECT count(*) FROM score_docs").fetchone()[0]
    assert rows == {"tiny_mc/acc": 60, "tiny_mc/acc_norm": 60, "tiny_math/exact_match,strict-match": 30,
                    "tiny_math/exact_match,flexible-extract": 30}
    assert docs == 4
    again = subprocess.run([sys.executable, str(example / "run_eval.py")], capture_output=True, text=True,
                           env=env, timeout=600, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("  ✓ skipped (exists)") == 8
