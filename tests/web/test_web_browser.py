"""The dashboard in real headless Chromium (Debian's chromium, driven by playwright).

Skipped, with the reason, where Chromium or the playwright package is missing; .ci/run
installs both. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from browsing import XSS, open_page, require_browser, serve, shot  # tests/web/browsing.py
from lightml.handle import LightMLHandle

sync_api = require_browser()


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("web") / "reg.db"
    with LightMLHandle(db, "pretrain") as h:
        h.register_model("base", "org/base")
        h.log_model_metric("base", "reasoning", "arc", 0.30, scores=[1] * 30 + [0] * 70)
        h.log_model_metric("base", "reasoning", "loss", 2.1)
        h.log_model_metric("base", "knowledge", "mmlu", 0.40)
    with LightMLHandle(db, "sft") as h:
        h.register_model("sft", "org/sft", parent_name="base")
        h.log_model_metric("sft", "reasoning", "arc", 0.45, scores=[1] * 45 + [0] * 55)
        h.log_model_metric("sft", "reasoning", "loss", 1.8)
        for step, value in ((100, 0.35), (200, 0.41)):
            cid = h.register_checkpoint("sft", step, f"/ckpt/sft-{step}")
            h.log_checkpoint_metric(cid, "reasoning", "arc", value)
        h.register_model(XSS, "org/xss", parent_name="sft")
        h.log_model_metric(XSS, "reasoning", "arc", 0.2)
        h.log_model_metric("sft", "reasoning", "arc", 0.46, scores=[1] * 46 + [0] * 54, force=True)
    return db


@pytest.fixture(scope="module")
def server(registry: Path):
    with serve(registry) as url:
        yield url


@pytest.fixture
def page(browser, server):
    with open_page(browser, server) as page:
        yield page


@pytest.fixture(scope="module")
def odd_registry(tmp_path_factory) -> Path:
    """Names that are also Object.prototype's property names, and a model to edit."""
    db = tmp_path_factory.mktemp("odd") / "odd.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("alpha", "org/alpha")
        h.log_model_metric("alpha", "reasoning", "arc", 0.3)
        h.register_model("odd", "org/odd")
        h.log_metrics("odd", {"__proto__": {"toString": 0.5}, "reasoning": {"constructor": 0.7}})
    return db


@pytest.fixture
def odd_page(browser, odd_registry: Path):
    with serve(odd_registry) as url, open_page(browser, url) as page:
        yield page


def model_order(page) -> list[str]:
    return page.eval_on_selector_all("#pivot tbody tr:not([hidden]) td.model-name", "cells => cells.map(c => c.textContent)")


def test_table_tabs_sort_filter_checkpoints(page) -> None:
    # the overview first, and open; then the families, in natural order
    assert page.locator("#family-tabs button").all_text_contents() == ["All families", "knowledge", "reasoning"]
    assert page.locator("#family-tabs button.active").text_content() == "All families"
    page.click("#family-tabs button[data-family='knowledge']")  # only base has a value there
    page.wait_for_function("document.querySelectorAll('#pivot tbody td.model-name').length === 1")
    assert model_order(page) == ["base"]
    page.check("#show-empty")
    assert sorted(model_order(page)) == sorted(["base", "sft", XSS])
    page.uncheck("#show-empty")
    page.click("#family-tabs button:has-text('reasoning')")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 5")
    headers = page.locator("#pivot thead th").all_text_contents()
    assert headers == ["✓", "Model", "Run", "arc", "loss"]
    page.click("#pivot thead th[data-sort='0']")  # arc, best first
    assert model_order(page) == ["sft", "base", XSS]
    page.click("#pivot thead th[data-sort='0']")
    assert model_order(page) == [XSS, "base", "sft"]
    # direction-aware colours: loss is lower-is-better
    assert page.locator("#pivot tbody tr:has(td.model-name:text-is('sft')) td.num").nth(1).get_attribute("class") \
        == "num best"
    page.fill("#search", "ba")
    assert model_order(page) == ["base"]
    page.fill("#search", "")
    page.check("#show-checkpoints")
    page.wait_for_selector("#pivot tr.checkpoint")
    assert page.locator("#pivot tr.checkpoint").count() == 2
    shot(page, "table")


