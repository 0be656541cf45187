"""list, summary, info, top and metric-get: the exact text, the JSON, ties and direction.

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def test_list(model_tree: Path, cli_out) -> None:
    assert cli_out("list", "--db", model_tree) == """\
model  run  parent  checkpoints  metrics  notes
-----  ---  ------  -----------  -------  -------
base   r1           0            2
dpo    r1   sft     0            2
sft    r1   base    1            2        lr 2e-5
twin   r1   sft     0            2
other  r2           0            1
"""
    runs = json.loads(cli_out("list", "runs", "--db", model_tree, "--json"))
    assert [(r["run"], r["models"]) for r in runs] == [("r1", 4), ("r2", 1)]
    families = json.loads(cli_out("list", "families", "--db", model_tree, "--run", "r1", "--json"))
    assert families == [{"family": "eval", "metrics": 2, "models": 4, "values": 8}]
    assert "\nother" not in cli_out("list", "--db", model_tree, "--run", "r1")


def test_top_with_ties_and_direction(model_tree: Path, cli_out) -> None:
    assert cli_out("top", "--db", model_tree, "--family", "eval", "--metric", "acc") == """\
Top 10 on eval/acc (higher is better):
rank  model  run  value
----  -----  ---  ------
1     dpo    r1   0.7000
2=    sft    r1   0.6000
2=    twin   r1   0.6000
4     base   r1   0.5000
(= : tied on the same value)
"""
    board = json.loads(cli_out("top", "--db", model_tree, "--family", "eval", "--metric", "loss", "--n", "2", "--json"))
    assert board["lower_is_better"] and [r["model"] for r in board["rows"]] == ["twin", "sft"]
    # a tie at the cut is kept whole
    ranks = json.loads(cli_out("top", "--db", model_tree, "--family", "eval", "--metric", "acc", "--n", "2", "--json"))
    assert [(r["rank"], r["model"]) for r in ranks["rows"]] == [(1, "dpo"), (2, "sft"), (2, "twin")]


def test_info_summary_metric_get(model_tree: Path, cli_out, cli, assert_user_error) -> None:
    text = cli_out("info", "--db", model_tree, "--model", "sft")
    assert "  lineage: sft <- base" in text and "    └─ dpo  (run: r1)" in text and "    └─ twin  (run: r1)" in text
    assert "  notes:   lr 2e-5" in text and "    step 100: /ckpt/sft-100 (0 metrics)" in text
    assert "  metrics: 2 (eval: 2)" in text and "model_notes_set" in text
    card = json.loads(cli_out("info", "--db", model_tree, "--model", "dpo", "--json"))
    assert card["parents"] == [{"model": "sft", "run": "r1"}, {"model": "base", "run": "r1"}]
    summary = json.loads(cli_out("summary", "--db", model_tree, "--json"))
    with sqlite3.connect(model_tree) as conn:
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
    assert summary["counts"]["models"] == 5 and summary["counts"]["events"] == events
    assert summary["newest_events"][0]["type"] == "metric_inserted"
    assert "5 models (0 hidden), 2 runs, 1 checkpoints" in cli_out("summary", "--db", model_tree)
    # not a terminal: just the number, for scripts
    assert cli_out("metric-get", "--db", model_tree, "--model", "sft", "--family", "eval", "--metric", "acc") == "0.6\n"
    result = cli("metric-get", "--db", model_tree, "--model", "sft", "--family", "eval", "--metric", "f1")
    assert_user_error(result)
    assert "has no metric eval/f1" in result.stderr


def test_info_prints_each_metric_value_as_14_does(model_tree: Path, cli_out) -> None:
    text = cli_out("info", "--db", model_tree, "--model", "sft")
    lines = text.splitlines()
    at = lines.index("    [eval]")
    assert lines[at + 1].split() == ["acc", "0.6000"] and lines[at + 2].split() == ["loss", "1.8000"]
    card = json.loads(cli_out("info", "--db", model_tree, "--model", "sft", "--json"))
    # (and each value's eval settings and spread over repeats: none recorded here)
    assert card["metrics"] == [{"family": "eval", "metric": "acc", "value": 0.6, "settings": {}, "repeats": None},
                               {"family": "eval", "metric": "loss", "value": 1.8, "settings": {}, "repeats": None}]
