"""notes, rename, hide/unhide, reparent, model-delete, restore and prune: their output, the
history and verify after them, LightML 1.4's spellings, and prune's grace period.

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightml.handle import LightMLHandle


def test_edits_from_the_cli_show_in_history_and_verify(model_tree: Path, cli, assert_user_error, cli_out) -> None:
    assert cli_out("notes", "--db", model_tree, "--model", "dpo", "--set", "beta 0.1") == "Notes of 'dpo' set.\n"
    assert cli_out("notes", "--db", model_tree, "--model", "dpo") == "beta 0.1\n"
    assert cli_out("rename", "--db", model_tree, "--model", "twin", "--to",
                   "dpo-b") .startswith("Renamed 'twin' to 'dpo-b'")
    assert cli_out("hide", "--db", model_tree, "--model", "base") == "Model 'base' hidden.\n"
    listed = [m["model"] for m in json.loads(cli_out("list", "--db", model_tree, "--json"))]
    everything = json.loads(cli_out("list", "--db", model_tree, "--all", "--json"))
    assert "base" not in listed and {"model": "base", "hidden": True} == {
        k: v for m in everything if m["model"] == "base" for k, v in m.items() if k in ("model", "hidden")}
    assert json.loads(cli_out("unhide", "--db", model_tree, "--model", "base", "--json")) == {
        "changed": True, "model": "base", "hidden": False}
    assert cli_out("reparent", "--db", model_tree, "--model", "dpo", "--parent",
                   "base") == "Parent of 'dpo' is now 'base'.\n"
    result = cli("reparent", "--db", model_tree, "--model", "base", "--parent", "dpo")
    assert_user_error(result)
    assert "cycle" in result.stderr
    assert cli_out("reparent", "--db", model_tree, "--model", "dpo", "--none") == "'dpo' has no parent now.\n"
    # not a terminal: delete without a question
    assert cli_out("model-delete", "--db", model_tree, "--model", "dpo-b").startswith("Deleted model 'dpo-b'")
    assert cli_out("restore", "--db", model_tree, "--model", "dpo-b").startswith("Restored model 'dpo-b'")
    history = json.loads(cli_out("history", "--db", model_tree, "--model", "dpo", "--json"))
    assert [e["type"] for e in history][-3:] == ["model_notes_set", "model_reparented", "model_reparented"]
    assert all(e["actor"].endswith("(cli)") for e in history[-3:])
    text = cli_out("history", "--db", model_tree, "--model", "dpo-b")
    assert "model_renamed" in text and "twin -> dpo-b" in text and "model_deleted" in text
    assert cli_out("verify", "--db", model_tree).startswith("OK")


def test_prune_from_the_cli(model_tree: Path, cli_out) -> None:
    with LightMLHandle(model_tree, "scratch") as h:
        h.register_model("empty", "org/empty")
    assert cli_out("prune", "--db", model_tree, "--dry-run", "--grace", "0") == (
        "  Would remove model 'empty' (run 'scratch'): no metrics, checkpoints or children\n"
        "  Would remove empty run 'scratch'\n")
    assert json.loads(cli_out("prune", "--db", model_tree, "--json", "--grace", "0")) == {
        "models": [{"model": "empty", "run": "scratch"}], "runs": ["scratch"], "dry_run": False,
        "kept_too_new": [], "grace_seconds": 0.0}
    assert cli_out("prune", "--db", model_tree, "--grace", "0") == "Nothing to prune.\n"
    cli_out("restore", "--db", model_tree, "--model", "empty")
    assert [r["run"] for r in json.loads(cli_out("list", "runs", "--db", model_tree, "--json"))] == ["r1", "r2",
                                                                                                     "scratch"]


# -- LightML 1.4's spellings -----------------------------------------------------------------


def test_model_delete_name_and_rename_old_new(sft_in_two_runs: Path, cli, model_rows) -> None:
    assert cli("rename", "--db", sft_in_two_runs, "--old", "dpo", "--new", "dpo-v2").returncode == 0
    assert cli("model-delete", "--db", sft_in_two_runs, "--name", "dpo-v2", "--yes").returncode == 0
    assert ("r1", "dpo-v2", None, 0) not in model_rows(sft_in_two_runs) and ("r1", "dpo", None,
                                                                             0) not in model_rows(sft_in_two_runs)


def test_edits_take_run_model_and_model_at_run_spellings(sft_in_two_runs: Path, cli, assert_user_error,
                                                         model_rows) -> None:
    ambiguous = cli("notes", "--db", sft_in_two_runs, "--model", "sft", "--set", "x")
    assert_user_error(ambiguous, "'r1/sft'")  # the error gives the spelling to use
    assert cli("notes", "--db", sft_in_two_runs, "--model", "r2/sft", "--set", "re-run").returncode == 0
    assert cli("hide", "--db", sft_in_two_runs, "--model", "sft@r1").returncode == 0
    assert json.loads(cli("notes", "--db", sft_in_two_runs, "--model", "sft@r2", "--json").stdout)["notes"] == "re-run"
    out = cli("rename", "--db", sft_in_two_runs, "--model", "r2/sft", "--to", "sft-r2")
    assert out.returncode == 0 and "--run r2 --model sft-r2 --to sft" in out.stdout  # the undo names the run
    assert model_rows(sft_in_two_runs) == [("r1", "base", None, 0), ("r1", "dpo", None, 0), ("r1", "sft", None, 1),
                                           ("r2", "sft-r2", "re-run", 0)]


# -- prune's grace period --------------------------------------------------------------------


def test_prune_keeps_new_models_and_says_how_many(sft_in_two_runs: Path, log_rows, cli) -> None:
    with LightMLHandle(sft_in_two_runs, "eval-now") as h:
        h.register_model("running", "org/running")  # an eval registered it; metrics come later
    before = log_rows(sft_in_two_runs)
    out = cli("prune", "--db", sft_in_two_runs)
    assert out.returncode == 0 and out.stdout == (
        "Nothing to prune.\n"
        "  Kept 1 model registered less than 24 h ago ('running'): an eval may still be logging it "
        "(--grace 0 prunes them too)\n")
    assert log_rows(sft_in_two_runs) == before
    dry = json.loads(cli("prune", "--db", sft_in_two_runs, "--dry-run", "--grace", "0", "--json").stdout)
    assert dry == {"models": [{"model": "running", "run": "eval-now"}], "runs": ["eval-now"], "dry_run": True,
                   "kept_too_new": [], "grace_seconds": 0.0}
    out = cli("prune", "--db", sft_in_two_runs, "--grace", "0")
    assert "Removed model 'running' (run 'eval-now')" in out.stdout and "Removed empty run 'eval-now'" in out.stdout


@pytest.mark.parametrize("grace, message", [("-5", "0 seconds or more"), ("inf", "must be finite"),
                                            ("nan", "must be finite"), ("1e999", "must be finite")])
def test_prune_refuses_a_bad_grace_period(sft_in_two_runs: Path, grace: str, message: str, log_rows, assert_user_error,
                                          cli) -> None:
    with LightMLHandle(sft_in_two_runs, "scratch") as h:
        h.register_model("empty", "org/empty")
    before = log_rows(sft_in_two_runs)
    assert_user_error(cli("prune", "--db", sft_in_two_runs, "--grace", grace, "--dry-run"), message)
    assert_user_error(cli("prune", "--db", sft_in_two_runs, f"--grace={grace}"), message)
    assert log_rows(sft_in_two_runs) == before