def test_xss_name_is_text(page) -> None:
    cell = page.locator("#pivot td.model-name", has_text="onerror")
    assert cell.text_content() == XSS
    assert page.locator("#pivot img").count() == 0


def test_selection_syncs_with_graph_and_compare(page) -> None:
    for name in ("base", "sft"):
        page.locator(f"#pivot tbody tr:has(td.model-name:text-is('{name}')) input[type=checkbox]").check()
    assert page.locator("#selection-count").text_content() == "2 selected"
    page.click("button.view-tab[data-view='graph']")
    page.wait_for_selector("#graph .node")
    assert page.locator("#graph .node.selected").count() == 2
    assert page.locator("#graph .node text", has_text="onerror").text_content().startswith("<img")
    page.locator("#graph .node").first.hover()
    assert page.locator("#tooltip").is_visible() and "reasoning" in page.locator("#tooltip").text_content()
    page.fill("#graph-search", "sf")
    assert page.locator("#graph .node.highlight").count() == 1
    shot(page, "graph")
    page.click("#compare-selected")
    page.wait_for_selector("#modal:not([hidden]) table.compare")
    body = page.locator("#modal-body").text_content()
    assert "base vs sft" in page.locator("#modal-title").text_content()
    assert "✱" in body  # arc: 30% -> 46% on 100 paired samples, significant
    assert page.locator("#modal td.up").count() >= 2  # arc up and loss down are both improvements
    shot(page, "compare")
    # arc has scores on both sides: its name opens the documents that flipped
    page.click("#modal table.compare button.flips")
    page.wait_for_selector("#modal:not([hidden]) table.flips")
    assert page.locator("#modal-title").text_content() == "Flips of reasoning/arc: base vs sft"
    assert "16 of 100 documents differ: base better on 0, sft better on 16" in page.locator("#modal-body").text_content()
    assert page.locator("#modal table.flips tr.flip").count() == 16
    shot(page, "flips")
    page.click("#modal-body button.link >> text=back to the comparison")
    page.wait_for_selector("#modal:not([hidden]) table.compare")
    page.click("#modal-close")
    page.click("#clear-selected")
    assert page.locator("#selection-bar").is_hidden()


def test_metric_history_modal(page) -> None:
    page.click("#family-tabs button:has-text('reasoning')")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 5")
    page.locator("#pivot tbody tr:has(td.model-name:text-is('sft')) td.num").first.click()
    page.wait_for_selector("#modal:not([hidden]) table.history")
    rows = page.locator("#modal table.history tr").all_text_contents()
    assert len(rows) == 3 and "inserted" in rows[1] and "overwritten" in rows[2] and "0.4600" in rows[2]
    shot(page, "history")


def test_checkpoint_curves(page) -> None:
    page.click("button.view-tab[data-view='curves']")
    page.select_option("#curve-family", "reasoning")
    page.wait_for_selector("#curve-metric option[value='arc']", state="attached")
    # only what some checkpoint has: loss is a model-level value alone, no curve to draw
    assert [o.get_attribute("value") for o in page.locator("#curve-metric option").all()] == ["arc"]
    page.select_option("#curve-metric", "arc")
    page.wait_for_selector("#curves polyline")
    assert page.locator("#curves circle").count() == 2
    # Two loads in flight at once (the metric list loading the curves as a metric is picked)
    # draw one chart, not both answers.
    page.evaluate("""() => { const s = document.getElementById('curve-metric');
                             s.dispatchEvent(new Event('change')); s.dispatchEvent(new Event('change')); }""")
    page.wait_for_timeout(400)  # (both answers are in: a drawn second chart would show 4 dots)
    assert page.locator("#curves circle").count() == 2
    shot(page, "curves")


def test_live_update_keeps_sort_filter_and_selection(page, registry: Path) -> None:
    page.click("#family-tabs button:has-text('reasoning')")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 5")
    page.click("#pivot thead th[data-sort='0']")
    page.fill("#search", "sft")
    page.locator("#pivot tbody tr:has(td.model-name:text-is('sft')) input[type=checkbox]").check()
    with LightMLHandle(registry, "sft") as h:  # another process (here, this one) logs a new model
        h.register_model("sft-v2", "org/sft-v2", parent_name="sft")
        h.log_model_metric("sft-v2", "reasoning", "arc", 0.50)
    started = time.monotonic()
    page.wait_for_selector("#pivot td.model-name:text-is('sft-v2')", timeout=5_000)
    assert time.monotonic() - started < 2.5
    assert model_order(page) == ["sft-v2", "sft"]  # still sorted by arc, still filtered
    assert page.locator("#selection-count").text_content() == "1 selected"
    assert page.input_value("#search") == "sft"


