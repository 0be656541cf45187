"""The dashboard's JSON API with Starlette's TestClient: data, bad requests, the token rule.
(Over 400 lines: every route of one app, each with its bad requests, on one shared registry.)"""

from __future__ import annotations

import io
import re
from pathlib import Path

import openpyxl
import pytest
from starlette.testclient import TestClient

from lightml.handle import LightMLHandle
from projections.guard import MARKER_TABLE
import lightml.web.app
from lightml.web.app import SCRIPTS, TOKEN_HEADER, create_app

XSS = '<img src=x onerror=alert(1)>'


@pytest.fixture
def registry(any_engine_db: str) -> Path | str:
    """The dashboard's registry, on each storage engine: a SQLite file, or a PostgreSQL
    database (its URL) of the test run's server."""
    db = Path(any_engine_db) if "://" not in any_engine_db else any_engine_db
    with LightMLHandle(db, "r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model(XSS, "org/xss", parent_name="sft")
        h.log_model_metric("base", "eval", "acc", 0.5, scores=[1] * 50 + [0] * 50)
        h.log_model_metric("sft", "eval", "acc", 0.8, scores=[1] * 80 + [0] * 20)
        h.log_metrics("base", {"eval": {"loss": 2.0}, "other": {"acc": 0.1}})
        h.log_metrics("sft", {"eval": {"loss": 1.5}})
        h.log_model_metric(XSS, "eval", "acc", 0.7)
        for step, value in ((100, 0.6), (200, 0.7)):
            cid = h.register_checkpoint("sft", step, f"/ckpt/{step}")
            h.log_checkpoint_metric(cid, "eval", "acc", value)
        h.log_model_metric("base", "eval", "loss", 1.9, force=True)
        h.register_model("hidden-one", "org/h")
        h.log_model_metric("hidden-one", "eval", "acc", 0.99)
        h.set_hidden("hidden-one")
    return db


LOCAL = "http://127.0.0.1:5050"  # TestClient's default host, "testserver", is refused like any other name


@pytest.fixture
def client(registry: Path) -> TestClient:
    return TestClient(create_app(registry), base_url=LOCAL)


def token_of(client: TestClient) -> str:
    page = client.get("/").text
    start = page.index('name="lightml-token" content="') + len('name="lightml-token" content="')
    return page[start:page.index('"', start)]


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/main.js">' in page.text
    text = page.text.replace(token_of(client), "")  # the random token could hold any letters, "cdn" too
    assert "cdn" not in text.lower() and "http://" not in text and "https://" not in text
    for name in SCRIPTS:
        js = client.get(f"/static/{name}")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert "innerHTML" not in js.text and "outerHTML" not in js.text  # every piece of data goes through textContent
        # a module imports only the page's own modules, each of them served
        for imported in re.findall(r'from "\./([^"]+)"', js.text):
            assert imported in SCRIPTS, (name, imported)
    # every module in the package is served (a new one left out of SCRIPTS would 404)
    shipped = {p.name for p in Path(lightml.web.app.__file__).parent.joinpath("static").glob("*.js")}
    assert shipped == set(SCRIPTS)
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404
    assert "access-control-allow-origin" not in {k.lower() for k in page.headers}
    # never framed by another site (a frame could trick a click on the edit buttons)
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_pivot(client: TestClient) -> None:
    pivot = client.get("/api/pivot", params={"family": "eval"}).json()
    assert [c["metric"] for c in pivot["columns"]] == ["acc", "loss"]
    assert pivot["columns"][1]["lower_is_better"] is True
    rows = {r["model"]: r["values"] for r in pivot["rows"]}
    assert rows == {"base": {"eval": {"acc": 0.5, "loss": 1.9}}, "sft": {"eval": {"acc": 0.8, "loss": 1.5}},
                    XSS: {"eval": {"acc": 0.7}}}  # hidden left out
    everything = client.get("/api/pivot").json()
    assert [(c["family"], c["metric"]) for c in everything["columns"]] == [("eval", "acc"), ("eval", "loss"),
                                                                          ("other", "acc")]
    # the same metric name in two families stays two values
    assert {r["model"]: r["values"] for r in everything["rows"]}["base"] == {
        "eval": {"acc": 0.5, "loss": 1.9}, "other": {"acc": 0.1}}
    with_steps = client.get("/api/pivot", params={"family": "eval", "checkpoints": "1"}).json()
    assert [(r["model"], r["step"]) for r in with_steps["rows"]] == [
        ("<img src=x onerror=alert(1)>", None), ("base", None), ("sft", None), ("sft", 100), ("sft", 200)]
    assert client.get("/api/pivot", params={"run": "r1"}).json()["rows"]
    assert client.get("/api/runs").json() == [{"id": 1, "run": "r1", "models": 3}]
    assert client.get("/api/families").json() == [{"family": "eval", "metrics": 2}, {"family": "other", "metrics": 1}]


def test_a_score_column_names_its_stderr_column(tmp_path: Path) -> None:
    db = tmp_path / "se.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "org/m")
        h.log_metrics("m", {"mmlu": {"acc": 0.6, "acc_stderr": 0.01, "f1": 0.5}, "arc": {"acc": 0.4}})
    columns = TestClient(create_app(db), base_url=LOCAL).get("/api/pivot").json()["columns"]
    assert [(c["family"], c["metric"], c.get("stderr")) for c in columns] == [
        ("arc", "acc", None), ("mmlu", "acc", "acc_stderr"), ("mmlu", "acc_stderr", None), ("mmlu", "f1", None)]


def test_flips_of_a_compared_metric(client: TestClient) -> None:
    flips = client.get("/api/flips", params={"a": "base", "b": "sft", "family": "eval", "metric": "acc"}).json()
    assert (flips["documents"], flips["flipped"], flips["better_a"], flips["better_b"], flips["paired_by"]) == \
        (100, 30, 0, 30, "position")
    assert flips["flips"][0] == {"doc": 50, "a": 0.0, "b": 1.0, "better": "b"}
    assert [f["doc"] for f in flips["flips"]] == list(range(50, 80))
    first = client.get("/api/flips", params={"a": "base", "b": "sft", "family": "eval", "metric": "acc", "limit": "2"})
    assert [f["doc"] for f in first.json()["flips"]] == [50, 51] and first.json()["flipped"] == 30
    same_run = client.get("/api/flips", params={"a": "base", "b": "sft", "family": "eval", "metric": "acc",
                                                "run_a": "r1", "run_b": "r1"}).json()
    assert same_run == flips


def test_lineage_curves_compare_history(client: TestClient) -> None:
    lineage = client.get("/api/lineage").json()
    by_name = {n["model"]: n for n in lineage["nodes"]}
    assert by_name["sft"]["parent"] == by_name["base"]["id"] and by_name["base"]["families"] == ["eval", "other"]
    assert [c["step"] for c in by_name["sft"]["checkpoints"]] == [100, 200]
    assert client.get("/api/curves", params={"family": "eval", "metric": "acc"}).json() == [
        {"model": "sft", "run": "r1", "points": [[100, 0.6], [200, 0.7]]}]
    compare = client.get("/api/compare", params={"a": "base", "b": "sft"}).json()
    acc = next(d for d in compare["deltas"] if d["metric"] == "acc")
    assert acc["delta"] == 0.3 and acc["significant"] is True and acc["test"] == "mcnemar"
    history = client.get("/api/history", params={"model": "base", "family": "eval", "metric": "loss"}).json()
    assert [(e["action"], e["value"]) for e in history] == [("inserted", 2.0), ("overwritten", 1.9)]
    step = client.get("/api/history", params={"model": "sft", "family": "eval", "metric": "acc", "step": "200"}).json()
    assert [e["value"] for e in step] == [0.7]


def test_change_feed(client: TestClient, registry: Path) -> None:
    feed = client.get("/api/events").json()
    last = feed["last"]
    assert last == feed["events"][-1]["seq"]
    with LightMLHandle(registry, "r1") as h:
        h.log_model_metric("sft", "other", "acc", 0.2)
    new = client.get("/api/events", params={"after": last}).json()
    assert new["last"] == last + 1 and [e["type"] for e in new["events"]] == ["metric_inserted"]
    assert "other/acc = 0.2" in new["events"][0]["what"]


def test_excel_download(client: TestClient) -> None:
    response = client.get("/api/export")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Overview", "eval", "other", "History"]


@pytest.mark.parametrize("path, params, status, message", [
    ("/api/pivot", {"family": "nope"}, 404, "no family 'nope'"),
    ("/api/pivot", {"checkpoints": "abc"}, 400, "'checkpoints' must be 1 or 0"),
    ("/api/pivot", {"include_hidden": "2"}, 400, "'include_hidden' must be 1 or 0"),
    ("/api/pivot", {"run": "nope"}, 404, "run 'nope' not found"),
    ("/api/compare", {"a": "base"}, 400, "missing parameter 'b'"),
    ("/api/compare", {"a": "base", "b": "ghost"}, 404, "model 'ghost' not found"),
    ("/api/flips", {"a": "base", "b": "sft", "family": "eval"}, 400, "missing parameter 'metric'"),
    ("/api/flips", {"a": "base", "b": "sft", "family": "eval", "metric": "loss"}, 404, "no per-sample scores"),
    ("/api/flips", {"a": "base", "b": "sft", "family": "eval", "metric": "acc", "limit": "-3"}, 400,
     "must not be negative"),
    ("/api/flips", {"a": "base", "b": "sft", "family": "eval", "metric": "acc", "run_a": "nope"}, 404, "nope"),
    ("/api/history", {"model": "base", "family": "eval"}, 400, "missing parameter 'metric'"),
    ("/api/history", {"model": "base", "family": "eval", "metric": "acc", "step": "x"}, 400, "must be an integer"),
    ("/api/history", {"model": "ghost", "family": "eval", "metric": "acc"}, 404, "not found"),
    ("/api/events", {"after": "-1"}, 400, "must not be negative"),
    ("/api/curves", {"family": "eval"}, 400, "missing parameter 'metric'"),
    ("/api/curves", {"family": "nope", "metric": "acc"}, 404, "no family 'nope'"),
    ("/api/curves", {"family": "eval", "metric": "nope"}, 404, "no metric 'nope' in family 'eval'"),
    ("/api/history", {"model": "base", "family": "nope", "metric": "acc"}, 404, "no family 'nope'"),
    ("/api/history", {"model": "base", "family": "eval", "metric": "nope"}, 404, "no metric 'nope' in family 'eval'"),
    ("/api/history", {"model": XSS, "family": "other", "metric": "acc"}, 404, "has no value of other/acc"),
    ("/api/history", {"model": "sft", "family": "eval", "metric": "acc", "step": "7"}, 404, "at step 7"),
    ("/api/nothing", {}, 404, "Not Found"),
])
def test_bad_requests_get_json_errors(client: TestClient, path: str, params: dict, status: int, message: str) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_edits_need_the_pages_token(client: TestClient, registry: Path) -> None:
    body = {"model": "sft", "notes": "from the web"}
    assert client.post("/api/notes", json=body).status_code == 403
    assert client.post("/api/notes", json=body, headers={TOKEN_HEADER: "guess"}).status_code == 403
    token = token_of(client)
    response = client.post("/api/notes", json=body, headers={TOKEN_HEADER: token})
    assert response.json() == {"changed": True}
    assert client.post("/api/hidden", json={"model": "sft", "hidden": True}, headers={TOKEN_HEADER: token}).json() \
        == {"changed": True}
    assert client.post("/api/notes", content=b"not json", headers={TOKEN_HEADER: token}).status_code == 400
    ghost = {"model": "ghost", "notes": "x"}
    assert client.post("/api/notes", json=ghost, headers={TOKEN_HEADER: token}).status_code == 404
    assert client.get("/api/notes").status_code == 405  # reads never change anything
    with LightMLHandle(registry) as h:
        history = h.model_history("sft")
    assert [e["type"] for e in history][-2:] == ["model_notes_set", "model_hidden_set"]
    assert history[-1]["actor"].endswith("(web)")
    other = TestClient(create_app(registry), base_url=LOCAL)
    assert token_of(other) != token  # one token per process (per app)


def test_not_a_registry(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        create_app(tmp_path / "missing.db")


def test_pivot_follows_every_change(client: TestClient, registry: Path) -> None:
    before = client.get("/api/pivot", params={"family": "eval"}).json()
    assert client.get("/api/pivot", params={"family": "eval"}).json() == before  # unchanged log: same answer
    with LightMLHandle(registry, "r1") as h:
        h.log_model_metric("sft", "eval", "acc", 0.81, force=True)
    after = {r["model"]: r["values"] for r in client.get("/api/pivot", params={"family": "eval"}).json()["rows"]}
    assert after["sft"]["eval"]["acc"] == 0.81
    with LightMLHandle(registry, "r1") as h:
        h.set_hidden("sft")
    assert "sft" not in {r["model"] for r in client.get("/api/pivot", params={"family": "eval"}).json()["rows"]}


@pytest.mark.parametrize("path, body", [("/api/notes", {"model": "sft", "notes": "x"}),
                                        ("/api/hidden", {"model": "sft", "hidden": True})])
def test_a_locked_registry_answers_503_not_500(client: TestClient, registry: Path, path: str, body: dict) -> None:
    from lightml.log import store

    token = token_of(client)
    holder = store.connect(registry)
    store.begin_immediate(holder)  # another process holds the write lock
    try:
        from lightml.handle import LightMLHandle as Handle

        original = Handle.__init__

        def quick(self, *args, **kwargs):  # do not wait 30 s for the lock in a test
            kwargs["timeout"] = 0.2
            original(self, *args, **kwargs)

        Handle.__init__ = quick
        try:
            response = client.post(path, json=body, headers={TOKEN_HEADER: token})
        finally:
            Handle.__init__ = original
        assert response.status_code == 503 and "locked" in response.json()["error"]
        assert client.get("/api/pivot", params={"family": "eval"}).status_code == 200  # reads go on
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_curves_of_a_metric_no_checkpoint_has(client: TestClient) -> None:
    # eval/loss exists (on models) but no checkpoint has it: an empty chart, not an error
    response = client.get("/api/curves", params={"family": "eval", "metric": "loss"})
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize("base_url, status", [
    ("http://127.0.0.1:5050", 200), ("http://localhost:8000", 200), ("http://[::1]:5050", 200),
    ("http://LOCALHOST", 200), ("http://lab.example:5050", 200),  # the configured --host
    ("http://evil.example:5050", 400), ("http://127.0.0.1.evil.example", 400), ("http://testserver", 400),
])
def test_only_local_and_configured_host_names_are_answered(registry: Path, base_url: str, status: int) -> None:
    # DNS rebinding: a page on evil.example re-points its name to 127.0.0.1; the browser then
    # sends "Host: evil.example", which the dashboard must refuse.
    client = TestClient(create_app(registry, host="lab.example"), base_url=base_url)
    assert client.get("/").status_code == status
    response = client.get("/api/runs")
    assert response.status_code == status
    if status == 400:
        assert "answers only to 127.0.0.1" in response.json()["error"]


def test_an_ipv6_configured_host_is_answered(registry: Path) -> None:
    client = TestClient(create_app(registry, host="fd00::5"), base_url="http://[fd00::5]:5050")
    assert client.get("/api/runs").status_code == 200


@pytest.mark.parametrize("origin, status", [
    (None, 200), ("http://127.0.0.1:5050", 200), ("http://localhost:9999", 200), ("http://[::1]:5050", 200),
    ("http://evil.example", 403), ("null", 403), ("http://127.0.0.1.evil.example:5050", 403), ("not a url", 403),
])
def test_posts_from_a_foreign_origin_are_refused(client: TestClient, origin: str | None, status: int) -> None:
    headers = {TOKEN_HEADER: token_of(client)}
    if origin is not None:
        headers["Origin"] = origin
    response = client.post("/api/notes", json={"model": "sft", "notes": "n"}, headers=headers)
    assert response.status_code == status, response.text
    if status == 403:
        assert "origin" in response.json()["error"]


def test_a_non_ascii_token_is_refused_not_a_crash(client: TestClient) -> None:
    token = token_of(client)
    for value in ("tökén".encode(), (token[:-1] + "é").encode("latin-1")):
        response = client.post("/api/notes", json={"model": "sft", "notes": "x"}, headers={TOKEN_HEADER: value})
        assert response.status_code == 403 and "token" in response.json()["error"]


@pytest.mark.parametrize("body, message", [
    ({"model": "sft", "hidden": "false"}, "'hidden' must be true or false"),
    ({"model": "sft", "hidden": 0}, "'hidden' must be true or false"),
    ({"model": "sft", "hidden": None}, "'hidden' must be true or false"),
    ({"model": "sft"}, "'hidden' must be true or false"),
    ({"model": "sft", "hidden": True, "run": 1}, "'run' must be a string"),
])
def test_hidden_takes_only_json_booleans(client: TestClient, body: dict, message: str) -> None:
    response = client.post("/api/hidden", json=body, headers={TOKEN_HEADER: token_of(client)})
    assert response.status_code == 400 and message in response.json()["error"]
    assert "sft" in {r["model"] for r in client.get("/api/pivot", params={"family": "eval"}).json()["rows"]}


def test_hide_and_show_again(client: TestClient) -> None:
    headers = {TOKEN_HEADER: token_of(client)}

    def models() -> set[str]:
        return {r["model"] for r in client.get("/api/pivot", params={"family": "eval"}).json()["rows"]}

    hidden = client.post("/api/hidden", json={"model": "sft", "run": "r1", "hidden": True}, headers=headers)
    assert hidden.json() == {"changed": True}
    assert "sft" not in models()
    shown = client.post("/api/hidden", json={"model": "sft", "hidden": False}, headers=headers)
    assert shown.json() == {"changed": True}
    assert "sft" in models()


def test_notes_must_be_text_or_null(client: TestClient) -> None:
    headers = {TOKEN_HEADER: token_of(client)}
    response = client.post("/api/notes", json={"model": "sft", "notes": 3}, headers=headers)
    assert response.status_code == 400 and "'notes' must be a string or null" in response.json()["error"]
    assert client.post("/api/notes", json={"model": "sft", "notes": None}, headers=headers).status_code == 200


def test_pivot_can_include_hidden_models_with_notes(client: TestClient) -> None:
    headers = {TOKEN_HEADER: token_of(client)}
    client.post("/api/notes", json={"model": "sft", "notes": "lr 3e-4"}, headers=headers)
    pivot = client.get("/api/pivot", params={"family": "eval", "include_hidden": "1"}).json()
    rows = {r["model"]: r for r in pivot["rows"]}
    assert rows["hidden-one"]["hidden"] is True and rows["sft"]["hidden"] is False
    assert rows["sft"]["notes"] == "lr 3e-4" and rows["base"]["notes"] is None


def test_checkpoints_without_values_in_the_family_are_left_out(client: TestClient, registry: Path) -> None:
    with LightMLHandle(registry, "r1") as h:
        h.register_checkpoint("sft", 300, "/ckpt/300")  # no metrics at all
        cid = h.register_checkpoint("sft", 400, "/ckpt/400")
        h.log_checkpoint_metric(cid, "other", "acc", 0.3)  # a metric of another family only
    steps = [r["step"] for r in client.get("/api/pivot", params={"family": "eval", "checkpoints": "1"}).json()["rows"]
             if r["model"] == "sft"]
    assert steps == [None, 100, 200]
    everything = client.get("/api/pivot", params={"checkpoints": "1"}).json()["rows"]
    assert [r["step"] for r in everything if r["model"] == "sft"] == [None, 100, 200, 400]


def test_a_failed_export_leaves_no_temporary_folder(registry: Path, tmp_path: Path, monkeypatch) -> None:
    import tempfile

    import lightml.report.export

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def half_written(db, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    client = TestClient(create_app(registry), base_url=LOCAL, raise_server_exceptions=False)
    assert client.get("/api/export").status_code == 200
    assert list(temp.iterdir()) == []  # the successful download cleans up too
    monkeypatch.setattr(lightml.report.export, "export_excel", half_written)
    assert client.get("/api/export").status_code == 500
    assert list(temp.iterdir()) == []


def test_pivot_columns_are_those_of_the_rows_shown(tmp_path: Path) -> None:
    db = tmp_path / "cols.db"
    with LightMLHandle(db, "r1") as h:
        h.register_model("a", "org/a")
        h.log_model_metric("a", "eval", "acc", 0.5)
        cid = h.register_checkpoint("a", 10, "/ckpt/a-10")
        h.log_checkpoint_metric(cid, "eval", "step_only", 0.1)
        h.register_model("secret", "org/secret")
        h.log_model_metric("secret", "eval", "hidden_only", 0.9)
        h.set_hidden("secret")
    with LightMLHandle(db, "r2") as h:
        h.register_model("b", "org/b")
        h.log_model_metric("b", "eval", "r2_only", 0.3)
    client = TestClient(create_app(db), base_url=LOCAL)

    def columns(**params) -> list[str]:
        return [c["metric"] for c in client.get("/api/pivot", params=params).json()["columns"]]

    assert columns() == ["acc", "r2_only"]
    assert columns(run="r1") == ["acc"]
    assert columns(run="r1", checkpoints="1") == ["acc", "step_only"]
    assert columns(include_hidden="1") == ["acc", "hidden_only", "r2_only"]
    assert columns(family="eval", run="r2") == ["r2_only"]


def test_pivot_blocks_follow_metric_logs_deletes_and_restores(client: TestClient, registry: Path) -> None:
    def table(**params) -> dict:
        pivot = client.get("/api/pivot", params=params).json()
        return {"columns": [(c["family"], c["metric"]) for c in pivot["columns"]],
                "rows": {(r["model"], r["step"]): r["values"] for r in pivot["rows"]}}

    everything = table(checkpoints="1")  # every family's block is built now
    assert everything["rows"][("sft", 200)] == {"eval": {"acc": 0.7}}
    with LightMLHandle(registry, "r1") as h:
        h.log_model_metric("base", "other", "f1", 0.4)  # a change to one family ...
        h.log_model_metric("base", "new_family", "x", 1.0)  # ... and a family never seen
        h.log_checkpoint_metric(h.find_checkpoint("sft", 100), "other", "acc", 0.2)
    after = table(checkpoints="1")
    assert after["rows"][("base", None)] == {"eval": {"acc": 0.5, "loss": 1.9}, "new_family": {"x": 1.0},
                                             "other": {"acc": 0.1, "f1": 0.4}}
    assert after["rows"][("sft", 100)] == {"eval": {"acc": 0.6}, "other": {"acc": 0.2}}
    assert ("new_family", "x") in after["columns"] and ("other", "f1") in after["columns"]
    assert table(family="other")["rows"][("base", None)] == {"other": {"acc": 0.1, "f1": 0.4}}
    with LightMLHandle(registry, "r1") as h:
        h.delete_model("base")
    gone = table()
    assert ("base", None) not in gone["rows"] and ("new_family", "x") not in gone["columns"]
    with LightMLHandle(registry, "r1") as h:
        h.restore_model("base")
    assert table()["rows"][("base", None)] == after["rows"][("base", None)]


@pytest.mark.sqlite_only("the registry file replaced under the running dashboard")
def test_pivot_after_a_replay_or_a_replaced_file_shows_the_file(client: TestClient, registry: Path,
                                                                tmp_path: Path) -> None:
    import sqlite3

    from lightml.log.replay import replay

    def acc_of(model: str) -> float:
        rows = client.get("/api/pivot", params={"family": "eval"}).json()["rows"]
        return next(r["values"]["eval"]["acc"] for r in rows if r["model"] == model)

    assert acc_of("base") == 0.5
    with sqlite3.connect(registry) as conn:  # a damaged read table (the log is intact) ...
        conn.execute(f"INSERT INTO {MARKER_TABLE} VALUES (1)")  # past the guard, as only LightML writes
        conn.execute("UPDATE metrics SET value = 0.1 WHERE family = 'eval' AND metric_name = 'acc' "
                     "AND model_id = (SELECT id FROM model WHERE model_name = 'base')")
        conn.execute(f"DELETE FROM {MARKER_TABLE}")
    replay(registry, force=True)  # ... repaired from the log (force: drop the damaged row); the position stays
    assert acc_of("base") == 0.5
    # the file replaced by a copy whose log went another way after a common start
    copy = tmp_path / "copy.db"
    with sqlite3.connect(registry) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with LightMLHandle(copy, "r1") as h:
        h.log_model_metric("base", "eval", "acc", 0.9, force=True)
    with LightMLHandle(registry, "r1") as h:  # the original moves on too, one event
        h.log_model_metric("base", "eval", "acc", 0.7, force=True)
    assert acc_of("base") == 0.7
    with LightMLHandle(copy, "r1") as h:  # the copy gets as many events, then replaces it
        h.log_model_metric("sft", "other", "x", 0.3)
    for suffix in ("-wal", "-shm"):
        Path(f"{registry}{suffix}").unlink(missing_ok=True)
    copy.replace(registry)
    assert acc_of("base") == 0.9


BEYOND_64_BITS = str(2**63)  # one more than SQLite's largest INTEGER


@pytest.mark.parametrize("path, params", [
    ("/api/history", {"model": "sft", "family": "eval", "metric": "acc", "step": BEYOND_64_BITS}),
    ("/api/history", {"model": "sft", "family": "eval", "metric": "acc", "step": str(10**400)}),
    ("/api/events", {"after": BEYOND_64_BITS}),
    ("/api/events", {"after": "9" * 5000}),  # more digits than int() takes
])
def test_integers_beyond_64_bits_are_json_400s(registry: Path, path: str, params: dict) -> None:
    client = TestClient(create_app(registry), base_url=LOCAL, raise_server_exceptions=False)
    response = client.get(path, params=params)
    assert response.status_code == 400 and response.headers["content-type"] == "application/json", response.text
    error = response.json()["error"]
    assert "between 0 and 9223372036854775807" in error or "must be an integer" in error
    assert len(error) < 200  # the number is not echoed in full


def test_the_largest_64_bit_integer_is_still_an_answer(client: TestClient) -> None:
    assert client.get("/api/events", params={"after": str(2**63 - 1)}).json()["events"] == []
    response = client.get("/api/history", params={"model": "sft", "family": "eval", "metric": "acc",
                                                  "step": str(2**63 - 1)})
    assert response.status_code == 404 and "at step 9223372036854775807" in response.json()["error"]


def notes_of(registry: Path | str, model: str) -> str | None:
    from lightml.log import store

    conn = store.connect_readonly(registry)
    try:
        return conn.execute("SELECT notes FROM model WHERE model_name = ?", (model,)).fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/api/notes", "/api/hidden"])
def test_deeply_nested_and_oversized_bodies_are_json_4xx(client: TestClient, registry: Path, path: str) -> None:
    token = {TOKEN_HEADER: token_of(client)}
    deep = b'{"model": "sft", "notes": ' + b"[" * 100_000 + b"]" * 100_000 + b', "hidden": true}'
    response = client.post(path, content=deep, headers=token)
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]
    big = b'{"model": "sft", "hidden": true, "notes": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = client.post(path, content=big, headers=token)
    assert response.status_code == 413 and "larger than" in response.json()["error"]

    def chunks():  # no Content-Length: refused while it streams in
        yield b'{"model": "sft", "hidden": true, "notes": "'
        for _ in range(300):
            yield b"y" * 10_000
        yield b'"}'
    response = client.post(path, content=chunks(), headers=token)
    assert response.status_code == 413
    assert notes_of(registry, "sft") is None and "sft" in {r["model"] for r in client.get("/api/pivot").json()["rows"]}


def test_a_long_note_under_the_limit_is_kept(client: TestClient, registry: Path) -> None:
    note = "n" * 500_000
    response = client.post("/api/notes", json={"model": "sft", "notes": note}, headers={TOKEN_HEADER: token_of(client)})
    assert response.json() == {"changed": True} and notes_of(registry, "sft") == note


@pytest.mark.parametrize("path, body", [
    ("/api/notes", {"model": "sft", "notes": "x"}), ("/api/hidden", {"model": "sft", "hidden": True}),
    ("/api/rename", {"model": "sft", "name": "sft-2"}), ("/api/parent", {"model": "sft", "parent": None}),
    ("/api/delete", {"model": "sft", "confirm": "sft"}), ("/api/restore", {"model": "gone"}),
    ("/api/items/save", {"kind": "chart", "name": "c", "spec": {"type": "bar"}}),
    ("/api/items/remove", {"id": 1}), ("/api/items/reorder", {"kind": "chart", "ids": []}),
])
@pytest.mark.parametrize("read_only", ["file", "folder"])
@pytest.mark.sqlite_only("a read-only file or folder")
def test_edits_of_a_read_only_registry_are_refused_with_409(client: TestClient, registry: Path, path: str,
                                                            body: dict, read_only: str) -> None:
    # chmod a-w: root (the tests' user) could still write, but the dashboard honours it
    target = registry if read_only == "file" else registry.parent
    mode = target.stat().st_mode
    before = registry.read_bytes()
    target.chmod(mode & ~0o222)
    try:
        response = client.post(path, json=body, headers={TOKEN_HEADER: token_of(client)})
        assert client.get("/api/pivot", params={"family": "eval"}).status_code == 200  # reads go on
    finally:
        target.chmod(mode)
    assert response.status_code == 409, response.text
    assert f"the registry is read-only (its {read_only}" in response.json()["error"]
    assert registry.read_bytes() == before


@pytest.mark.tampered
@pytest.mark.sqlite_only("the registry file overwritten with bytes that are not SQLite")
def test_an_unexpected_error_is_a_short_json_500(registry: Path) -> None:
    client = TestClient(create_app(registry), base_url=LOCAL, raise_server_exceptions=False)
    for leftover in registry.parent.glob(registry.name + "-*"):
        leftover.unlink()
    registry.write_bytes(b"not a registry any more " * 400)  # replaced while the dashboard runs
    for path in ("/api/runs", "/api/lineage", "/api/pivot", "/api/events"):
        response = client.get(path)
        assert response.status_code == 500 and response.headers["content-type"] == "application/json", response.text
        assert response.json() == {"error": "internal error (DatabaseError: file is not a database)"}


def test_the_pivot_takes_a_filter_expression_and_answers_a_bad_one_with_a_json_400(client: TestClient) -> None:
    everyone = {r["model"] for r in client.get("/api/pivot").json()["rows"]}
    assert {r["model"] for r in client.get("/api/pivot", params={"where": "model = 'base'"}).json()["rows"]} == {"base"}
    assert {r["model"] for r in client.get("/api/pivot", params={"where": "not model = 'base'"}).json()["rows"]} \
        == everyone - {"base"}
    response = client.get("/api/pivot", params={"where": "params.lr <"})
    assert response.status_code == 400 and "ends too early" in response.json()["error"]
