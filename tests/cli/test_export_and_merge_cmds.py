"""export (to a file, and to report/ in the working folder) and merge from the command line.

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl

from lightml.handle import LightMLHandle


def test_export_and_merge_commands(model_tree: Path, tmp_path: Path, cli_out, cli, assert_user_error) -> None:
    text = cli_out("export", "--db", model_tree, "--output", tmp_path / "x" / "r.xlsx")
    assert text == f"Report written to {tmp_path / 'x' / 'r.xlsx'}\n"
    assert openpyxl.load_workbook(tmp_path / "x" / "r.xlsx").sheetnames == ["Overview", "eval", "knowledge", "History"]
    result = cli("export", "--db", model_tree, cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / "report" / "reg_report.xlsx").exists()

    other = tmp_path / "other.db"
    with LightMLHandle(other, "r1") as h:
        h.register_model("base", "org/base")
        h.register_model("new", "org/new", parent_name="base")
        h.log_model_metric("new", "eval", "acc", 0.9)
    text = cli_out("merge", "--db", model_tree, "--from", other)
    assert text.startswith(f"Merged {other} into {model_tree}:") and "models registered       1" in text
    again = json.loads(cli_out("merge", "--db", model_tree, "--from", other, "--json"))
    assert again["models_registered"] == 0 and again["metrics_inserted"] == 0
    assert_user_error(cli("merge", "--db", model_tree, "--from", tmp_path / "missing.db"))