def test_excel_download(page, tmp_path: Path) -> None:
    import openpyxl

    with page.expect_download() as info:
        page.click("#excel")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name == "reg_report.xlsx"
    assert "reasoning" in openpyxl.load_workbook(path).sheetnames


def row_of(page, name: str):
    return page.locator(f"#pivot tbody tr:has(td.model-name:text-is('{name}'))")


def test_names_like_object_properties_are_plain_names(odd_page) -> None:
    page = odd_page
    page.click("#family-tabs button:has-text('All families')")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 6")
    assert page.locator("#pivot thead th").all_text_contents()[3:] == ["__proto__toString", "reasoningarc",
                                                                      "reasoningconstructor"]
    # alpha has neither __proto__/toString nor reasoning/constructor: empty cells, not Object's properties
    assert row_of(page, "alpha").locator("td.num").all_text_contents() == ["—", "0.3000", "—"]
    assert row_of(page, "odd").locator("td.num").all_text_contents() == ["0.5000", "—", "0.7000"]


def model_row(db: Path, name: str) -> tuple:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT notes, hidden FROM model WHERE model_name = ?", (name,)).fetchone()


def test_edit_notes_and_hide_then_unhide(odd_page, odd_registry: Path) -> None:
    page = odd_page
    page.click("#family-tabs button:has-text('reasoning')")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 5")
    # notes: the edit button opens a form; saving writes through the token-checked API
    row_of(page, "alpha").locator("button.edit").click()
    page.wait_for_selector("#modal:not([hidden]) #edit-notes")
    assert page.input_value("#edit-notes") == ""
    page.fill("#edit-notes", "lr 3e-4 <b>not bold</b>")
    shot(page, "edit")
    page.click("#save-notes")
    page.wait_for_selector("#modal", state="hidden")
    assert model_row(odd_registry, "alpha") == ("lr 3e-4 <b>not bold</b>", 0)
    # the table was refreshed: the button now shows the notes, and the form starts from them
    page.wait_for_function("""document.querySelector("#pivot tr[data-model-id] button.edit[title^='notes:']")""")
    assert row_of(page, "alpha").locator("button.edit").get_attribute("title") == "notes: lr 3e-4 <b>not bold</b>"
    row_of(page, "alpha").locator("button.edit").click()
    assert page.input_value("#edit-notes") == "lr 3e-4 <b>not bold</b>"
    page.click("#modal-close")

    def toggle_hidden(name: str, label: str) -> None:
        row_of(page, name).locator("button.edit").click()
        assert page.locator("#toggle-hidden").text_content() == label
        page.click("#toggle-hidden")

    # hide: the row leaves the table
    toggle_hidden("odd", "Hide")
    page.wait_for_selector("#pivot td.model-name:text-is('odd')", state="detached")
    assert model_row(odd_registry, "odd")[1] == 1
    # "hidden" shows it again, greyed; "Unhide" brings it back for good
    page.check("#show-hidden")
    page.wait_for_selector("#pivot tr.hidden-model td.model-name:text-is('odd')")
    toggle_hidden("odd", "Unhide")
    page.wait_for_selector("#pivot tr.hidden-model", state="detached")
    assert model_row(odd_registry, "odd")[1] == 0
    page.uncheck("#show-hidden")
    page.wait_for_selector("#pivot td.model-name:text-is('odd')")


