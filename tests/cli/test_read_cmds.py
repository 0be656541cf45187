"""exists (exact names and globs) and history (a metric's values, a model's events).

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import json
from pathlib import Path

from lightml.handle import LightMLHandle


def test_exists_exact_and_glob(arc_registry: Path, cli) -> None:
    r = cli("exists", "--db", arc_registry, "--model", "base")
    assert r.returncode == 0 and r.stdout == "  ✓ exists: model='base'\n"
    r = cli("exists", "--db", arc_registry, "--model", "nothing")
    assert r.returncode == 1 and r.stdout == "  ✗ not found: model='nothing'\n"
    r = cli("exists", "--db", arc_registry, "--model", "sft", "--family", "reasoning", "--metric", "arc", "--run", "r1")
    assert r.returncode == 0 and r.stdout == "  ✓ exists: model='sft', run='r1', family='reasoning', metric='arc'\n"
    r = cli("exists", "--db", arc_registry, "--model", "sft", "--family", "reasoning", "--metric", "mmlu")
    assert r.returncode == 1 and "✗ not found" in r.stdout
    r = cli("exists", "--db", arc_registry, "--model", "*", "--family", "reasoning", "--metric", "a?c")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        "  ✓ base  reasoning/arc = 0.3100  (run: r1)",
        "  ✓ sft  reasoning/arc = 0.3600  (run: r1)",
        "",
        "  2 match(es)",
    ]
    r = cli("exists", "--db", arc_registry, "--model", "s*")
    assert r.returncode == 0 and r.stdout.splitlines() == ["  ✓ sft", "", "  1 match(es)"]
    r = cli("exists", "--db", arc_registry, "--model", "s*", "--family", "reasoning", "--json")
    data = json.loads(r.stdout)
    assert data["exists"] is True and [m["model"] for m in data["matches"]] == ["sft"]
    r = cli("exists", "--db", arc_registry, "--model", "b*", "--family", "nope", "--metric", "*")
    assert r.returncode == 1 and r.stdout.strip() == "✗ no matches"


def test_history_table_and_json(arc_registry: Path, cli) -> None:
    r = cli("history", "--db", arc_registry, "--model", "sft", "--family", "reasoning", "--metric", "arc")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "History of sft reasoning/arc:"
    assert lines[1].split() == ["seq", "at", "(UTC)", "action", "value", "previous", "actor"]
    assert "inserted" in lines[3] and "0.3500" in lines[3]
    assert "overwritten" in lines[4] and "0.3600" in lines[4] and "0.3500" in lines[4]
    r = cli("history", "--db", arc_registry, "--model", "sft", "--family", "reasoning", "--metric", "arc",
            "--step", "500", "--json")
    entries = json.loads(r.stdout)
    assert [(e["action"], e["value"]) for e in entries] == [("inserted", 0.33)]
    assert set(entries[0]) >= {"seq", "at", "action", "value", "previous_value", "actor"}


def test_model_history_names_no_parent(model_tree: Path, cli_out) -> None:
    with LightMLHandle(model_tree, "r1") as h:
        h.set_parent("base", "other")  # from none to a parent ...
        h.set_parent("base", None)  # ... and back
    text = cli_out("history", "--db", model_tree, "--model", "base", "--run", "r1")
    assert "parent none -> #" in text and "-> none" in text and "#None" not in text
