"""The table's view in the URL and saved in the registry, display settings kept in the
browser, summary sets, the column chooser, and editing models (rename, parent, delete with the
name typed again, restore) from the page — in real headless Chromium."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from browsing import XSS, open_page, require_browser, serve, shot  # tests/web/browsing.py
from lightml.handle import LightMLHandle

sync_api = require_browser()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    db = tmp_path / "views.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("meta-llama/base", "org/base", params={"size": 1})
        h.register_model("sft", "org/sft", parent_name="meta-llama/base")
        h.register_model(XSS, "org/xss", parent_name="sft")
        h.set_notes(XSS, XSS)
        h.log_metrics("meta-llama/base", {"reasoning": {"arc": 0.30, "arc_stderr": 0.01},
                                          "knowledge": {"mmlu": 0.40}})
        h.log_metrics("sft", {"reasoning": {"arc": 0.45, "arc_stderr": 0.01}, "knowledge": {"mmlu": 0.38}})
        h.log_metrics(XSS, {"reasoning": {"arc": 0.20}})
        for name, value, shots in (("meta-llama/base", 0.50, 10), ("sft", 0.55, 10), (XSS, 0.52, 0)):
            h.log_model_metric(name, "reasoning", "hellaswag", value, settings={"num_fewshot": shots}, force=True)
    return db


@pytest.fixture
def page(browser, registry: Path):
    with serve(registry) as url, open_page(browser, url) as page:
        page.base_url = url
        yield page


def rows(page) -> list[str]:
    return page.eval_on_selector_all("#pivot tbody tr:not(.spacer) td.model-name",
                                     "cells => cells.map(c => c.firstChild.textContent)")


def cell(page, model: str, column: int) -> str:
    return page.locator(f"#pivot tbody tr:has(td.model-name:text-is('{model}')) td.num").nth(column).inner_text()


def web_events(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [t for (t,) in conn.execute("SELECT type FROM events WHERE origin = 'web' ORDER BY seq")]


def test_the_view_lives_in_the_url_and_back_returns_to_the_one_before(page) -> None:
    page.click("#family-tabs button[data-family='reasoning']")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 6")
    page.click("#pivot thead th[data-sort='0']")  # arc, best first
    assert "family=reasoning" in page.url and "sort=" in page.url
    assert rows(page)[0] == "sft"
    page.fill("#where", "params.size = 1")
    page.press("#where", "Enter")
    page.wait_for_function("document.querySelectorAll('#pivot tbody td.model-name').length === 1")
    shared = page.url
    # a shared link opens the same view
    page.goto(shared)
    page.wait_for_selector("body[data-ready='1']")
    assert page.input_value("#where") == "params.size = 1" and rows(page) == ["meta-llama/base"]
    assert page.locator("#family-tabs button.active").inner_text() == "reasoning"
    # back: the filter gone, the sort kept; back again: unsorted
    page.go_back()
    page.wait_for_function("document.querySelectorAll('#pivot tbody td.model-name').length === 3")
    assert page.input_value("#where") == "" and rows(page)[0] == "sft"
    page.go_back()
    page.wait_for_function("!location.search.includes('sort')")
    page.go_back()
    page.wait_for_function("document.querySelector('#family-tabs button.active').textContent === 'All families'")


def test_a_saved_view_is_in_the_registry_and_opens_again(page, registry: Path) -> None:
    page.click("#family-tabs button[data-family='knowledge']")
    page.check("#show-empty")
    page.click("#save-view-button")
    page.fill("#view-name", XSS)
    page.click("#save-view")
    page.wait_for_selector(f"#saved-views option:text-is('{XSS}')", state="attached")
    page.click("#family-tabs button[data-family='reasoning']")
    page.uncheck("#show-empty")
    # opening it puts back the family and the toggle, from the registry, after a reload too
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.select_option("#saved-views", label=XSS)
    page.wait_for_function("document.querySelector('#family-tabs button.active').textContent === 'knowledge'")
    assert page.is_checked("#show-empty") and len(rows(page)) == 3
    # manage: rename, remove, restore
    page.click("#manage-views")
    page.fill(f".item-list li input[aria-label='name of view {XSS}']", "knowledge, all rows")
    page.click(".item-list li button:text-is('Rename')")
    page.wait_for_selector("#saved-views option:text-is('knowledge, all rows')", state="attached")
    page.click(".item-list li button:text-is('Remove')")
    page.wait_for_selector("#modal li:has-text('knowledge, all rows') button:text-is('Restore')")
    shot(page, "views-manage")
    page.click("#modal li button:text-is('Restore')")
    page.wait_for_selector("#saved-views option:text-is('knowledge, all rows')", state="attached")
    assert page.locator("img").count() == 0
    assert web_events(registry) == ["dashboard_item_saved", "dashboard_item_saved", "dashboard_item_removed",
                                    "dashboard_item_restored"]


def test_display_settings_persist_across_a_reload(page) -> None:
    page.click("#family-tabs button[data-family='reasoning']")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 6")
    assert cell(page, "sft", 0) == "0.4500 ±0.0100"
    page.click("#display-settings")
    page.fill("#set-decimals", "2")
    page.dispatch_event("#set-decimals", "change")
    page.check("#set-percent")
    page.check("#set-compact")
    page.check("#set-run-tag")
    page.select_option("#set-density", "compact")
    page.select_option("#set-scale", "parent")
    page.keyboard.press("Escape")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    page.click("#family-tabs button[data-family='reasoning']")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 6")
    assert cell(page, "sft", 0) == "45% ±1%"  # 2 decimals of a fraction as a percentage: whole percents
    names = page.locator("#pivot tbody td.model-name").all_inner_texts()
    assert "base @r" in names  # compact name, with its run tag
    page.wait_for_selector("#pivot tbody tr.model")
    height = page.eval_on_selector("#pivot tbody tr.model", "tr => tr.getBoundingClientRect().height")
    assert height == pytest.approx(22, abs=0.5)
    # relative to the parent: sft's arc is better than its parent's, marked and said in the title
    sft_arc = page.locator("#pivot tbody tr:has(td.model-name:text-is('sft')) td.num").first
    assert "better" in sft_arc.get_attribute("class") and "vs its parent meta-llama/base" in sft_arc.get_attribute("title")
    shot(page, "display-settings")
    page.click("#display-settings")
    page.click("#reset-display")
    page.keyboard.press("Escape")
    assert cell(page, "sft", 0) == "0.4500 ±0.0100"


def test_a_summary_set_is_a_column_with_its_interval(page, registry: Path) -> None:
    page.click("#summary-sets")
    page.click("#new-summary")
    page.fill("#summary-name", f"avg {XSS}")
    page.fill("#summary-filter", "arc")
    page.check("#modal label:has-text('reasoning / arc') >> nth=0")
    page.fill("#summary-filter", "mmlu")
    page.check("#modal label:has-text('knowledge / mmlu')")
    page.click("#save-summary")
    page.wait_for_selector("#pivot thead th.summary-col")
    assert "summary=" in page.url or page.input_value("#summary-set") != ""
    # base: arc has a stderr, mmlu none: the mean without an interval; XSS has arc only: 1 of 2
    assert cell(page, "meta-llama/base", 0) == "0.3500"
    assert cell(page, XSS, 0) == "0.2000 (1 of 2)"
    page.click("#pivot thead th.summary-col")
    page.click("#pivot thead th.summary-col")  # ascending
    assert rows(page)[0] == XSS
    shot(page, "summary-column")
    assert page.locator("img").count() == 0
    with LightMLHandle(registry, None) as h:
        assert [i["name"] for i in h.dashboard_items("summary")] == [f"avg {XSS}"]


def test_columns_can_be_chosen(page) -> None:
    page.click("#family-tabs button[data-family='reasoning']")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 6")
    page.click("#choose-columns")
    page.uncheck("#modal label:has-text('reasoning / hellaswag') input")
    page.keyboard.press("Escape")
    assert page.locator("#pivot thead th").all_text_contents() == ["✓", "Model", "Run", "arc", "arc_stderr"]
    assert "cols=" in page.url
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#pivot thead th").count() == 5


def test_rename_reparent_delete_and_restore_from_the_editor(page, registry: Path) -> None:
    edit = "#pivot tbody tr:has(td.model-name:text-is('sft')) button.edit"
    page.click(edit)
    page.fill("#edit-name", "sft-v1")
    page.click("#rename-model")
    page.wait_for_selector("#pivot tbody td.model-name:text-is('sft-v1')")
    page.click("#pivot tbody tr:has(td.model-name:text-is('sft-v1')) button.edit")
    page.select_option("#edit-parent", label="(no parent)")
    page.click("#set-parent")
    page.wait_for_selector("#modal", state="hidden")
    # delete: the button waits for the name typed again; undo restores
    page.click(f"#pivot tbody tr:has(td.model-name:text-is('{XSS}')) button.edit")
    assert page.is_disabled("#delete-model")
    page.fill("#delete-confirm", XSS)
    page.click("#delete-model")
    page.wait_for_selector("#undo-delete")
    shot(page, "edit-delete")
    assert XSS not in rows(page)
    page.click("#undo-delete")
    page.wait_for_selector(f"#pivot tbody td.model-name:text-is('{XSS}')")
    # the deleted models' list restores too
    page.click(f"#pivot tbody tr:has(td.model-name:text-is('{XSS}')) button.edit")
    page.fill("#delete-confirm", XSS)
    page.click("#delete-model")
    page.wait_for_selector("#undo-delete")
    page.keyboard.press("Escape")
    page.click("#show-deleted")
    page.click(f"#modal button[aria-label='restore {XSS}']")
    page.wait_for_selector("#modal p:text-is('No deleted model to restore.')")
    assert page.locator("img").count() == 0
    assert web_events(registry) == ["model_renamed", "model_reparented", "model_deleted", "model_restored",
                                    "model_deleted", "model_restored"]


def test_a_refused_edit_is_said_in_the_editor(page, registry: Path) -> None:
    # base <- sft <- XSS: making XSS base's parent would be a cycle
    page.click("#pivot tbody tr:has(td.model-name:text-is('meta-llama/base')) button.edit")
    page.select_option("#edit-parent", label=f"{XSS} (r)")
    page.click("#set-parent")
    page.wait_for_selector("#edit-error:has-text('would create a cycle')")
    assert not page.is_hidden("#modal")
    folder = registry.parent
    mode = folder.stat().st_mode
    folder.chmod(mode & ~0o222)
    try:
        page.fill("#edit-name", "renamed")
        page.click("#rename-model")
        page.wait_for_selector("#edit-error:has-text('read-only')")
    finally:
        folder.chmod(mode)
    assert web_events(registry) == []


def test_values_open_their_history_from_the_keyboard(page) -> None:
    page.click("#family-tabs button[data-family='reasoning']")
    page.wait_for_function("document.querySelectorAll('#pivot thead th').length === 6")
    first = page.locator("#pivot tbody tr:has(td.model-name:text-is('sft')) td.num").first
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#modal-title:has-text('History of reasoning/arc')")
    assert page.evaluate("document.activeElement.id") == "modal-close"
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.classList.contains('num')")  # focus back where it was
    # headers sort from the keyboard too, and say how
    page.focus("#pivot thead th[data-sort='0']")
    page.keyboard.press("Enter")
    assert page.get_attribute("#pivot thead th[data-sort='0']", "aria-sort") == "descending"


def test_a_value_with_other_eval_settings_than_its_column_is_marked(page) -> None:
    page.click("#family-tabs button[data-family='reasoning']")
    page.wait_for_selector("#pivot td.settings-differ")
    marked = page.locator("#pivot td.settings-differ")
    assert marked.count() == 1  # XSS's hellaswag: 0-shot, where the others are 10-shot
    assert "num_fewshot 0 (most: 10)" in marked.get_attribute("title")
    row = page.locator(f"#pivot tbody tr:has(td.model-name:text-is('{XSS}'))")
    assert row.locator("td.settings-differ").count() == 1
    shot(page, "settings-marks")


def test_the_page_asks_nothing_of_any_other_origin(browser, registry: Path) -> None:
    with LightMLHandle(registry, "r") as h:
        h.save_dashboard_item("chart", "arc", {"type": "grouped_bar", "metrics": [["reasoning", "arc"]], "error_bars": True})
        h.save_dashboard_item("summary", "avg", {"metrics": [["reasoning", "arc"], ["knowledge", "mmlu"]]})
    with serve(registry) as url, open_page(browser, url) as page:
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        # every view and dialog, an export of each kind, a compare and its flips, a value's history
        for button in ("#display-settings", "#manage-views", "#summary-sets", "#choose-columns", "#show-deleted"):
            page.click(button)
            page.wait_for_selector("#modal:not([hidden])")
            page.keyboard.press("Escape")
        page.locator("#pivot tbody tr:has(td.model-name:text-is('sft')) td.num").first.click()
        page.wait_for_selector("#modal-title:has-text('History')")
        page.keyboard.press("Escape")
        for name in ("meta-llama/base", "sft"):
            page.locator(f"#pivot tbody tr:has(td.model-name:text-is('{name}')) input[type=checkbox]").check()
        page.click("#compare-selected")
        page.wait_for_selector("#modal table.compare")
        page.keyboard.press("Escape")
        for view in ("graph", "curves", "charts"):
            page.click(f"button.view-tab[data-view='{view}']")
            page.wait_for_timeout(300)
        page.wait_for_selector("article.chart-card svg.chart rect")
        for kind in ("PNG", "SVG"):
            with page.expect_download():
                page.click(f"button[aria-label='export {kind} of chart arc']")
        page.click("button.view-tab[data-view='graph']")
        page.locator("#graph-root .node").first.click()  # (its card)
        page.wait_for_selector("#model-panel:not([hidden])")
    origin = url.rstrip("/")
    foreign = [u for u in asked if not (u.startswith(origin + "/") or u == origin or u.startswith(("blob:", "data:")))]
    assert asked and not foreign, foreign


def test_a_damaged_or_stale_link_still_opens_the_page(browser, registry: Path) -> None:
    with serve(registry) as url:
        for query in ('?sort=x%22', "?sort=__proto__&dir=abc", "?cols=%5B", "?summary=999", "?family=__proto__"):
            with open_page(browser, url + "/" + query) as page:  # (open_page fails on any page error)
                assert page.locator("#pivot thead th").count() >= 3, query
        with open_page(browser, url + "/?run=gone") as page:  # a run pruned since the link was made
            page.wait_for_selector("#where-error:has-text(\"run 'gone' not found: showing every run\")")
            assert len(rows(page)) == 3


def test_back_after_typing_a_search_returns_to_before_it(page) -> None:
    page.click("#family-tabs button[data-family='reasoning']")
    page.wait_for_function("location.search.includes('family=reasoning')")
    page.type("#search", "ba")
    page.wait_for_function("location.search.includes('q=ba')")
    page.go_back()
    page.wait_for_function("location.search === '?family=reasoning'")
    assert page.input_value("#search") == ""