def test_an_edit_of_a_read_only_registry_shows_why_in_the_form(odd_page, odd_registry: Path) -> None:
    page = odd_page
    page.click("#family-tabs button:has-text('reasoning')")
    row_of(page, "alpha").locator("button.edit").click()
    page.wait_for_selector("#modal:not([hidden]) #edit-notes")
    before = model_row(odd_registry, "alpha")
    mode = odd_registry.stat().st_mode
    odd_registry.chmod(mode & ~0o222)  # chmod a-w (the tests run as root, which could still write)
    try:
        page.fill("#edit-notes", "not saved")
        page.click("#save-notes")
        page.wait_for_function("document.querySelector('#edit-error').textContent.includes('read-only')")
    finally:
        odd_registry.chmod(mode)
    assert "the dashboard can show it but not edit it" in page.text_content("#edit-error")
    assert page.is_visible("#modal")  # the form stays open with the reason
    assert model_row(odd_registry, "alpha") == before
    page.click("#modal-close")


def test_compare_shows_stderrs_and_flips_show_the_texts_of_scanned_samples(browser, tmp_path: Path) -> None:
    from lightml.ingest.scan import scan_and_import

    results = Path(shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "lm_eval_0413", tmp_path / "res"))
    db = tmp_path / "scanned.db"
    with LightMLHandle(db, "scan"):
        pass
    scan_and_import(db, "scan", results)
    with serve(db) as url, open_page(browser, url) as page:
        page.click("#family-tabs button[data-family='tiny_mc']")
        page.wait_for_function("document.querySelectorAll('#pivot thead th .family').length === 0")  # (one family)
        page.wait_for_selector("#pivot th:text-is('acc_norm_stderr')")
        # the table shows each score with its stderr (the stderr keeps its own column)
        row_a = page.locator("#pivot tbody tr:has(td.model-name:text-is('dummy-a'))")
        assert row_a.locator("td.num").all_text_contents() == ["0.1500 ±0.0465", "0.1500 ±0.0465", "0.0465", "0.0465"]
        for name in ("dummy-a", "dummy-b"):
            page.locator(f"#pivot tbody tr:has(td.model-name:text-is('{name}')) input[type=checkbox]").check()
        page.click("#compare-selected")
        page.wait_for_selector("#modal:not([hidden]) table.compare")
        # each value with lm-eval's stderr of it
        acc_row = page.locator("#modal table.compare tr:has(button.flips:text-is('acc'))")
        assert acc_row.locator("td.num").all_text_contents()[:2] == ["0.1500 ±0.0465", "0.3000 ±0.0597"]
        page.locator("#modal table.compare tr:has(td:text-is('tiny_mc')) button.flips:text-is('acc')").click()
        page.wait_for_selector("#modal:not([hidden]) table.flips")
        first = page.locator("#modal tr.flip-texts").first
        assert first.locator("dt").all_text_contents() == ["prompt", "target", "dummy-a", "dummy-b"]
        assert first.locator("dd").all_text_contents() == ["Question: What is 18 + 6?\nAnswer:", "3: 24", "0: 25",
                                                           "3: 24"]
        shot(page, "flips-texts")


def test_compare_names_differing_settings_and_the_history_shows_a_values_settings(browser, tmp_path: Path) -> None:
    db = tmp_path / "settings.db"
    with LightMLHandle(db, "r") as h:
        for name, shots in (("zero", 0), ("five", 5)):
            h.register_model(name, f"org/{name}")
            h.log_model_metric(name, "reasoning", "arc", 0.3 + shots / 100,
                               settings={"num_fewshot": shots, XSS: XSS, "limit": 100})
    with serve(db) as url, open_page(browser, url) as page:
        page.click("#family-tabs button:has-text('reasoning')")
        page.wait_for_selector("#pivot tbody tr:has(td.model-name:text-is('five'))")
        for name in ("zero", "five"):
            page.locator(f"#pivot tbody tr:has(td.model-name:text-is('{name}')) input[type=checkbox]").check()
        page.click("#compare-selected")
        page.wait_for_selector("#modal:not([hidden]) table.compare")
        assert page.locator("#modal table.compare th").all_text_contents()[-1] == "Settings"
        assert page.locator("#modal td.settings-differ").all_text_contents() == ["! num_fewshot"]
        assert "differ in these keys" in page.locator("#modal-body").text_content()
        shot(page, "compare-settings")
        page.click("#modal-close")
        page.locator("#pivot tbody tr:has(td.model-name:text-is('five')) td.num").first.click()
        page.wait_for_selector("#modal:not([hidden]) table.settings")
        pairs = dict(zip(page.locator("#modal table.settings th").all_text_contents(),
                         page.locator("#modal table.settings td").all_text_contents()))
        assert pairs == {XSS: XSS, "limit": "100", "num_fewshot": "5"}  # markup shown as text
        assert page.locator("#modal img").count() == 0
        shot(page, "history-settings")


