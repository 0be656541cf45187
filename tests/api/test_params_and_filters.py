"""Model parameters and tags on both handles and both engines (each change an event, with
history; deletes and restores keep them), and the filter expression that selects models by
them, by their metrics, names and runs: parsed by LightML's own parser into parameterised
SQL, shared by ``select_models``, ``list``, ``top``, ``diff`` (which can also group by a
parameter) and the Excel export."""

from __future__ import annotations

import asyncio
import math

import pytest

from lightml.async_handle import AsyncLightMLHandle
from lightml.errors import InvalidInputError
from lightml.handle import LightMLHandle
from lightml.read import filters
from lightml.read.diff import diff_models, format_diff

SWEEP = [("dpo-a", 1e-5, 0.1, 0.45), ("dpo-b", 3e-5, 0.1, 0.55), ("dpo-c", 1e-5, 0.3, 0.62), ("dpo-d", 2e-5, 0.3, 0.58)]


def build_sweep(db) -> None:
    with LightMLHandle(db, "sweep") as h:
        h.register_model("base", "/base", params={"size": "7b"}, tags=["baseline"])
        h.log_metrics("base", {"reasoning": {"arc_challenge": 0.40, "hellaswag": 0.50}})
        for name, lr, beta, arc in SWEEP:
            h.register_model(name, f"/{name}", parent_name="base",
                             params={"lr": lr, "beta": beta, "dataset": "ultrafeedback", "chat": beta > 0.2},
                             tags=["dpo"])
            h.log_metrics(name, {"reasoning": {"arc_challenge": arc, "hellaswag": arc + 0.1}})


def names(h, where: str) -> list[str]:
    return [m["model"] for m in h.select_models(where)]


