"""Eval settings on both handles and both engines (``db``: a SQLite file, a PostgreSQL
database): what produced a value is recorded with it (``settings=``, or scan from lm-eval's
results files), stored once per distinct set, read back by ``metric_settings``, follows
overwrites, deletes and restores, and the comparability check flags (and with ``strict``
refuses) values whose settings differ in a key that changes the number."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from lightml.async_handle import AsyncLightMLHandle
from lightml.errors import InvalidInputError, NotFoundError
from lightml.handle import LightMLHandle
from lightml.ingest.scan import scan_and_import
from lightml.log import events as ev
from lightml.log.schemas import payload_problem
from lightml.read.compare import compare_models
from lightml.read.diff import diff_models
from lightml.read.settings import DECISIVE_KEYS, differing_keys

DATA = Path(__file__).resolve().parents[1] / "data"


def test_settings_are_read_back_per_value_and_stored_once_per_distinct_set(db, query) -> None:
    with LightMLHandle(db, "r") as h:
        for name in ("a", "b", "c"):
            h.register_model(name, f"/m/{name}")
            h.log_metrics(name, {"arc": {"acc": 0.5, "acc_norm": 0.6}, "hs": {"acc": 0.3}},
                          settings={"num_fewshot": 5, "limit": 100, "seed": 1234, "chat": True, "lr": 3e-5})
        h.log_model_metric("a", "mmlu", "acc", 0.4, settings={"num_fewshot": 0})
        h.log_model_metric("a", "mmlu", "f1", 0.4)
        expected = {"chat": True, "limit": 100, "lr": 3e-5, "num_fewshot": 5, "seed": 1234}
        assert h.metric_settings("b", "hs", "acc") == expected
        assert h.metric_settings("a", "mmlu", "acc") == {"num_fewshot": 0}
        assert h.metric_settings("a", "mmlu", "f1") == {}  # logged without: unknown
        with pytest.raises(NotFoundError, match="mmlu/nope"):
            h.metric_settings("a", "mmlu", "nope")
    # 9 values with the first set, 1 with the second: two rows, and one per metric event
    assert query(db, "SELECT count(*) FROM settings")[0][0] == 2
    assert query(db, "SELECT count(*) FROM event_settings")[0][0] == 4


def test_an_overwrite_carries_the_new_values_settings_and_delete_restore_keeps_them(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        h.log_metrics("m", {"arc": {"acc": 0.5, "acc_norm": 0.6}}, settings={"num_fewshot": 5})
        h.log_model_metric("m", "arc", "acc", 0.7, force=True, settings={"num_fewshot": 25})
        assert h.metric_settings("m", "arc", "acc") == {"num_fewshot": 25}
        assert h.metric_settings("m", "arc", "acc_norm") == {"num_fewshot": 5}
        h.log_model_metric("m", "arc", "acc", 0.71, force=True)  # a new value of unknown settings
        assert h.metric_settings("m", "arc", "acc") == {}
        h.log_model_metric("m", "arc", "acc_norm", 0.9)  # skipped: the value and its settings stay
        assert h.metric_settings("m", "arc", "acc_norm") == {"num_fewshot": 5}
        h.delete_model("m")
        assert h.metric_settings("m", "arc", "acc_norm") == {"num_fewshot": 5}  # a deleted model's too
        h.restore_model("m")
        assert h.metric_settings("m", "arc", "acc_norm") == {"num_fewshot": 5}


def test_checkpoint_values_have_their_own_settings_found_by_step(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        ckpt = h.register_checkpoint("m", 100, "/m/ckpt-100")
        h.log_checkpoint_metric(ckpt, "arc", "acc", 0.4, settings={"num_fewshot": 0, "limit": 50})
        h.log_model_metric("m", "arc", "acc", 0.5, settings={"num_fewshot": 0})
        assert h.metric_settings("m", "arc", "acc", step=100) == {"limit": 50, "num_fewshot": 0}
        assert h.metric_settings("m", "arc", "acc") == {"num_fewshot": 0}


def test_the_async_handle_logs_and_reads_settings(db) -> None:
    async def main() -> tuple:
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("m", "/m")
            await asyncio.gather(*(h.log_model_metric("m", "f", f"x{i}", 0.5, settings={"seed": i % 2})
                                   for i in range(20)))
            await h.log_metrics("m", {"g": {"y": 1.0}}, settings={"seed": 7})
            return (await h.metric_settings("m", "f", "x3"), await h.metric_settings("m", "f", "x4"),
                    await h.metric_settings("m", "g", "y"))

    assert asyncio.run(main()) == ({"seed": 1}, {"seed": 0}, {"seed": 7})


@pytest.mark.parametrize("bad, message", [
    ({"a": {"b": 1}}, r"settings\['a'\] must be a str, int, float or bool"),
    ({"a": [1, 2]}, r"nested values, lists and None are refused"),
    ({"a": None}, r"got None"),
    ({"a": math.nan}, r"settings\['a'\] must be finite"),
    ({"a": math.inf}, r"must be finite"),
    ({"a": 10**30}, r"settings\['a'\] must be between"),
    ({" ": 1}, r"a key of settings must not be empty"),
    ({1: 1}, r"a key of settings must be a string"),
    ({"a": "x\x1b[31m"}, r"control characters"),
    ([("a", 1)], r"settings must be a flat dict"),
    ({f"k{i}": i for i in range(501)}, r"at most 500"),
    ({"a": "x" * 100_001}, r"at most 100,000"),
])
def test_bad_settings_are_refused_and_nothing_is_written(db, n_events, bad, message) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        before = n_events(db)
        for call in (lambda: h.log_model_metric("m", "f", "x", 0.5, settings=bad),
                     lambda: h.log_metrics("m", {"f": {"x": 0.5}}, settings=bad)):
            with pytest.raises(InvalidInputError, match=message):
                call()
        assert n_events(db) == before
        assert not h.metric_exists("m", "f", "x")


def test_a_stored_settings_event_must_hold_canonical_flat_settings() -> None:
    good = '{"limit":100,"num_fewshot":5}'
    assert payload_problem(ev.SETTINGS_RECORDED, {"settings_id": 1, "settings": good}) is None
    for bad in ('{"num_fewshot":5,"limit":100}', '{"a":{"b":1}}', '[1]', 'not json', '{"a": 1}'):
        assert payload_problem(ev.SETTINGS_RECORDED, {"settings_id": 1, "settings": bad}) is not None, bad


def test_scan_records_every_setting_of_lm_evals_results_files(db) -> None:
    scan_and_import(db, "r", DATA / "lm_eval_049")
    with LightMLHandle(db, "r") as h:
        mc = h.metric_settings("EleutherAI__pythia-70m", "tiny_mc_0shot", "acc")
        group = h.metric_settings("EleutherAI__pythia-70m", "tiny_suite_0shot", "acc")
        two = h.metric_settings("EleutherAI__pythia-70m", "tiny_mc_2shot", "acc")
    results = json.loads(sorted((DATA / "lm_eval_049" / "EleutherAI__pythia-70m").glob("results_*.json"))[0]
                         .read_text())
    assert two["num_fewshot"] == 2 and two["date"] != mc["date"]  # the other file's, with its own date
    assert mc["harness"] == "lm-eval" and mc["harness_version"] == results["lm_eval_version"]
    assert mc["task_hash"] == results["task_hashes"]["tiny_mc"]
    assert mc["task_version"] == str(results["versions"]["tiny_mc"]) and mc["num_fewshot"] == 0
    assert mc["model_args"] == results["config"]["model_args"]
    assert (mc["batch_size"], mc["random_seed"], mc["git_hash"]) == (
        results["config"]["batch_size"], results["config"]["random_seed"], results["git_hash"])
    assert mc["chat_template_applied"] is False and mc["system_instruction_applied"] is False
    assert "limit" not in mc  # null in the file: a full run
    assert "task_hash" not in group and group["task_version"] == "1.0"  # a group has no hash of its own


# -- the comparability check -------------------------------------------------------------------


def _three_models(db) -> None:
    with LightMLHandle(db, "r") as h:
        for name, shots in (("a", 0), ("b", 5), ("c", 0)):
            h.register_model(name, f"/m/{name}")
            h.log_metrics(name, {"arc": {"acc": 0.5 + shots / 100, "acc_stderr": 0.01}},
                          settings={"num_fewshot": shots, "seed": shots + 1, "harness_version": "0.4.9"})
            h.log_model_metric(name, "mmlu", "acc", 0.4, scores=[1, 0, 0, 1, 0],
                               settings={"num_fewshot": 0, "seed": 7})
        h.log_model_metric("c", "hs", "acc", 0.3)


def test_compare_diff_stats_and_top_flag_values_whose_decisive_settings_differ(db) -> None:
    _three_models(db)
    result = compare_models(db, "a", "b", "r")
    flagged = {(d.family, d.metric_name): d.settings_differ for d in result.deltas}
    assert flagged == {("arc", "acc"): ["num_fewshot"], ("arc", "acc_stderr"): ["num_fewshot"],
                       ("mmlu", "acc"): []}
    assert result.to_dict()["deltas"][0]["settings_differ"] == ["num_fewshot"]
    # a and c differ only in the seed: not a key that changes the number
    assert all(not d.settings_differ for d in compare_models(db, "a", "c", "r").deltas)
    rows = {(r["family"], r["metric"]): r["settings_differ"] for r in diff_models(db, ["a", "b", "c"], "r")["rows"]}
    assert rows[("arc", "acc")] == ["num_fewshot"] and rows[("mmlu", "acc")] == [] and rows[("hs", "acc")] == []
    with LightMLHandle(db, "r") as h:
        assert h.compare_stats("a", "b", "mmlu", "acc")["settings_differ"] == []
        assert [i["settings_differ"] for i in h.compare_stats_all("a", "b")] == [[]]
    from lightml.read import catalog
    from lightml.read.sql import reading

    with reading(db) as conn:
        board = catalog.top(conn, "arc", "acc")
    assert [(r["model"], r["settings_differ"]) for r in board] == [("b", []), ("a", ["num_fewshot"]),
                                                                   ("c", ["num_fewshot"])]


def test_strict_refuses_a_comparison_of_values_whose_settings_differ(db) -> None:
    _three_models(db)
    with pytest.raises(InvalidInputError, match=r"arc/acc: num_fewshot"):
        compare_models(db, "a", "b", "r", strict=True)
    with pytest.raises(InvalidInputError, match=r"not comparable"):
        diff_models(db, ["a", "b"], "r", strict=True)
    assert compare_models(db, "a", "c", "r", strict=True).deltas  # comparable: no error
    with LightMLHandle(db, "r") as h:
        with LightMLHandle(db, "r") as other:
            other.log_model_metric("b", "mmlu", "acc", 0.4, scores=[1, 0, 0, 1, 0], force=True,
                                   settings={"num_fewshot": 0, "limit": 5})
        with pytest.raises(InvalidInputError, match=r"mmlu/acc: limit"):
            h.compare_stats("a", "b", "mmlu", "acc", strict=True)
        with pytest.raises(InvalidInputError, match=r"mmlu/acc: limit"):
            h.compare_stats_all("a", "b", strict=True)


def test_the_cli_warns_on_one_line_and_strict_exits_2(db, cli) -> None:
    _three_models(db)
    out = cli("compare", "--db", str(db), "--a", "a", "--b", "b")
    assert out.returncode == 0
    warnings = [line for line in out.stderr.splitlines() if "settings differ" in line]
    assert len(warnings) == 1 and "num_fewshot" in warnings[0]
    assert "arc/acc: num_fewshot" in out.stdout and "  !" in out.stdout
    for command in (["compare", "--a", "a", "--b", "b"], ["diff", "--models", "a", "b"],
                    ["top", "--family", "arc", "--metric", "acc"]):
        out = cli(*command, "--db", str(db), "--strict")
        assert out.returncode == 2, command
        assert out.stderr.count("\n") == 1 and "num_fewshot" in out.stderr and "Traceback" not in out.stderr
    out = cli("compare", "--db", str(db), "--a", "a", "--b", "c", "--strict", "--json")
    assert out.returncode == 0 and "settings differ" not in out.stderr
    assert all(d["settings_differ"] == [] for d in json.loads(out.stdout)["deltas"])


def test_differing_keys_asks_only_the_decisive_keys_of_known_sets() -> None:
    assert differing_keys([{"num_fewshot": 5, "seed": 1}, {"num_fewshot": 5, "seed": 2}]) == []
    assert differing_keys([{"limit": 100}, {"num_fewshot": 0}]) == ["num_fewshot", "limit"]  # one side only
    assert differing_keys([{"num_fewshot": 5}, None, {}]) == []  # unknown is not a difference
    assert differing_keys([{"task_version": "1.0"}, {"task_version": "2.0"}, {"task_version": "1.0"}]) == \
        ["task_version"]
    assert set(DECISIVE_KEYS) >= {"num_fewshot", "limit", "task_version", "task_hash", "harness_version",
                                  "chat_template_applied", "system_instruction_applied", "gen_kwargs"}


# -- where settings are shown, and carried -----------------------------------------------------


def test_history_entries_carry_the_settings_each_value_came_with(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        h.log_model_metric("m", "arc", "acc", 0.5, settings={"num_fewshot": 5})
        h.log_model_metric("m", "arc", "acc", 0.6, force=True, settings={"num_fewshot": 25})
        h.log_model_metric("m", "arc", "acc", 0.7, force=True)
        h.delete_model("m")
        history = h.metric_history("m", "arc", "acc")
    assert [(e["action"], e["settings"]) for e in history] == [
        ("inserted", {"num_fewshot": 5}), ("overwritten", {"num_fewshot": 25}), ("overwritten", None),
        ("deleted", None)]


def test_info_prints_a_familys_shared_settings_once_and_json_has_each_values(db, cli) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        h.log_metrics("m", {"arc": {"acc": 0.5, "acc_norm": 0.6}}, settings={"num_fewshot": 5, "chat": True})
        h.log_model_metric("m", "hs", "acc", 0.3, settings={"limit": 10})
        h.log_model_metric("m", "hs", "f1", 0.3)
    out = cli("info", "--db", str(db), "--model", "m")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[lines.index("    [arc]") + 1] == "      settings: chat=true, num_fewshot=5"
    assert any(line.strip() == "settings: limit=10" for line in lines)  # hs: per value, f1 has none
    assert sum("settings:" in line for line in lines) == 2
    card = json.loads(cli("info", "--db", str(db), "--model", "m", "--json").stdout)
    assert {(m["family"], m["metric"]): m["settings"] for m in card["metrics"]} == {
        ("arc", "acc"): {"chat": True, "num_fewshot": 5}, ("arc", "acc_norm"): {"chat": True, "num_fewshot": 5},
        ("hs", "acc"): {"limit": 10}, ("hs", "f1"): {}}


def test_the_excel_report_comments_a_column_whose_values_settings_differ(db, tmp_path) -> None:
    import openpyxl

    from lightml.report.export import export_excel

    _three_models(db)
    out = export_excel(db, tmp_path / "report.xlsx")
    sheet = openpyxl.load_workbook(out)["arc"]
    comments = {cell.value: cell.comment.text for cell in sheet[1] if cell.comment}
    assert set(comments) == {"acc", "acc_stderr"}
    assert "differ in num_fewshot 0 vs 5" in comments["acc"]
    assert not any(cell.comment for cell in openpyxl.load_workbook(out)["mmlu"][1])


@pytest.mark.sqlite_only("merge reads registry files")
def test_merge_brings_each_values_settings(db, tmp_path) -> None:
    from lightml.ingest.merge import merge

    source = tmp_path / "source.db"
    with LightMLHandle(source, "r") as h:
        h.register_model("m", "/m")
        h.log_metrics("m", {"arc": {"acc": 0.5, "acc_norm": 0.6}}, settings={"num_fewshot": 5})
        h.log_model_metric("m", "arc", "acc", 0.7, force=True, settings={"num_fewshot": 25})
        h.log_model_metric("m", "hs", "acc", 0.3)
    with LightMLHandle(db, "r") as h:
        h.register_model("other", "/o")
    merge(db, source)
    with LightMLHandle(db, "r") as h:
        assert h.metric_settings("m", "arc", "acc") == {"num_fewshot": 25}
        assert h.metric_settings("m", "arc", "acc_norm") == {"num_fewshot": 5}
        assert h.metric_settings("m", "hs", "acc") == {}
        assert [e["value"] for e in h.metric_history("m", "arc", "acc")] == [0.5, 0.7]


def test_scan_gives_a_family_whose_values_come_from_two_results_files_each_ones_settings(db, tmp_path) -> None:
    folder = tmp_path / "res" / "org__m"
    folder.mkdir(parents=True)
    for stamp, values, seed in (("2026-01-01T00-00-00.0", {"acc,none": 0.5, "f1,none": 0.4}, 1),
                                ("2026-01-02T00-00-00.0", {"acc,none": 0.6}, 2)):
        (folder / f"results_{stamp}.json").write_text(json.dumps({
            "results": {"arc": values}, "n-shot": {"arc": 0}, "versions": {"arc": 1.0},
            "config": {"model": "hf", "random_seed": seed}, "lm_eval_version": "0.4.13"}))
    scan_and_import(db, "r", tmp_path / "res")
    with LightMLHandle(db, "r") as h:
        assert h.metric_settings("org__m", "arc", "acc")["random_seed"] == 2  # the newer file's value
        assert h.metric_settings("org__m", "arc", "f1")["random_seed"] == 1