def test_compare_shows_a_mean_of_repeats_with_its_interval_and_count(browser, tmp_path: Path) -> None:
    db = tmp_path / "repeats.db"
    with LightMLHandle(db, "r") as h:
        for name, values in (("base", [0.61, 0.63, 0.64]), ("tuned", [0.66, 0.69, 0.70])):
            h.register_model(name, f"org/{name}")
            for i, value in enumerate(values):
                h.log_model_metric(name, "reasoning", "arc", value, repeat=f"seed={i}")
    with serve(db) as url, open_page(browser, url) as page:
        page.click("#family-tabs button:has-text('reasoning')")
        page.wait_for_selector("#pivot tbody tr:has(td.model-name:text-is('tuned'))")
        cell = page.locator("#pivot tbody tr:has(td.model-name:text-is('base')) td.num").first.text_content()
        assert cell.startswith("0.6267 ±") and cell.endswith("(n=3)")  # the table shows the interval too
        for name in ("base", "tuned"):
            page.locator(f"#pivot tbody tr:has(td.model-name:text-is('{name}')) input[type=checkbox]").check()
        page.click("#compare-selected")
        page.wait_for_selector("#modal:not([hidden]) table.compare")
        cells = page.locator("#modal table.compare tr:has(td:text-is('arc')) td.num").all_text_contents()
        assert cells[0].endswith("(n=3)") and "±" in cells[0] and cells[1].endswith("(n=3)")
        assert page.locator("#modal button.flips").count() == 0  # tested over repeat values: no documents
        assert "the mean of n repeats" in page.locator("#modal-body").text_content()
        shot(page, "compare-repeats")


def test_the_table_takes_a_filter_expression_and_says_where_a_bad_one_went_wrong(browser, tmp_path: Path) -> None:
    db = tmp_path / "where.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("base", "org/base", tags=["baseline"])
        for name, lr in (("dpo-a", 1e-5), ("dpo-b", 3e-5)):
            h.register_model(name, f"org/{name}", params={"lr": lr}, tags=["dpo", XSS])
        for name in ("base", "dpo-a", "dpo-b"):
            h.log_model_metric(name, "reasoning", "arc", 0.5)
    with serve(db) as url, open_page(browser, url) as page:
        page.wait_for_selector("#pivot tbody tr:has(td.model-name:text-is('dpo-b'))")
        page.fill("#where", "tag:dpo and params.lr < 2e-5")
        page.press("#where", "Enter")
        page.wait_for_function("document.querySelectorAll('#pivot tbody td.model-name').length === 1")
        assert page.locator("#pivot tbody td.model-name").all_text_contents() == ["dpo-a"]
        page.fill("#where", f"tag:`{XSS}` and params.lr <")
        page.press("#where", "Enter")
        page.wait_for_selector("#where-error:not([hidden])")
        assert "ends too early" in page.locator("#where-error").text_content()
        assert page.locator("#pivot tbody td.model-name").all_text_contents() == ["dpo-a"]  # the table stays
        assert page.locator("img").count() == 0  # the markup in the message is text
        shot(page, "where-filter")
        page.fill("#where", "")
        page.press("#where", "Enter")
        page.wait_for_function("document.querySelectorAll('#pivot tbody td.model-name').length === 3")
        assert page.locator("#where-error").is_hidden()