def test_params_and_tags_are_set_changed_and_kept_with_history(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m", params={"lr": 3e-5, "steps": 1000, "dataset": "uf"}, tags=["dpo", "dpo"])
        assert h.get_params("m") == {"dataset": "uf", "lr": 3e-5, "steps": 1000}
        assert isinstance(h.get_params("m")["steps"], int)  # an int stays an int
        assert h.get_tags("m") == ["dpo"]
        assert h.set_params("m", {"lr": None, "beta": 0.1}) is True  # None removes a key
        assert h.set_params("m", {"beta": 0.1}) is False  # nothing changed, nothing written
        assert h.add_tags("m", ["tuned"]) and h.remove_tags("m", ["dpo"]) and not h.remove_tags("m", ["dpo"])
        assert (h.get_params("m"), h.get_tags("m")) == ({"beta": 0.1, "dataset": "uf", "steps": 1000}, ["tuned"])
        history = [(e["type"], e["what"]) for e in h.model_history("m")]
        assert ("model_params_set", "params: beta=0.1, dataset=uf, steps=1000") in history
        assert ("model_tags_set", "tags: -dpo") in history
        h.delete_model("m")
        h.restore_model("m")
        assert (h.get_params("m"), h.get_tags("m")) == ({"beta": 0.1, "dataset": "uf", "steps": 1000}, ["tuned"])


def test_the_async_handle_sets_and_reads_them_too(db) -> None:
    async def main() -> tuple:
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("m", "/m", params={"beta": 0.1}, tags=["dpo"])
            await h.set_params("m", {"lr": 1e-5})
            await h.add_tags("m", ["x"])
            await h.remove_tags("m", ["dpo"])
            return await h.get_params("m"), await h.get_tags("m"), await h.select_models("params.beta = 0.1")

    params, tags, selected = asyncio.run(main())
    assert (params, tags) == ({"beta": 0.1, "lr": 1e-5}, ["x"])
    assert selected == [{"model": "m", "run": "r", "params": {"beta": 0.1, "lr": 1e-5}, "tags": ["x"]}]


@pytest.mark.parametrize("call, message", [
    (lambda h: h.register_model("n", "/n", params={"lr": [1, 2]}), "params\\['lr'\\]"),
    (lambda h: h.register_model("n", "/n", params={"lr": math.nan}), "finite"),
    (lambda h: h.register_model("n", "/n", params={"": 1}), "key of params"),
    (lambda h: h.register_model("n", "/n", params=[("lr", 1)]), "flat dict"),
    (lambda h: h.register_model("n", "/n", tags="dpo"), "list of strings"),
    (lambda h: h.register_model("n", "/n", tags=["ok", ""]), "must not be empty"),
    (lambda h: h.register_model("n", "/n", params={"lr": None}), "not None"),
    (lambda h: h.set_params("m", {"x": {"nested": 1}}), "params\\['x'\\]"),
    (lambda h: h.add_tags("m", ["a\x1b[31m"]), "control characters"),
])
def test_bad_params_or_tags_are_refused_and_nothing_is_written(db, n_events, call, message) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        before = n_events(db)
        with pytest.raises(InvalidInputError, match=message):
            call(h)
        assert n_events(db) == before
        assert not h.model_exists("n")


def test_the_filter_selects_by_params_tags_metrics_names_and_runs(db) -> None:
    build_sweep(db)
    with LightMLHandle(db, "sweep") as h:
        assert names(h, "params.lr < 3e-5 and tag:dpo and reasoning.arc_challenge > 0.5") == ["dpo-c", "dpo-d"]
        assert names(h, "tag:dpo or tag:baseline") == ["base", "dpo-a", "dpo-b", "dpo-c", "dpo-d"]
        assert names(h, "not tag:dpo") == ["base"]
        assert names(h, "(params.beta = 0.1 or params.beta == 0.3) and not params.lr >= 3e-5") == [
            "dpo-a", "dpo-c", "dpo-d"]
        assert names(h, "params.chat = true") == ["dpo-c", "dpo-d"]
        assert names(h, "params.dataset != 'ultrafeedback'") == []  # base has no dataset: false, not "different"
        assert names(h, "not params.dataset = 'ultrafeedback'") == ["base"]
        assert names(h, 'model = "base" or model = "dpo-a"') == ["base", "dpo-a"]
        assert names(h, 'run = "sweep" and reasoning.hellaswag <= 0.55') == ["base", "dpo-a"]
        assert names(h, "reasoning.`arc_challenge` > 0.6") == ["dpo-c"]  # a quoted name
        assert names(h, "NOT TAG:dpo") == ["base"]  # keywords in any case


@pytest.mark.parametrize("expression, message", [
    ("", "must not be empty"),
    ("params.lr <", "ends too early"),
    ("params.lr < 'x'", "compares numbers"),
    ("reasoning.arc = 'a'", "compare it with a number"),
    ("model = 3", "compare it with a quoted string"),
    ("tag:a tag:b", "a missing 'and' or 'or'"),
    ("(tag:a", "ends too early"),
    ("tag:a)", "unexpected '\\)'"),
    ("foo", "expected '.' after 'foo'"),
    ("params.lr ~ 1", "unexpected '~'"),
    ("params.lr < 1e999", "beyond the float range"),
    ("(" * 80 + "tag:a" + ")" * 80, "nested more than 64"),
    ("not " * 80 + "tag:a", "nested more than 64"),
    ("tag:a or " * 1000 + "tag:b", "at most 4000 characters"),
    ("params.x = 1; DROP TABLE model", "unexpected ';'"),
])
def test_a_bad_expression_is_a_clear_error_saying_where(expression, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        filters.parse(expression)


def test_no_value_of_an_expression_reaches_the_sql_text() -> None:
    sql, params = filters.to_sql(filters.parse("params.`x'; DROP` = 'y OR 1=1' and tag:`t'`"))
    assert "DROP" not in sql and "OR 1=1" not in sql and "'" not in sql
    assert params == ["x'; DROP", "y OR 1=1", "t'"]


def test_a_long_flat_chain_parses_without_deep_recursion() -> None:
    sql, params = filters.to_sql(filters.parse(" or ".join(f"tag:t{i}" for i in range(300))))
    assert len(params) == 300 and sql.count(" OR ") == 299


def test_list_top_diff_and_export_take_the_filter(db, tmp_path, cli) -> None:
    from openpyxl import load_workbook

    from lightml.report.export import export_excel

    build_sweep(db)
    listed = cli("list", "--db", str(db), "--where", "tag:dpo and params.beta = 0.3", "--json")
    assert [m["model"] for m in __import__("json").loads(listed.stdout)] == ["dpo-c", "dpo-d"]
    top = cli("top", "--db", str(db), "--family", "reasoning", "--metric", "arc_challenge", "--where",
              "params.lr < 2e-5", "--json")
    assert [r["model"] for r in __import__("json").loads(top.stdout)["rows"]] == ["dpo-c", "dpo-a"]
    diff = diff_models(db, where="tag:dpo and params.lr = 1e-5")
    assert diff["models"] == ["dpo-a", "dpo-c"]
    sheet = load_workbook(export_excel(db, tmp_path / "r.xlsx", where="tag:baseline"))["reasoning"]
    assert [row[0].value for row in sheet.iter_rows(min_row=2)] == ["base"]
    bad = cli("list", "--db", str(db), "--where", "params.lr <")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "ends too early" in bad.stderr
    with pytest.raises(InvalidInputError, match="selects 1 model"):
        diff_models(db, where="tag:baseline")


def test_diff_groups_by_a_param_each_column_the_mean_of_its_models(db) -> None:
    build_sweep(db)
    data = diff_models(db, where="tag:dpo or tag:baseline", group_by="beta")
    assert data["models"] == ["beta=0.1", "beta=0.3", "beta=-"]
    assert data["groups"] == {"beta=0.1": ["dpo-a", "dpo-b"], "beta=0.3": ["dpo-c", "dpo-d"], "beta=-": ["base"]}
    arc = next(r for r in data["rows"] if r["metric"] == "arc_challenge")
    assert arc["values"] == {"beta=0.1": math.fsum([0.45, 0.55]) / 2, "beta=0.3": math.fsum([0.62, 0.58]) / 2,
                             "beta=-": 0.40}
    assert arc["best"] == ["beta=0.3"]
    text = format_diff(data, color=False)
    assert "3 groups by beta" in text and "beta=0.1: the mean of dpo-a, dpo-b" in text


def test_the_cli_sets_prints_and_registers_params_and_tags(db, cli) -> None:
    with LightMLHandle(db, "r"):
        pass
    registered = cli("model-register", "--db", str(db), "--run", "r", "--name", "m", "--path", "/m",
                     "--param", "lr=3e-5", "--param", "dataset=uf", "--param", 'size="7"', "--tag", "dpo")
    assert registered.returncode == 0, registered.stderr
    shown = cli("params", "--db", str(db), "--model", "m")
    assert shown.stdout.splitlines() == ['dataset = "uf"', "lr = 3e-05", 'size = "7"']
    assert cli("params", "--db", str(db), "--model", "m", "--set", "beta=0.1", "--unset", "lr").returncode == 0
    assert cli("tag", "--db", str(db), "--model", "m", "--add", "best", "--remove", "dpo").returncode == 0
    with LightMLHandle(db, "r") as h:
        assert h.get_params("m") == {"beta": 0.1, "dataset": "uf", "size": "7"}
        assert h.get_tags("m") == ["best"]
    info = cli("info", "--db", str(db), "--model", "m")
    assert "tags:    best" in info.stdout and "params:  beta=0.1, dataset=uf, size=7" in info.stdout
    bad = cli("params", "--db", str(db), "--model", "m", "--set", "novalue")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


def test_grouping_keeps_values_of_different_types_apart(db) -> None:
    with LightMLHandle(db, "r") as h:
        for name, value in (("a", 1), ("b", True), ("c", "1"), ("d", "-"), ("e", None), ("f", 2)):
            h.register_model(name, f"/{name}", params=None if value is None else {"x": value})
            h.log_metrics(name, {"f": {"acc": 0.5, "acc_stderr": 0.01}})
    data = diff_models(db, where="not model = 'zzz'", group_by="x")
    assert data["models"] == ["x=1", "x=2", "x=true", 'x="-"', 'x="1"', "x=-"]
    assert data["groups"]["x=1"] == ["a"] and data["groups"]["x=-"] == ["e"]
    assert [r["metric"] for r in data["rows"]] == ["acc"]  # (no mean of stderrs)


@pytest.mark.parametrize("expression, selected", [
    ("arc.25 > 0.5", []), ("tag:3-epochs", ["m"]), ("tag:2024-06-01", ["m"]), ("mmlu.1-shot > 0.5", ["m"]),
    ("params.8-bit = true", ["m"]),
])
def test_names_may_start_with_digits(db, expression, selected) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m", params={"8-bit": True}, tags=["3-epochs", "2024-06-01"])
        h.log_metrics("m", {"mmlu": {"1-shot": 0.6}, "arc": {"25": 0.4}})
        assert names(h, expression) == selected


@pytest.mark.parametrize("expression", ["tag:1.", "tag:.5", "params.x = \u0663", "tag:a\u00a0or tag:b"])
def test_what_is_not_an_ascii_name_number_or_space_is_refused(expression) -> None:
    with pytest.raises(InvalidInputError, match="bad filter expression"):
        filters.parse(expression)


def test_a_bad_tag_or_param_on_the_cli_writes_nothing_even_beside_a_good_one(db, cli, n_events) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
    before = n_events(db)
    for args in (("tag", "--add", "good", "--remove", ""), ("tag", "--add", "x", "--remove", "x"),
                 ("params", "--set", "g=1", "--unset", "g"), ("params", "--set", "a=1", "b=1e999")):
        result = cli(*args, "--db", str(db), "--model", "m")
        assert result.returncode == 2 and result.stderr.count("\n") == 1, (args, result)
    assert n_events(db) == before
    assert cli("tag", "--db", str(db), "--model", "m", "--add", "a b", "c").returncode == 0  # several at once
    assert cli("tag", "--db", str(db), "--model", "m").stdout.strip() == "a b, c"  # (a tag may hold a space)
    assert cli("params", "--db", str(db), "--model", "m", "--set", "x=NaN", "y=2").returncode == 0
    with LightMLHandle(db, "r") as h:
        assert h.get_params("m") == {"x": "NaN", "y": 2}  # NaN is not a JSON number: text


def test_a_zero_given_over_a_negative_zero_is_a_change(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m", params={"z": -0.0})
        assert h.set_params("m", {"z": 0.0}) is True
        assert math.copysign(1, h.get_params("m")["z"]) == 1
        assert h.add_tags("m", (t for t in ["g1", "g2"])) is True  # any iterable of names


@pytest.mark.sqlite_only("merge reads registry files")
def test_merge_brings_parameters_and_tags(tmp_path, verify_at_teardown) -> None:
    from lightml.ingest.merge import merge

    source, target = tmp_path / "node.db", verify_at_teardown(tmp_path / "main.db")
    with LightMLHandle(source, "r") as h:
        h.register_model("m", "/m", params={"lr": 1e-5, "beta": 0.1}, tags=["dpo"])
    with LightMLHandle(target, "r") as h:
        h.register_model("m", "/m", params={"lr": 3e-5})
    merge(target, source)
    with LightMLHandle(target, "r") as h:
        assert (h.get_params("m"), h.get_tags("m")) == ({"beta": 0.1, "lr": 3e-5}, ["dpo"])  # its own lr kept
        assert names(h, "tag:dpo") == ["m"]
    merge(target, source, force=True)
    with LightMLHandle(target, "r") as h:
        assert h.get_params("m") == {"beta": 0.1, "lr": 1e-5}
