"""The dashboard's edits of models (rename, reparent, delete with its name typed again,
restore) and its saved items (charts, views, summary sets): token-guarded POSTs, each one
event with origin "web", refused with a JSON 4xx that leaves the registry as it was; and the
reads behind them (a model's card, the deleted models, a summary set's averages)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lightml.handle import LightMLHandle
from lightml.web.app import TOKEN_HEADER, create_app

LOCAL = "http://127.0.0.1:5050"
XSS = '<img src=x onerror=alert(1)>'


@pytest.fixture
def registry(db: Path) -> Path:
    with LightMLHandle(db, "r1") as h:
        h.register_model("base", "org/base", params={"size": 1})
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model(XSS, "org/xss", parent_name="sft")
        h.log_model_metric("base", "eval", "acc", 0.5, scores=[1, 0] * 50, settings={"num_fewshot": 5})
        h.log_model_metric("base", "eval", "acc_stderr", 0.05)
        h.log_model_metric("sft", "eval", "acc", 0.8, scores=[1] * 80 + [0] * 20, settings={"num_fewshot": 0})
        h.log_model_metric("base", "other", "f1", 0.3)
        h.log_model_metric("sft", "other", "f1", 0.4, scores=[0.4] * 10)
        h.register_checkpoint("sft", 100, "/ckpt/100")
        h.set_notes("sft", "tuned on tulu")
    return db


@pytest.fixture
def client(registry: Path) -> TestClient:
    return TestClient(create_app(registry), base_url=LOCAL)


def token(client: TestClient) -> str:
    page = client.get("/").text
    start = page.index('name="lightml-token" content="') + len('name="lightml-token" content="')
    return page[start:page.index('"', start)]


def post(client: TestClient, path: str, body: dict, token_given: bool = True):
    return client.post(path, json=body, headers={TOKEN_HEADER: token(client)} if token_given else {})


def events(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT type, origin FROM events ORDER BY seq").fetchall()


def test_items_are_saved_renamed_reordered_removed_and_restored_as_web_events(client: TestClient,
                                                                               registry: Path) -> None:
    before = len(events(registry))
    spec = {"type": "grouped_bar", "metrics": [["eval", "acc"], ["other", "f1"]], "models": [1, 2], "error_bars": True}
    first = post(client, "/api/items/save", {"kind": "chart", "name": "acc and f1", "spec": spec}).json()["id"]
    second = post(client, "/api/items/save", {"kind": "chart", "name": XSS, "spec": {"type": "radar"}}).json()["id"]
    assert [(i["name"], i["spec"]) for i in client.get("/api/items", params={"kind": "chart"}).json()] == \
        [("acc and f1", spec), (XSS, {"type": "radar"})]
    # saving the same spec again changes nothing; a rename is one event
    assert post(client, "/api/items/save", {"kind": "chart", "name": "acc and f1", "spec": spec, "id": first}).json() \
        == {"id": first}
    post(client, "/api/items/save", {"kind": "chart", "name": "two metrics", "spec": spec, "id": first})
    assert post(client, "/api/items/reorder", {"kind": "chart", "ids": [second, first]}).json() == {"changed": True}
    assert [i["name"] for i in client.get("/api/items", params={"kind": "chart"}).json()] == [XSS, "two metrics"]
    assert post(client, "/api/items/remove", {"id": second}).json() == {"changed": True}
    assert [i["id"] for i in client.get("/api/items", params={"kind": "chart", "removed": "1"}).json()] == [second]
    assert post(client, "/api/items/restore", {"id": second}).json() == {"changed": True}
    assert [i["name"] for i in client.get("/api/items", params={"kind": "chart"}).json()] == ["two metrics", XSS]
    new = events(registry)[before:]
    assert new == [("dashboard_item_saved", "web")] * 3 + [("dashboard_items_reordered", "web"),
                                                           ("dashboard_item_removed", "web"),
                                                           ("dashboard_item_restored", "web")]


@pytest.mark.parametrize("body, status, message", [
    ({"kind": "chart", "name": "c", "spec": {"type": "pie"}}, 400, "'type' must be one of"),
    ({"kind": "chart", "name": "c", "spec": {"type": "bar", "colour": "red"}}, 400, "has no key 'colour'"),
    ({"kind": "chart", "name": "c", "spec": {"type": "bar", "models": ["base"]}}, 400, "must be a model id"),
    ({"kind": "chart", "name": "c", "spec": {"type": "bar", "metrics": [["eval"]]}}, 400, "[family, metric]"),
    ({"kind": "chart", "name": "c", "spec": {"type": "bar", "x": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}},
     400, "nested more than"),
    ({"kind": "chart", "name": "c", "spec": {"type": "bar", "where": "w" * 5000}}, 400, "at most 4,000"),
    ({"kind": "chart", "name": "c", "spec": [1]}, 400, "must be a JSON object"),
    ({"kind": "board", "name": "c", "spec": {}}, 400, "kind must be one of"),
    ({"kind": "view", "name": "", "spec": {}}, 400, "must not be empty"),
    ({"kind": "view", "name": "x" * 201, "spec": {}}, 400, "at most 200"),
    ({"kind": "view", "name": "v", "spec": {"sort_dir": 2}}, 400, "must be one of 1, -1"),
    ({"kind": "summary", "name": "s", "spec": {}}, 400, "needs 'metrics'"),
    ({"kind": "chart", "name": "r", "spec": {"type": "radar", "metrics": [["eval", "acc"], ["other", "f1"]]}}, 400,
     "a radar needs 3 metrics or more"),
    ({"kind": "chart", "name": "c", "spec": {"type": "bar"}, "id": 99}, 404, "no dashboard item #99"),
    ({"kind": "chart", "name": "c", "spec": {"type": "bar"}, "id": "1"}, 400, "positive integer"),
])
def test_a_bad_item_is_refused_and_nothing_is_written(client: TestClient, registry: Path, body: dict, status: int,
                                                      message: str) -> None:
    before = events(registry)
    response = post(client, "/api/items/save", body)
    assert response.status_code == status and message in response.json()["error"], response.text
    assert events(registry) == before


def test_item_names_are_unique_among_live_items_of_a_kind(client: TestClient, registry: Path) -> None:
    first = post(client, "/api/items/save", {"kind": "view", "name": "dpo", "spec": {"where": "tag:dpo"}}).json()["id"]
    taken = post(client, "/api/items/save", {"kind": "view", "name": "dpo", "spec": {}})
    assert taken.status_code == 409 and "already exists" in taken.json()["error"]
    # another kind may use the name; once removed, the name is free, and its restore is refused while taken
    assert post(client, "/api/items/save", {"kind": "chart", "name": "dpo", "spec": {"type": "bar"}}).status_code == 200
    post(client, "/api/items/remove", {"id": first})
    assert post(client, "/api/items/save", {"kind": "view", "name": "dpo", "spec": {}}).status_code == 200
    refused = post(client, "/api/items/restore", {"id": first})
    assert refused.status_code == 409 and "choose another name" in refused.json()["error"]
    # a removed item is restored before it is changed; a reorder names every live item once
    assert post(client, "/api/items/save", {"kind": "view", "name": "x", "spec": {}, "id": first}).status_code == 409
    assert post(client, "/api/items/reorder", {"kind": "view", "ids": [first]}).status_code == 400
    assert post(client, "/api/items/reorder", {"kind": "view", "ids": [3, 3]}).status_code == 400


def test_item_writes_need_the_token(client: TestClient, registry: Path) -> None:
    before = events(registry)
    for path, body in (("/api/items/save", {"kind": "view", "name": "v", "spec": {}}), ("/api/items/remove", {"id": 1}),
                       ("/api/rename", {"model": "sft", "name": "x"}), ("/api/delete", {"model": "sft", "confirm": "sft"}),
                       ("/api/parent", {"model": "sft", "parent": None}), ("/api/restore", {"model": "sft"})):
        assert post(client, path, body, token_given=False).status_code == 403, path
    assert events(registry) == before


def test_summary_sets_average_their_metrics_with_an_interval(client: TestClient) -> None:
    post(client, "/api/items/save", {"kind": "summary", "name": "avg", "spec": {"metrics": [["eval", "acc"], ["other", "f1"]]}})
    answer = client.get("/api/summary", params={"id": 1}).json()
    rows = {row["model"]: row for row in answer["rows"]}
    assert answer["name"] == "avg" and set(rows) == {"base", "sft", XSS} - {XSS}  # (the XSS model has no values)
    # sft: acc's stderr from its 100 0/1 scores, f1's from its 10 equal scores (0): independent metrics
    se_acc = math.sqrt(0.8 * 0.2 * 100 / 99 / 100)
    assert rows["sft"]["mean"] == pytest.approx(0.6)
    assert rows["sft"]["half_width"] == pytest.approx(1.959963984540054 * math.sqrt(se_acc ** 2 + 0) / 2)
    # base: acc has a logged stderr, f1 none and no scores: no interval, but the mean
    assert rows["base"]["mean"] == pytest.approx(0.4) and rows["base"]["half_width"] is None
    assert client.get("/api/summary", params={"id": 9}).status_code == 404


def test_the_model_card_of_the_lineage_panel(client: TestClient) -> None:
    card = client.get("/api/model", params={"id": 2}).json()
    assert card["model"] == "sft" and card["path"] == "org/sft" and card["notes"] == "tuned on tulu"
    assert card["parent"] == {"id": 1, "model": "base", "run": "r1"}
    assert card["children"] == [{"id": 3, "model": XSS, "run": "r1"}]
    assert card["checkpoints"] == [100] and card["families"] == ["eval", "other"]
    assert card["settings"] == {"num_fewshot": [0]}
    assert card["last_change"]["what"] == "model notes set: notes: 'tuned on tulu'"
    assert card["last_change"]["actor"].endswith("(api)")
    assert client.get("/api/model", params={"id": 42}).status_code == 404


def test_rename_reparent_delete_and_restore_from_the_page(client: TestClient, registry: Path) -> None:
    assert post(client, "/api/rename", {"model": "sft", "run": "r1", "name": "sft-v1"}).json() == {"changed": True}
    taken = post(client, "/api/rename", {"model": "sft-v1", "name": "base"})
    assert taken.status_code == 409 and "already exists" in taken.json()["error"]
    cycle = post(client, "/api/parent", {"model": "base", "parent": "sft-v1"})
    assert cycle.status_code == 409 and "cycle" in cycle.json()["error"]
    assert post(client, "/api/parent", {"model": XSS, "parent": "base"}).json() == {"changed": True}
    assert post(client, "/api/parent", {"model": XSS, "parent": None}).json() == {"changed": True}
    # a delete needs the name typed again, as the CLI asks y/N
    unconfirmed = post(client, "/api/delete", {"model": "sft-v1", "confirm": "sft"})
    assert unconfirmed.status_code == 400 and "repeat its name" in unconfirmed.json()["error"]
    deleted = post(client, "/api/delete", {"model": "sft-v1", "run": "r1", "confirm": "sft-v1"}).json()
    assert deleted["changed"] and f"lightml restore --db {registry} --model sft-v1 --run r1" in deleted["restore"]
    assert [d["model"] for d in client.get("/api/deleted").json()] == ["sft-v1"]
    assert post(client, "/api/restore", {"model": "sft-v1", "run": "r1"}).json() == {"changed": True, "id": 2}
    assert client.get("/api/deleted").json() == []
    again = post(client, "/api/restore", {"model": "sft-v1"})  # nothing left to restore
    assert again.status_code == 409 and "restored already" in again.json()["error"]
    assert post(client, "/api/restore", {"model": "never-was"}).status_code == 404
    with LightMLHandle(registry, "r1") as h:
        assert h.metric_exists("sft-v1", "eval", "acc")
    web = [t for t, origin in events(registry) if origin == "web"]
    assert web == ["model_renamed", "model_reparented", "model_reparented", "model_deleted", "model_restored"]


def test_items_survive_replay_and_the_api_reads_what_the_page_saved(registry: Path) -> None:
    from lightml import replay

    with LightMLHandle(registry, "r1") as h:
        chart = h.save_dashboard_item("chart", "arc", {"type": "scatter", "x": ["params", "size"], "y": ["eval", "acc"]})
        h.save_dashboard_item("summary", "avg", {"metrics": [["eval", "acc"]]})
        h.remove_dashboard_item(chart)
        before = h.dashboard_items(), h.dashboard_items("chart", removed=True)
    replay(registry)
    with LightMLHandle(registry, "r1") as h:
        assert (h.dashboard_items(), h.dashboard_items("chart", removed=True)) == before
        assert json.dumps(before[1][0]["spec"]) == '{"x": ["params", "size"], "y": ["eval", "acc"], "type": "scatter"}' \
            or before[1][0]["spec"] == {"type": "scatter", "x": ["params", "size"], "y": ["eval", "acc"]}


def test_settings_marks_name_the_values_whose_decisive_settings_differ(registry: Path, client: TestClient) -> None:
    with LightMLHandle(registry, "r1") as h:
        h.log_model_metric(XSS, "eval", "acc", 0.6, settings={"num_fewshot": 5, "limit": 100})
    marks = client.get("/api/settings-marks", params={"family": "eval"}).json()
    # base and XSS were 5-shot, sft 0-shot; XSS also had a limit: each against the most common set
    assert marks["acc"]["keys"] == ["num_fewshot", "limit"]
    assert marks["acc"]["models"] == {"2": "num_fewshot 0 (most: 5)", "3": "limit 100 (most: -)"}
    assert client.get("/api/settings-marks", params={"family": "other"}).json() == {}


def test_the_deleted_list_offers_what_a_restore_by_name_brings_back(client: TestClient, registry: Path) -> None:
    with LightMLHandle(registry, "r1") as h:
        h.register_model("x", "/x")
        h.delete_model("x")
        h.register_model("x", "/x2")  # the name again, then deleted again: only this delete is restorable
        latest = h.delete_model("x").seq
    assert [(d["model"], d["seq"]) for d in client.get("/api/deleted").json()] == [("x", latest)]
    assert post(client, "/api/restore", {"model": "x", "run": "r1"}).status_code == 200
    assert client.get("/api/deleted").json() == []


def test_a_view_sorted_by_its_summary_column_is_saved_and_odd_specs_are_refused(client: TestClient) -> None:
    assert post(client, "/api/items/save", {"kind": "view", "name": "v", "spec": {"summary": 1, "sort_by": "summary",
                                                                               "sort_dir": -1}}).status_code == 200
    bad = post(client, "/api/items/save", {"kind": "view", "name": "w", "spec": {"sort_by": "__proto__"}})
    assert bad.status_code == 400 and "must be one of" in bad.json()["error"]
    deep = "x"
    for _ in range(900):
        deep = [deep]
    nested = post(client, "/api/items/save", {"kind": "chart", "name": "c", "spec": {"type": "bar", "where": deep}})
    assert nested.status_code == 400 and "nested more than" in nested.json()["error"]
    surrogate = client.post("/api/items/save", content=b'{"kind": "view", "name": "s", "spec": {"where": "\\ud800"}}',
                            headers={"X-LightML-Token": token(client), "Content-Type": "application/json"})
    assert surrogate.status_code == 400 and "lone surrogate" in surrogate.json()["error"]


def test_settings_marks_count_the_models_the_table_shows(registry: Path, client: TestClient) -> None:
    with LightMLHandle(registry, "r2") as h:  # another run, all 0-shot: a majority there, not in r1
        for name in ("a", "b", "c"):
            h.register_model(name, f"/{name}")
            h.log_model_metric(name, "eval", "acc", 0.5, settings={"num_fewshot": 0})
    everyone = client.get("/api/settings-marks", params={"family": "eval"}).json()
    in_r1 = client.get("/api/settings-marks", params={"family": "eval", "run": "r1"}).json()
    assert "1" in everyone["acc"]["models"]  # base, 5-shot, against the 0-shot majority of both runs
    assert in_r1["acc"]["models"] == {"2": "num_fewshot 0 (most: 5)"}  # in r1 alone: base and sft, 1 to 1
