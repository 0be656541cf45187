"""merge: overlapping registries, bad sources that leave the target alone, unusable stored
scores, and 1.x files holding what the API refuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lightml import merge, verify
from lightml.errors import InvalidInputError, NotARegistryError
from lightml.handle import LightMLHandle


def build(path: Path, run: str, models: dict[str, tuple[str | None, float, list | None]]) -> None:
    with LightMLHandle(path, run) as h:
        for name, (parent, value, scores) in models.items():
            h.register_model(name, f"org/{name}", parent_name=parent)
            h.log_model_metric(name, "eval", "acc", value, scores=scores)


def test_merge_overlapping_registries(tmp_path: Path, models_and_metrics) -> None:
    mine, cluster = tmp_path / "mine.db", tmp_path / "cluster.db"
    build(mine, "shared", {"base": (None, 0.5, None), "sft": ("base", 0.6, None)})
    build(cluster, "shared", {"base": (None, 0.55, [1, 0]), "dpo": ("base", 0.7, [1, 1])})
    build(cluster, "cluster-only", {"probe": ("dpo", 0.1, None)})
    with LightMLHandle(cluster, "shared") as h:
        cid = h.register_checkpoint("dpo", 100, "/ckpt/dpo-100")
        h.log_checkpoint_metric(cid, "eval", "acc", 0.65)
        h.set_notes("dpo", "from the cluster")
    with sqlite3.connect(mine) as conn:
        (last_own_event,) = conn.execute("SELECT max(seq) FROM events").fetchone()
    result = merge(mine, cluster)
    assert result.to_dict() == {"runs_created": 1, "models_registered": 2, "checkpoints_registered": 1,
                                "metrics_inserted": 3, "metrics_overwritten": 0, "metrics_skipped": 1,
                                "metrics_unusable": 0, "scores_unusable": 0, "sources": [str(cluster.resolve())]}
    after = models_and_metrics(mine)
    assert after["models"] == [("base", "shared", None, None), ("dpo", "shared", "base", "from the cluster"),
                               ("probe", "cluster-only", "dpo", None), ("sft", "shared", "base", None)]
    assert ("base", "eval", "acc", 0.5, None) in after["metrics"]  # mine kept: duplicates skipped
    assert ("dpo", "eval", "acc", 0.7, "[1,1]") in after["metrics"]
    assert merge(mine, cluster).to_dict()["metrics_inserted"] == 0  # twice adds nothing
    assert models_and_metrics(mine) == after
    with sqlite3.connect(mine) as conn:
        origins = {o for (o,) in conn.execute("SELECT origin FROM events WHERE seq > ?", (last_own_event,))}
    assert origins == {"merge"}
    forced = merge(mine, cluster, force=True)
    assert (forced.metrics_overwritten, forced.metrics_inserted) == (1, 0)  # only base differed
    assert ("base", "eval", "acc", 0.55, "[1,0]") in models_and_metrics(mine)["metrics"]
    assert merge(mine, cluster, force=True).metrics_overwritten == 0
    assert verify(mine).ok
    with LightMLHandle(mine) as h:
        assert [e["value"] for e in h.metric_history("base", "eval", "acc")] == [0.5, 0.55]


def test_merge_refuses_bad_sources_and_leaves_the_target_alone(tmp_path: Path, models_and_metrics) -> None:
    mine = tmp_path / "mine.db"
    build(mine, "r", {"a": (None, 0.5, None)})
    before = models_and_metrics(mine)
    with pytest.raises(InvalidInputError, match="itself"):
        merge(mine, mine)
    with pytest.raises(FileNotFoundError):
        merge(mine, tmp_path / "nope.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(NotARegistryError):
        merge(mine, junk)
    # a schema rule in the target that the source breaks: the whole merge is refused
    other = tmp_path / "other.db"
    build(other, "r2", {"b": (None, 0.4, None)})
    with LightMLHandle(mine, "r") as h:
        h.add_schema_rule("eval", "f1")
    rules_before = models_and_metrics(mine)
    with pytest.raises(ValueError, match="registry schema"):
        merge(mine, other)
    assert models_and_metrics(mine) == rules_before == before


def test_merge_keeps_a_value_whose_stored_scores_are_not_finite(tmp_path: Path, tamper) -> None:
    mine, other = tmp_path / "mine.db", tmp_path / "other.db"
    build(mine, "r", {"base": (None, 0.5, None)})
    build(other, "r", {"sft": (None, 0.6, [1, 0]), "dpo": (None, 0.7, [1, 1])})
    with sqlite3.connect(other) as conn:  # as an older tool could have written it
        tamper(conn, "UPDATE detailed_scores SET scores = '[NaN, 1]' WHERE scores = '[1,0]'")
    result = merge(mine, other)
    assert (result.metrics_inserted, result.scores_unusable) == (2, 1)
    with sqlite3.connect(mine) as conn:
        rows = conn.execute("SELECT o.model_name, m.value, d.scores FROM metrics m JOIN model o ON o.id = m.model_id "
                            "LEFT JOIN detailed_scores d ON d.metric_id = m.id ORDER BY o.model_name").fetchall()
    assert rows == [("base", 0.5, None), ("dpo", 0.7, "[1,1]"), ("sft", 0.6, None)]
    assert verify(mine).ok


def test_merging_a_1x_file_with_a_control_character_in_a_name_is_refused_whole(tmp_path: Path,
                                                                               one_model_1x_file) -> None:
    """1.x wrote whatever it was given; a name the API refuses (here a NUL in a family) is
    not brought in behind its back: the merge names the row and writes nothing."""
    source, target = one_model_1x_file(tmp_path / "old.db"), tmp_path / "mine.db"
    with sqlite3.connect(source) as conn:
        conn.executemany("INSERT INTO metrics VALUES (?, 1, NULL, ?, ?, ?)",
                         [(1, "fam\x00x", "acc", 0.5), (2, "fam", "acc", 0.6), (3, "fam", "f1", 0.7)])
    LightMLHandle(target, "r").close()
    with sqlite3.connect(target) as conn:
        events_before = conn.execute("SELECT count(*) FROM events").fetchone()
    with pytest.raises(InvalidInputError, match="metrics row id 1 .*control characters.*nothing was merged"):
        merge(target, source)
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == events_before
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (0,)
    assert verify(target).ok
