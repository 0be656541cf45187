"""The everyday CLI as subprocesses: list, summary, info, top, metric-get, the edits, export,
merge; database resolution; interactive choices on a pseudo-terminal."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from lightml.handle import LightMLHandle
from test_analysis_cli import _run_on_terminal
from test_cli import assert_user_error, lightml


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name="sft")
        h.register_model("twin", "org/twin", parent_name="sft")
        h.log_metrics("base", {"eval": {"acc": 0.5, "loss": 2.0}})
        h.log_metrics("sft", {"eval": {"acc": 0.6, "loss": 1.8}})
        h.log_metrics("dpo", {"eval": {"acc": 0.7, "loss": 1.9}})
        h.log_metrics("twin", {"eval": {"acc": 0.6, "loss": 1.7}})
        h.register_checkpoint("sft", 100, "/ckpt/sft-100")
        h.set_notes("sft", "lr 2e-5")
    with LightMLHandle(db, "r2") as h:
        h.register_model("other", "org/other")
        h.log_metrics("other", {"knowledge": {"mmlu": 0.3}})
    return db


def out(*args) -> str:
    result = lightml(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_list(registry: Path) -> None:
    assert out("list", "--db", registry) == """\
model  run  parent  checkpoints  metrics  notes
-----  ---  ------  -----------  -------  -------
base   r1           0            2
dpo    r1   sft     0            2
sft    r1   base    1            2        lr 2e-5
twin   r1   sft     0            2
other  r2           0            1
"""
    runs = json.loads(out("list", "runs", "--db", registry, "--json"))
    assert [(r["run"], r["models"]) for r in runs] == [("r1", 4), ("r2", 1)]
    families = json.loads(out("list", "families", "--db", registry, "--run", "r1", "--json"))
    assert families == [{"family": "eval", "metrics": 2, "models": 4, "values": 8}]
    assert "\nother" not in out("list", "--db", registry, "--run", "r1")


def test_top_with_ties_and_direction(registry: Path) -> None:
    assert out("top", "--db", registry, "--family", "eval", "--metric", "acc") == """\
