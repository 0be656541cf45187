"""Prompts and pickers: only a terminal shows them, so each of these runs ``python -m lightml``
as a process on a pseudo-terminal (``on_terminal``) and answers it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lightml.handle import LightMLHandle


def test_stats_asks_for_missing_arguments_on_a_terminal(lineage: Path, on_terminal) -> None:
    # models with scores, by name order: base, dpo, sft ("base" is in two runs: --run r1 picks r1's)
    text = on_terminal(["stats", "--db", lineage, "--run", "r1"], ["1", "sft", "1", "1"])
    assert "Choose model A (with scores):" in text and "    1. base" in text
    assert "Choose metric:" in text and "    1. acc" in text and "    2. f1" in text
    assert "Statistical comparison: base vs sft" in text and "Family: eval  Metric: acc" in text
    # on a terminal the verdict is coloured (it is significant for f1)
    coloured = on_terminal(["stats", "--db", lineage, "--run", "r1", "--model-a", "base", "--model-b", "sft",
                            "--family", "eval", "--metric", "f1"], [])
    assert "\033[32mSignificant" in coloured
    plain = on_terminal(["stats", "--db", lineage, "--run", "r1", "--model-a", "base", "--model-b", "sft",
                         "--family", "eval", "--metric", "f1"], [], env={"NO_COLOR": "1"})
    assert "Significant (p < 0.05)" in plain and "\033[" not in plain


def test_compare_asks_for_models_on_a_terminal(lineage: Path, on_terminal) -> None:
    text = on_terminal(["compare", "--db", lineage, "--run", "r1", "--no-color"], ["base", "2"])
    assert "Choose model B:" in text and "Compare: base  vs  sft" in text and "\033[" not in text


def test_rename_without_a_new_name_asks_on_a_terminal_else_says_which_flag(sft_in_two_runs: Path, log_rows,
                                                                           assert_user_error, on_terminal, cli,
                                                                           model_rows) -> None:
    before = log_rows(sft_in_two_runs)
    assert_user_error(cli("rename", "--db", sft_in_two_runs, "--model", "base"), "--to (or --new) is required")
    assert log_rows(sft_in_two_runs) == before
    shown = on_terminal(["rename", "--db", sft_in_two_runs, "--model", "base"], ["base-model"],
                        env={"PYTHONWARNINGS": "ignore"}, prompt_end=b":")
    assert "New name for 'base'" in shown and "Renamed 'base' to 'base-model'" in shown
    assert ("r1", "base-model", None, 0) in model_rows(sft_in_two_runs)


def test_pickers_take_ranges_and_ask_again_after_a_bad_one(sft_in_two_runs: Path, on_terminal) -> None:
    # diff's choices: 1. base, 2. dpo, 3. r1/sft, 4. r2/sft
    shown = on_terminal(["diff", "--db", sft_in_two_runs, "--no-color"], ["3-1", "2-9", "x-2", "1-1,2"],
                        env={"PYTHONWARNINGS": "ignore"})
    assert "ranges like 1-3" in shown  # the prompt says ranges are taken
    assert "'3-1' is not a range of the choices" in shown and "'2-9' is not a range of the choices" in shown
    assert "'x-2' is not one of the 4 choices" in shown
    table = shown.rsplit("1-1,2", 1)[1]
    assert "base" in table and "dpo" in table and "error" not in table


def test_interactive_choices_on_a_terminal(model_tree: Path, on_terminal) -> None:
    # models by name: base, dpo, other, sft, twin
    text = on_terminal(["info", "--db", model_tree], ["sft"])
    assert "Choose model:" in text and "    4. sft" in text and "lineage: sft <- base" in text
    text = on_terminal(["top", "--db", model_tree], ["1", "acc"])
    assert "Choose family:" in text and "Top 10 on eval/acc" in text
    text = on_terminal(["metric-get", "--db", model_tree, "--model", "sft"], ["eval", "2"])
    assert "sft  eval/loss = 1.8" in text
    text = on_terminal(["diff", "--db", model_tree, "--no-color"], ["1 4, 5"])
    assert "lightml diff — 3 models" in text and "twin" in text


def test_model_delete_asks_on_a_terminal(model_tree: Path, on_terminal) -> None:
    refused = on_terminal(["model-delete", "--db", model_tree, "--model", "twin"], ["n"])
    assert "[y/N]" in refused and "Nothing deleted." in refused
    with sqlite3.connect(model_tree) as conn:
        assert conn.execute("SELECT count(*) FROM model WHERE model_name = 'twin'").fetchone() == (1,)
    confirmed = on_terminal(["model-delete", "--db", model_tree, "--model", "twin"], ["y"])
    assert "Deleted model 'twin'" in confirmed
    assert "Deleted model 'dpo'" in on_terminal(["model-delete", "--db", model_tree, "--model", "dpo", "--yes"], [])


def test_metric_get_raw_prints_only_the_number_on_a_terminal(model_tree: Path, on_terminal) -> None:
    text = on_terminal(["metric-get", "--db", model_tree, "--model", "sft", "--family", "eval",
                        "--metric", "loss", "--raw"], [])
    assert text.strip() == "1.8"


def test_include_hidden_lets_the_pickers_offer_hidden_models(model_tree: Path, on_terminal) -> None:
    with LightMLHandle(model_tree, "r1") as h:
        h.set_hidden("dpo", True)
    # visible models by name: base, other, sft, twin; with hidden ones: base, dpo, other, sft, twin
    hidden_out = on_terminal(["info", "--db", model_tree], ["1"])
    assert "dpo" not in hidden_out.split("Choose model:")[1].split("]:")[0]
    text = on_terminal(["info", "--db", model_tree, "--include-hidden"], ["2"])
    assert "    2. dpo" in text and "Model dpo  [hidden]" in text
    text = on_terminal(["compare", "--db", model_tree, "--include-hidden", "--no-color"], ["dpo", "1"])
    assert "Compare: dpo  vs  base" in text