def test_the_table_groups_the_models_by_a_parameter_each_row_their_mean(browser, tmp_path: Path) -> None:
    db = tmp_path / "group.db"
    with LightMLHandle(db, "r") as h:
        for name, beta, arc in (("a", 0.1, 0.40), ("b", 0.1, 0.50), ("c", 0.3, 0.70), (XSS, 0.3, 0.60), ("d", None, 0.2)):
            h.register_model(name, f"org/{name}", params=None if beta is None else {"beta": beta})
            h.log_model_metric(name, "reasoning", "arc", arc)
    with serve(db) as url, open_page(browser, url) as page:
        page.wait_for_selector("#pivot tbody tr:has(td.model-name:text-is('c'))")
        assert page.locator("#group-by option").all_text_contents() == ["no grouping", "group by beta"]
        page.select_option("#group-by", "beta")
        page.wait_for_selector("#pivot tbody tr.group")
        rows = page.locator("#pivot tbody tr.group")
        assert rows.locator("td.model-name").all_text_contents() == ["beta=0.1 (n=2)", "beta=0.3 (n=2)", "beta=- (n=1)"]
        assert rows.nth(0).locator("td.num").all_text_contents() == ["0.4500"]
        assert rows.nth(1).locator("td.num").all_text_contents() == ["0.6500"]
        assert XSS in rows.nth(1).locator("td.model-name").get_attribute("title")  # members named, as text
        assert page.locator("img").count() == 0
        shot(page, "group-by-param")
        page.select_option("#group-by", "")
        page.wait_for_selector("#pivot tbody tr.model")
        assert page.locator("#pivot tbody tr.group").count() == 0


def test_names_sort_in_natural_order_in_the_table(browser, tmp_path: Path) -> None:
    db = tmp_path / "natural.db"
    with LightMLHandle(db, "r") as h:
        for model in ("m10", "m2", "M1"):
            h.register_model(model, f"org/{model}")
            h.log_metrics(model, {"fam": {"mmlu_10shot": 0.1, "mmlu_2shot": 0.2}})
    with serve(db) as url, open_page(browser, url) as page:
        page.wait_for_selector("#pivot tbody tr:has(td.model-name:text-is('m10'))")
        page.click("#family-tabs button[data-family='fam']")
        page.wait_for_function("document.querySelectorAll('#pivot thead th .family').length === 0")
        assert page.locator("#pivot thead th").all_text_contents()[-2:] == ["mmlu_2shot", "mmlu_10shot"]
        assert page.locator("#pivot tbody td.model-name").all_text_contents() == ["M1", "m2", "m10"]
        page.click("#pivot th[data-sort='model']")
        page.click("#pivot th[data-sort='model']")  # descending
        assert page.locator("#pivot tbody td.model-name").all_text_contents() == ["m10", "m2", "M1"]


def test_the_model_column_stays_in_view_and_an_empty_registry_says_how_to_start(browser, tmp_path: Path) -> None:
    db = tmp_path / "wide.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("wide-model", "org/wide")
        h.log_metrics("wide-model", {"fam": {f"metric_{i}": i / 100 for i in range(60)}})
    with serve(db) as url, open_page(browser, url) as page:
        page.wait_for_selector("#pivot tbody td.model-name")
        cell = page.locator("#pivot tbody td.model-name").first
        before = cell.bounding_box()["x"]
        page.evaluate("document.querySelector('.table-wrap').scrollLeft = 2000")
        page.wait_for_function("document.querySelector('.table-wrap').scrollLeft > 500")
        assert abs(cell.bounding_box()["x"] - before) < 1  # pinned: it did not scroll away
        value = page.locator("#pivot tbody td.num").first
        assert "history" in value.get_attribute("title")
        assert "Click a value for its history" in page.locator("#table-hint").text_content()
    empty = tmp_path / "empty.db"
    LightMLHandle(empty, "r").close()
    with serve(empty) as url, open_page(browser, url) as page:
        page.wait_for_selector("#table-empty:not([hidden])")
        assert "No models yet" in page.locator("#table-empty").text_content()
        shot(page, "empty-registry")


def test_the_lineage_names_each_runs_colour_and_each_models_full_name(page) -> None:
    page.click("button.view-tab[data-view='graph']")
    page.wait_for_selector("#graph .node")
    items = page.locator("#graph-legend .legend-item")
    assert items.all_text_contents() == ["pretrain", "sft"]
    colours = [items.nth(i).locator(".swatch").evaluate("e => getComputedStyle(e).backgroundColor") for i in range(2)]
    fills = {page.locator("#graph .node rect").nth(i).get_attribute("fill") for i in range(3)}
    assert len(set(colours)) == 2 and len(fills) == 2  # one colour per run, the legend's
    titles = page.locator("#graph .node > title").all_text_contents()
    assert f"{XSS} (run sft)" in titles and "base (run pretrain)" in titles  # full names, as text
    assert page.locator("#graph img").count() == 0
    page.click("button.view-tab[data-view='table']")
