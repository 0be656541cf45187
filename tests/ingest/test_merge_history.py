"""merge keeps the source's history (every value, its time and actor, marked as merged), takes
several sources or a glob in one call, and counts unusable stored scores instead of crashing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lightml import merge, verify
from lightml.handle import LightMLHandle
from lightml.log import events as ev
from lightml.log.replay import replay


def write_as(monkeypatch, user: str, db: Path, run: str, model: str, values: list[float],
             scores: list[int] | None = None) -> None:
    """Log ``values`` one after the other (forced overwrites) as ``user``."""
    monkeypatch.setenv("LOGNAME", user)
    monkeypatch.setenv("USER", user)
    with LightMLHandle(db, run) as h:
        h.register_model(model, f"org/{model}")
        for number, value in enumerate(values):
            last = number == len(values) - 1
            h.log_model_metric(model, "eval", "acc", value, force=number > 0, scores=scores if last else None)


def history(db: Path, model: str, run: str | None = None) -> list[dict]:
    with LightMLHandle(db, run) if run else LightMLHandle(db) as h:
        return h.metric_history(model, "eval", "acc")


def read_tables(db: Path) -> dict[str, list]:
    """Every row of every table but the log itself."""
    with sqlite3.connect(db) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                            "AND name NOT IN ('events', 'lightml_meta') ORDER BY name")]
        return {name: conn.execute(f'SELECT * FROM "{name}" ORDER BY 1').fetchall() for name in names}


def event_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT seq, type, version, at FROM events ORDER BY seq").fetchall()


def test_merged_metric_shows_every_source_value_with_its_time_and_actor(tmp_path: Path, monkeypatch) -> None:
    source, target = tmp_path / "cluster.db", tmp_path / "mine.db"
    write_as(monkeypatch, "alice", source, "r", "sft", [0.5, 0.6, 0.7], scores=[1, 1, 0, 1])
    write_as(monkeypatch, "bob", target, "r", "base", [0.4])
    before = history(source, "sft", "r")
    assert [e["value"] for e in before] == [0.5, 0.6, 0.7] and all("alice@" in e["actor"] for e in before)

    result = merge(target, source)
    assert (result.metrics_inserted, result.metrics_overwritten) == (1, 0)  # one metric, not three
    merged = history(target, "sft", "r")
    assert [(e["action"], e["value"], e["at"], e["actor"]) for e in merged] == \
        [(e["action"], e["value"], e["at"], e["actor"]) for e in before]
    assert all(e["merged_from"] == str(source.resolve()) for e in merged)
    assert all(e["merged_at"] > before[-1]["at"] for e in merged)  # the merge's own time
    assert history(target, "base", "r")[0]["merged_from"] is None  # written here
    with LightMLHandle(target, "r") as h:
        assert h.get_detailed_scores("sft", "eval", "acc") == [1, 1, 0, 1]  # with the last value
    # the log stays in time order; the metric events are written with the current payload version
    rows = event_rows(target)
    assert [r[3] for r in rows] == sorted(r[3] for r in rows)
    assert {r[2] for r in rows if r[1] in (ev.METRIC_INSERTED, ev.METRIC_OVERWRITTEN)} == \
        {ev.CURRENT_VERSION[ev.METRIC_INSERTED]}
    assert verify(target).ok
    # merging again adds nothing; a forced merge of the same file neither
    assert merge(target, source).metrics_inserted == 0
    assert merge(target, source, force=True).metrics_overwritten == 0
    assert len(history(target, "sft", "r")) == 3


def test_history_survives_a_chain_of_merges_and_the_cli_shows_it(tmp_path: Path, monkeypatch, cli) -> None:
    first, middle, last = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    write_as(monkeypatch, "alice", first, "r", "m", [0.1, 0.2])
    original = history(first, "m", "r")
    write_as(monkeypatch, "carol", middle, "r", "other", [0.9])
    merge(middle, first)
    write_as(monkeypatch, "dave", last, "r", "third", [0.3])
    merge(last, middle)
    final = history(last, "m", "r")
    assert [(e["value"], e["at"], e["actor"]) for e in final] == [(e["value"], e["at"], e["actor"]) for e in original]
    assert final[0]["merged_from"] == str(middle.resolve())  # the file it came from last
    shown = cli("history", "--db", last, "--model", "m", "--run", "r", "--family", "eval", "--metric", "acc",
                "--json")
    assert shown.returncode == 0, shown.stderr
    shown_entries = [(e["value"], e["actor"]) for e in json.loads(shown.stdout)]
    assert shown_entries == [(0.1, original[0]["actor"]), (0.2, original[1]["actor"])]


def test_a_1x_source_brings_its_row_marked_as_merged(tmp_path: Path, one_model_1x_file) -> None:
    source, target = one_model_1x_file(tmp_path / "old.db"), tmp_path / "mine.db"
    with sqlite3.connect(source) as conn:
        conn.execute("INSERT INTO metrics VALUES (1, 1, NULL, 'eval', 'acc', 0.42)")
    LightMLHandle(target).close()
    merge(target, source)
    (entry,) = history(target, "m", "r")
    assert (entry["action"], entry["value"], entry["merged_from"]) == ("inserted", 0.42, str(source.resolve()))
    assert entry["at"] == entry["merged_at"]  # 1.x kept no time: the merge's
    assert verify(target).ok


def test_several_sources_and_globs_in_one_call(tmp_path: Path, monkeypatch, cli) -> None:
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    for number in range(3):
        write_as(monkeypatch, "alice", nodes / f"node{number}.db", f"run{number}", "m", [number / 10])
    write_as(monkeypatch, "bob", tmp_path / "extra.db", "extra", "m", [0.9])
    target = tmp_path / "mine.db"
    LightMLHandle(target).close()
    result = merge(target, [str(nodes / "node*.db"), tmp_path / "extra.db"])
    assert result.runs_created == 4 and result.metrics_inserted == 4
    assert result.sources == [str((nodes / f"node{n}.db").resolve()) for n in range(3)] + \
        [str((tmp_path / "extra.db").resolve())]
    # the CLI: --from with several files, repeated, and 1.4's --src
    cli_target = tmp_path / "cli.db"
    LightMLHandle(cli_target).close()
    done = cli("merge", "--db", cli_target, "--from", nodes / "node0.db", nodes / "node1.db",
               "--src", nodes / "node2.db", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runs_created"] == 3


def test_a_missing_source_or_an_empty_glob_merges_nothing(tmp_path: Path, monkeypatch, models_and_metrics,
                                                          assert_user_error, cli) -> None:
    good, target = tmp_path / "good.db", tmp_path / "mine.db"
    write_as(monkeypatch, "alice", good, "r", "m", [0.5])
    write_as(monkeypatch, "bob", target, "r", "base", [0.4])
    before = models_and_metrics(target), event_rows(target)
    with pytest.raises(FileNotFoundError, match="nothing merged"):
        merge(target, [good, tmp_path / "nope.db"])
    with pytest.raises(FileNotFoundError, match="no file matches"):
        merge(target, [good, str(tmp_path / "nodes" / "*.db")])
    assert (models_and_metrics(target), event_rows(target)) == before
    for args in (["--from", good, tmp_path / "nope.db"], ["--from", tmp_path / "none-*.db"]):
        assert_user_error(cli("merge", "--db", target, *args))
    assert (models_and_metrics(target), event_rows(target)) == before


def test_deeply_nested_stored_scores_are_counted_as_unusable(tmp_path: Path, monkeypatch, tamper) -> None:
    source, target = tmp_path / "other.db", tmp_path / "mine.db"
    write_as(monkeypatch, "alice", source, "r", "m", [0.5], scores=[1, 0])
    with sqlite3.connect(source) as conn:
        tamper(conn, "UPDATE detailed_scores SET scores = '" + "[" * 100_000 + "1" + "]" * 100_000 + "'")
        tamper(conn, "UPDATE score_docs SET doc_keys = '" + "[" * 100_000 + "]" * 100_000 + "'")
    LightMLHandle(target).close()
    result = merge(target, source)
    assert (result.metrics_inserted, result.scores_unusable) == (1, 1)
    with LightMLHandle(target, "r") as h:
        assert h.get_detailed_scores("m", "eval", "acc") is None
    assert verify(target).ok


def test_a_log_of_version_1_metric_events_still_replays_byte_identical(tmp_path: Path, monkeypatch, tamper) -> None:
    """Registries written before the payload bump hold version-1 metric events: read as they are."""
    old, merged = tmp_path / "old.db", tmp_path / "merged.db"
    write_as(monkeypatch, "alice", old, "r", "m", [0.1, 0.2], scores=[1, 0])
    with sqlite3.connect(old) as conn:
        tamper(conn, "UPDATE events SET version = 1 WHERE type IN ('metric_inserted', 'metric_overwritten')")
    assert verify(old).ok
    replay(old, tmp_path / "copy.db")
    assert read_tables(tmp_path / "copy.db") == read_tables(old)
    assert [e["value"] for e in history(old, "m", "r")] == [0.1, 0.2]
    # and merging it reads its history as well
    LightMLHandle(merged).close()
    merge(merged, old)
    assert [(e["value"], e["actor"]) for e in history(merged, "m", "r")] == \
        [(e["value"], e["actor"]) for e in history(old, "m", "r")]


SOURCE_DAMAGE = {
    "a step that is text": ("UPDATE checkpoint SET step = 'abc'", "checkpoint row id 1", "step"),
    "a fractional step": ("UPDATE checkpoint SET step = 1.5", "checkpoint row id 1", "step"),
    "a negative step": ("UPDATE checkpoint SET step = -5", "checkpoint row id 1", "step"),
    "a C1 escape in a model name": ("UPDATE model SET model_name = 'm' || char(155)", "model row id 1", "U\\+009B"),
    "a bidi override in a family": ("UPDATE metrics SET family = 'e' || char(8238)", "metrics row id 1", "U\\+202E"),
    "a path that is bytes": ("UPDATE model SET path = x'ff00'", "model row id 1", "not text"),
    "a model of no run": ("UPDATE model SET run_id = 99", "model row id 1", "no run"),
}


@pytest.mark.parametrize("damage", sorted(SOURCE_DAMAGE))
def test_a_source_holding_what_the_api_refuses_is_refused_whole(tmp_path: Path, damage: str, tamper) -> None:
    """Rows a tool wrote behind the source's log are not merged behind this one's: the merge
    names the row, and the target (log and tables) stays as it was and still verifies."""
    sql, row, problem = SOURCE_DAMAGE[damage]
    source, target = tmp_path / "src.db", tmp_path / "dst.db"
    with LightMLHandle(source, "r") as h:
        h.register_model("m", "org/m")
        h.log_model_metric("m", "eval", "acc", 0.5)
        h.register_checkpoint("m", 10, "org/m/10")
    with sqlite3.connect(source) as conn:
        tamper(conn, sql)
    LightMLHandle(target, "t").close()
    before = read_tables(target), event_rows(target)
    with pytest.raises(ValueError, match=f"{row} .*{problem}.*nothing was merged"):
        merge(target, source)
    assert (read_tables(target), event_rows(target)) == before and verify(target).ok