Top 10 on eval/acc (higher is better):
rank  model  run  value
----  -----  ---  ------
1     dpo    r1   0.7000
2=    sft    r1   0.6000
2=    twin   r1   0.6000
4     base   r1   0.5000
(= : tied on the same value)
"""
    board = json.loads(out("top", "--db", registry, "--family", "eval", "--metric", "loss", "--n", "2", "--json"))
    assert board["lower_is_better"] and [r["model"] for r in board["rows"]] == ["twin", "sft"]
    # a tie at the cut is kept whole
    ranks = json.loads(out("top", "--db", registry, "--family", "eval", "--metric", "acc", "--n", "2", "--json"))
    assert [(r["rank"], r["model"]) for r in ranks["rows"]] == [(1, "dpo"), (2, "sft"), (2, "twin")]


def test_info_summary_metric_get(registry: Path) -> None:
    text = out("info", "--db", registry, "--model", "sft")
    assert "  lineage: sft <- base" in text and "    └─ dpo  (run: r1)" in text and "    └─ twin  (run: r1)" in text
    assert "  notes:   lr 2e-5" in text and "    step 100: /ckpt/sft-100 (0 metrics)" in text
    assert "  metrics: 2 (eval: 2)" in text and "model_notes_set" in text
    card = json.loads(out("info", "--db", registry, "--model", "dpo", "--json"))
    assert card["parents"] == [{"model": "sft", "run": "r1"}, {"model": "base", "run": "r1"}]
    summary = json.loads(out("summary", "--db", registry, "--json"))
    with sqlite3.connect(registry) as conn:
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
    assert summary["counts"]["models"] == 5 and summary["counts"]["events"] == events
    assert summary["newest_events"][0]["type"] == "metric_inserted"
    assert "5 models (0 hidden), 2 runs, 1 checkpoints" in out("summary", "--db", registry)
    # not a terminal: just the number, for scripts
    assert out("metric-get", "--db", registry, "--model", "sft", "--family", "eval", "--metric", "acc") == "0.6\n"
    result = lightml("metric-get", "--db", registry, "--model", "sft", "--family", "eval", "--metric", "f1")
    assert_user_error(result)
    assert "has no metric eval/f1" in result.stderr


def test_edits_from_the_cli_show_in_history_and_verify(registry: Path) -> None:
    assert out("notes", "--db", registry, "--model", "dpo", "--set", "beta 0.1") == "Notes of 'dpo' set.\n"
    assert out("notes", "--db", registry, "--model", "dpo") == "beta 0.1\n"
    assert out("rename", "--db", registry, "--model", "twin", "--to", "dpo-b") .startswith("Renamed 'twin' to 'dpo-b'")
    assert out("hide", "--db", registry, "--model", "base") == "Model 'base' hidden.\n"
    listed = [m["model"] for m in json.loads(out("list", "--db", registry, "--json"))]
    everything = json.loads(out("list", "--db", registry, "--all", "--json"))
    assert "base" not in listed and {"model": "base", "hidden": True} == {
        k: v for m in everything if m["model"] == "base" for k, v in m.items() if k in ("model", "hidden")}
    assert json.loads(out("unhide", "--db", registry, "--model", "base", "--json")) == {
        "changed": True, "model": "base", "hidden": False}
    assert out("reparent", "--db", registry, "--model", "dpo", "--parent", "base") == "Parent of 'dpo' is now 'base'.\n"
    result = lightml("reparent", "--db", registry, "--model", "base", "--parent", "dpo")
    assert_user_error(result)
    assert "cycle" in result.stderr
    assert out("reparent", "--db", registry, "--model", "dpo", "--none") == "'dpo' has no parent now.\n"
    # not a terminal: delete without a question
    assert out("model-delete", "--db", registry, "--model", "dpo-b").startswith("Deleted model 'dpo-b'")
    assert out("restore", "--db", registry, "--model", "dpo-b").startswith("Restored model 'dpo-b'")
    history = json.loads(out("history", "--db", registry, "--model", "dpo", "--json"))
    assert [e["type"] for e in history][-3:] == ["model_notes_set", "model_reparented", "model_reparented"]
    assert all(e["actor"].endswith("(cli)") for e in history[-3:])
    text = out("history", "--db", registry, "--model", "dpo-b")
    assert "model_renamed" in text and "twin -> dpo-b" in text and "model_deleted" in text
    assert out("verify", "--db", registry).startswith("OK")


def test_prune_from_the_cli(registry: Path) -> None:
    with LightMLHandle(registry, "scratch") as h:
        h.register_model("empty", "org/empty")
    assert out("prune", "--db", registry, "--dry-run", "--grace", "0") == (
        "  Would remove model 'empty' (run 'scratch'): no metrics, checkpoints or children\n"
        "  Would remove empty run 'scratch'\n")
    assert json.loads(out("prune", "--db", registry, "--json", "--grace", "0")) == {
        "models": [{"model": "empty", "run": "scratch"}], "runs": ["scratch"], "dry_run": False,
        "kept_too_new": [], "grace_seconds": 0.0}
    assert out("prune", "--db", registry, "--grace", "0") == "Nothing to prune.\n"
    out("restore", "--db", registry, "--model", "empty")
    assert [r["run"] for r in json.loads(out("list", "runs", "--db", registry, "--json"))] == ["r1", "r2", "scratch"]


def test_export_and_merge_commands(registry: Path, tmp_path: Path) -> None:
    text = out("export", "--db", registry, "--output", tmp_path / "x" / "r.xlsx")
    assert text == f"Report written to {tmp_path / 'x' / 'r.xlsx'}\n"
    assert openpyxl.load_workbook(tmp_path / "x" / "r.xlsx").sheetnames == ["Overview", "eval", "knowledge", "History"]
    result = subprocess.run([sys.executable, "-m", "lightml", "export", "--db", str(registry)], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0 and (tmp_path / "report" / "reg_report.xlsx").exists()

    other = tmp_path / "other.db"
    with LightMLHandle(other, "r1") as h:
        h.register_model("base", "org/base")
        h.register_model("new", "org/new", parent_name="base")
        h.log_model_metric("new", "eval", "acc", 0.9)
    text = out("merge", "--db", registry, "--from", other)
    assert text.startswith(f"Merged {other} into {registry}:") and "models registered       1" in text
    again = json.loads(out("merge", "--db", registry, "--from", other, "--json"))
    assert again["models_registered"] == 0 and again["metrics_inserted"] == 0
    assert_user_error(lightml("merge", "--db", registry, "--from", tmp_path / "missing.db"))


def test_database_resolution_order(registry: Path, tmp_path: Path) -> None:
    env_db = tmp_path / "env"
    env_db.mkdir()
    with LightMLHandle(env_db / "env.db", "e") as h:
        h.register_model("from-env", "org/e")
    work = tmp_path / "work"
    work.mkdir()

    def models(cwd: Path, env: dict[str, str] | None = None, *args: str) -> list[str] | str:
        result = subprocess.run([sys.executable, "-m", "lightml", "list", "--json", *args], cwd=cwd,
                                capture_output=True, text=True,
                                env={k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None})
        if result.returncode:
            return result.stderr.strip()
        return [m["model"] for m in json.loads(result.stdout)]

    no_env = {"LIGHTML_DB": None}
    message = models(work, no_env)
    assert "no registry given and none found here" in message and "LIGHTML_DB" in message
    (work / "one.db").write_bytes(registry.read_bytes())  # the only *.db here
    assert models(work, no_env) == ["base", "dpo", "sft", "twin", "other"]
    (work / "two.db").write_bytes(b"")
    assert "several registries here (one.db, two.db)" in models(work, no_env)
    (work / ".lightml").write_text(f"# my registry\ndb={registry}\n")
    assert models(work, no_env)[0] == "base"
    assert models(work, {"LIGHTML_DB": str(env_db / "env.db")}) == ["from-env"]  # env beats .lightml
    assert models(work, {"LIGHTML_DB": str(env_db / "env.db")}, "--db", str(registry))[0] == "base"  # --db wins
    (work / ".lightml").write_text("nothing useful\n")
    assert "has no 'db=...' line" in models(work, no_env)


def test_interactive_choices_on_a_terminal(registry: Path) -> None:
    # models by name: base, dpo, other, sft, twin
    text = _run_on_terminal(["info", "--db", registry], ["sft"])
    assert "Choose model:" in text and "    4. sft" in text and "lineage: sft <- base" in text
    text = _run_on_terminal(["top", "--db", registry], ["1", "acc"])
    assert "Choose family:" in text and "Top 10 on eval/acc" in text
    text = _run_on_terminal(["metric-get", "--db", registry, "--model", "sft"], ["eval", "2"])
    assert "sft  eval/loss = 1.8" in text
    text = _run_on_terminal(["diff", "--db", registry, "--no-color"], ["1 4, 5"])
    assert "lightml diff — 3 models" in text and "twin" in text


def test_model_delete_asks_on_a_terminal(registry: Path) -> None:
    refused = _run_on_terminal(["model-delete", "--db", registry, "--model", "twin"], ["n"])
    assert "[y/N]" in refused and "Nothing deleted." in refused
    with sqlite3.connect(registry) as conn:
        assert conn.execute("SELECT count(*) FROM model WHERE model_name = 'twin'").fetchone() == (1,)
    confirmed = _run_on_terminal(["model-delete", "--db", registry, "--model", "twin"], ["y"])
    assert "Deleted model 'twin'" in confirmed
    assert "Deleted model 'dpo'" in _run_on_terminal(["model-delete", "--db", registry, "--model", "dpo", "--yes"], [])


@pytest.mark.parametrize("args, message", [
    (["info", "--model", "ghost"], "model 'ghost' not found"),
    (["top", "--family", "eval", "--metric", "acc", "--n", "0"], "--n must be between 1 and"),
    (["top", "--family", "eval"], "--metric is required"),
    (["rename", "--model", "sft", "--to", "dpo"], "already exists"),
    (["hide"], "--model is required"),
    (["restore", "--model", "sft"], "no deleted model 'sft'"),
    (["history", "--model", "sft", "--family", "eval"], "--family and --metric go together"),
    (["list", "--run", "nope"], "run 'nope' not found"),
])
def test_everyday_errors(registry: Path, args: list[str], message: str) -> None:
    with sqlite3.connect(registry) as conn:
        before = conn.execute("SELECT max(seq) FROM events").fetchone()
    result = lightml(args[0], "--db", registry, *args[1:])
    assert_user_error(result)
    assert message in result.stderr
    with sqlite3.connect(registry) as conn:
        assert conn.execute("SELECT max(seq) FROM events").fetchone() == before


# -- the README walkthrough's findings ---------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["top", "--family", "eval", "--metric", "nosuch"], "no metric eval/nosuch in the registry"),
    (["history", "--model", "sft", "--family", "eval", "--metric", "nosuch"], "no history for sft eval/nosuch"),
    (["compare", "--model-a", "base", "--model-b", "sft", "--family", "nosuch"], "has metrics in family 'nosuch'"),
    (["metric-log", "--run", "r1", "--model", "sft", "--family", "eval", "--metric", "m", "--value", "1",
      "--scores", "@"], "--scores @FILE needs a file name"),
    (["metric-log", "--run", "r1", "--model", "sft", "--family", "eval", "--metric", "m", "--value", "1",
      "--scores", "@/no/such/file"], "--scores @/no/such/file: cannot read the file"),
    (["metric-log", "--run", "r1", "--model", "sft", "--family", "eval", "--metric", "m", "--value", "1",
      "--step", "100", "--path-hint", "nomatch"], "no checkpoint at step 100 whose path contains 'nomatch'"),
])
def test_unknown_names_and_bad_options_are_one_line_errors(registry: Path, args: list[str], message: str) -> None:
    result = lightml(args[0], "--db", registry, *args[1:])
    assert_user_error(result)
    assert message in result.stderr


def test_scan_of_a_file_says_it_is_a_file(registry: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "results.json"
    a_file.write_text("{}")
    result = lightml("scan", "--db", registry, "--run", "r1", "--path", a_file)
    assert_user_error(result)
    assert "is a file: give the folder" in result.stderr


def test_version_flag_and_a_closed_pipe(registry: Path) -> None:
    assert out("--version").startswith("lightml 2.")
    # `lightml list models | head -1`: the reader stops early; no error, no traceback
    proc = subprocess.Popen([sys.executable, "-m", "lightml", "history", "--db", str(registry), "--model", "sft"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # closed before anything is written
    # exit 1 (not all written, as Python advises), and no message
    assert proc.wait(timeout=60) == 1 and proc.stderr.read() == b""


def test_gui_on_a_taken_port_is_one_line(registry: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = lightml("gui", "--db", registry, "--port", taken.getsockname()[1])
    assert_user_error(result)
    assert "cannot listen on 127.0.0.1" in result.stderr and "dashboard on" not in result.stdout


def test_model_history_names_no_parent(registry: Path) -> None:
    with LightMLHandle(registry, "r1") as h:
        h.set_parent("base", "other")  # from none to a parent ...
        h.set_parent("base", None)  # ... and back
    text = out("history", "--db", registry, "--model", "base", "--run", "r1")
    assert "parent none -> #" in text and "-> none" in text and "#None" not in text


def test_gui_on_every_address_is_not_blocked_by_an_ipv4_only_listener(registry: Path) -> None:
    import socket
    import time

    with socket.socket() as ipv4_only:  # another program on 0.0.0.0:PORT
        ipv4_only.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ipv4_only.bind(("0.0.0.0", 0))
        ipv4_only.listen(1)
        port = ipv4_only.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "lightml", "gui", "--db", str(registry), "--host", "::",
                                 "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # printed after the port check; a refused port would have ended the process instead
            assert proc.stdout.readline().startswith("LightML dashboard on"), proc.communicate()
            time.sleep(1)  # and uvicorn itself binds [::]:PORT too
            assert proc.poll() is None, proc.communicate()
        finally:
            proc.terminate()
            proc.communicate(timeout=30)


def test_info_prints_each_metric_value_as_14_does(registry: Path) -> None:
    text = out("info", "--db", registry, "--model", "sft")
    lines = text.splitlines()
    at = lines.index("    [eval]")
    assert lines[at + 1].split() == ["acc", "0.6000"] and lines[at + 2].split() == ["loss", "1.8000"]
    card = json.loads(out("info", "--db", registry, "--model", "sft", "--json"))
    assert card["metrics"] == [{"family": "eval", "metric": "acc", "value": 0.6},
                               {"family": "eval", "metric": "loss", "value": 1.8}]


def test_metric_get_raw_prints_only_the_number_on_a_terminal(registry: Path) -> None:
    text = _run_on_terminal(["metric-get", "--db", registry, "--model", "sft", "--family", "eval",
                             "--metric", "loss", "--raw"], [])
    assert text.strip() == "1.8"


def test_include_hidden_lets_the_pickers_offer_hidden_models(registry: Path) -> None:
    with LightMLHandle(registry, "r1") as h:
        h.set_hidden("dpo", True)
    # visible models by name: base, other, sft, twin; with hidden ones: base, dpo, other, sft, twin
    hidden_out = _run_on_terminal(["info", "--db", registry], ["1"])
    assert "dpo" not in hidden_out.split("Choose model:")[1].split("]:")[0]
    text = _run_on_terminal(["info", "--db", registry, "--include-hidden"], ["2"])
    assert "    2. dpo" in text and "Model dpo  [hidden]" in text
    text = _run_on_terminal(["compare", "--db", registry, "--include-hidden", "--no-color"], ["dpo", "1"])
    assert "Compare: dpo  vs  base" in text
