"""The dashboard's Charts view in real headless Chromium: charts built, saved in the registry
(events with origin "web"), found again after a reload, renamed, duplicated, reordered,
removed and restored, exported as PNG and SVG; error bars, missing data, markup in names,
a read-only registry, and the drawing time of big charts.

Skipped, with the reason, where Chromium or the playwright package is missing. Screenshots
go to tests/artifacts/chart-*.png.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from browsing import XSS, open_page, require_browser, serve, shot  # tests/web/browsing.py
from lightml.handle import LightMLHandle

sync_api = require_browser()

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZES = {"small": 1, "medium": 7, "large": 70, XSS: 3}


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """Four models with a size param and a family "bench" (acc with its acc_stderr, f1, loss),
    one model whose f1 is the mean of three repeats, a checkpoint series, a second family for
    a scatter across benchmarks, metrics named like Object.prototype's properties, and a
    summary set."""
    db = tmp_path_factory.mktemp("charts") / "charts.db"
    with LightMLHandle(db, "main") as h:
        for i, (name, size) in enumerate(SIZES.items()):
            h.register_model(name, f"org/m{i}", params={"size": size, "kind": "dense" if i % 2 else "moe"})
            acc = 0.3 + 0.1 * i
            h.log_metrics(name, {"bench": {"acc": acc, "acc_stderr": 0.02, "f1": 0.5 + 0.05 * i, "loss": 2 - acc},
                                 "other": {"score": 10 + i}})
        h.register_model("rep", "org/rep")
        for label, value in (("seed=1", 0.50), ("seed=2", 0.55), ("seed=3", 0.52)):
            h.log_model_metric("rep", "bench", "f1", value, repeat=label)
        h.log_model_metric("rep", "bench", "acc", 0.4)
        for step, value in ((100, 0.2), (200, 0.3), (300, 0.35)):
            h.log_checkpoint_metric(h.register_checkpoint("large", step, f"/ckpt/{step}"), "bench", "acc", value)
        h.log_metrics("small", {"odd": {"constructor": 0.7, "__proto__": 0.2, "toString": 0.4}})
        h.save_dashboard_item("summary", "core set", {"metrics": [["bench", "acc"], ["bench", "f1"]]})
    return db


@pytest.fixture(scope="module")
def server(registry: Path):
    with serve(registry) as url:
        yield url


@pytest.fixture
def page(browser, server):
    with open_page(browser, server) as page:
        open_charts(page)
        yield page


def open_charts(page) -> None:
    page.click("button.view-tab[data-view='charts']")
    page.wait_for_selector("#chart-list > *")  # (a card or the "no charts yet" hint: the list is in)


def api(page, path: str, body: dict | None = None):
    """The page's own API call (a POST through core.js's post(), with the page's token)."""
    return page.evaluate("""async ([path, body]) => {
        const core = await import('/static/core.js');
        return body === null ? core.api(path) : core.post(path, body);
    }""", [path, body])


def card(page, name: str):
    return page.locator("article.chart-card", has=page.locator(f"h3:text-is({json.dumps(name)})"))


def by_id(page, name: str):
    """The card of the chart named `name`, found by its id (its heading turns into a field while renamed)."""
    return page.locator(f"article.chart-card[data-id='{card(page, name).get_attribute('data-id')}']")


def names(page) -> list[str]:
    return page.locator("article.chart-card h3").all_text_contents()


def build(page, name: str, kind: str, family: str | None = None, metrics: list[str] | None = None, **fields) -> None:
    """A chart made in the builder and saved; waits for its card."""
    page.click("#chart-new")
    page.wait_for_selector("#chart-builder:not([hidden])")
    page.fill("#chart-name", name)
    page.select_option("#chart-type", kind)
    if family:
        page.select_option("#chart-family", family)
    if metrics:
        for box in page.locator("#chart-metrics input").all():
            box.set_checked(box.get_attribute("value") in metrics)
    for field, value in fields.items():
        page.select_option(f"#chart-{field.replace('_', '-')}", value)
    page.click("#chart-save")
    card(page, name).locator("svg.chart[data-drawn-ms]").wait_for()


def texts(locator) -> str:
    return " ".join(locator.locator("text").all_text_contents())


def test_each_chart_type_is_saved_drawn_and_found_after_a_reload(page, registry: Path) -> None:
    build(page, "acc bars", "bar", "bench", ["acc"], color_by="kind")
    build(page, "bench grouped", "grouped_bar", "bench", ["acc", "f1", "loss"])
    build(page, "bench radar", "radar", "bench", ["acc", "f1", "loss"])
    build(page, "acc over steps", "line", "bench", ["acc"])
    build(page, "acc vs size", "scatter", x='["params","size"]', y='["bench","acc"]', color_by="kind")
    build(page, "other vs acc", "scatter", x='["other","score"]', y='["bench","acc"]')
    build(page, "core summary", "summary")
    saved = ["acc bars", "bench grouped", "bench radar", "acc over steps", "acc vs size", "other vs acc", "core summary"]
    assert names(page)[-len(saved):] == saved

    bars = card(page, "acc bars").locator("svg.chart")
    assert bars.locator("rect title").count() == 5  # one bar per model, each with its title
    assert "kind=dense" in texts(bars) and "kind=moe" in texts(bars)  # coloured by a param: its legend

    grouped = card(page, "bench grouped").locator("svg.chart")
    assert grouped.get_attribute("role") == "img" and "Grouped bar" in grouped.get_attribute("aria-label")
    # acc: 4 models with a stderr; f1 of rep: the interval over its 3 repeats; loss: none known
    assert grouped.locator("g[stroke] path").count() == 5
    caption = texts(grouped)
    assert "stderr" in caption and "acc" in caption and "rep f1 (n=3)" in caption
    assert "loss (lower is better)" in caption  # the direction in the legend
    assert "rep · bench/f1: 0.5233 ±" in " ".join(grouped.locator("rect title").all_text_contents())

    radar = card(page, "bench radar").locator("svg.chart")
    assert radar.locator("path[fill-opacity]").count() == 5  # one outline per model
    assert "largest value of its metric" in texts(radar)  # (loss is above 1: each axis its own scale)
    assert "rep has no value of loss" in texts(radar)

    line = card(page, "acc over steps").locator("svg.chart")
    assert line.locator("polyline").count() == 1 and line.locator("circle title").count() == 3

    scatter = card(page, "acc vs size").locator("svg.chart")
    assert scatter.locator("title").count() >= 4
    assert "1 of 5 models lack a numeric value of params.size" in texts(scatter)  # rep has no size
    assert "params.size" in texts(scatter)

    summary = card(page, "core summary").locator("svg.chart")
    assert "core set" in texts(summary) and summary.locator("rect title").count() == 5
    shot(page, "chart-types")

    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    open_charts(page)
    assert names(page)[-len(saved):] == saved
    card(page, "core summary").locator("svg.chart[data-drawn-ms]").wait_for()

    # Every chart event came from the page: origin "web".
    with sqlite3.connect(registry) as conn:
        rows = conn.execute("SELECT type, origin, payload FROM events WHERE type LIKE 'dashboard_item%'").fetchall()
    charts = [(kind, origin) for kind, origin, payload in rows if json.loads(payload).get("kind") == "chart"]
    assert len(charts) >= len(saved) and {origin for _, origin in charts} == {"web"}


def test_rename_duplicate_reorder_remove_and_undo(page) -> None:
    for name in ("first", "second"):
        api(page, "/api/items/save", {"kind": "chart", "name": name, "spec": {"type": "bar", "metrics": [["bench", "f1"]]}})
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    open_charts(page)
    card(page, "second").wait_for()

    first = by_id(page, "first")
    first.locator("button[data-action=rename]").click()
    first.locator("form.chart-rename input").fill("first renamed")
    first.locator("form.chart-rename input").press("Enter")
    card(page, "first renamed").wait_for()

    # a taken name: refused, said in the card, the list as it was
    before = names(page)
    renamed = by_id(page, "first renamed")
    renamed.locator("button[data-action=rename]").click()
    renamed.locator("form.chart-rename input").fill("second")
    renamed.locator("form.chart-rename input").press("Enter")
    renamed.locator(".chart-error:not(:empty)").wait_for()
    assert "second" in renamed.locator(".chart-error").text_content()
    renamed.locator("form.chart-rename button:text-is('Cancel')").click()
    assert names(page) == before

    card(page, "second").locator("button[data-action=duplicate]").click()
    card(page, "second (copy)").wait_for()
    card(page, "second").locator("button[data-action=duplicate]").click()
    card(page, "second (copy 2)").wait_for()

    order = names(page)
    at = order.index("first renamed")
    card(page, "first renamed").locator("button[data-action=down]").click()
    page.wait_for_function(f"document.querySelectorAll('article.chart-card h3')[{at + 1}]?.textContent === 'first renamed'")
    assert [i["name"] for i in api(page, "/api/items?kind=chart")] == names(page)
    assert page.evaluate("document.activeElement.dataset.action") == "down"  # focus stays on the moved chart
    card(page, "first renamed").locator("button[data-action=up]").click()
    page.wait_for_function(f"document.querySelectorAll('article.chart-card h3')[{at}]?.textContent === 'first renamed'")

    card(page, "second (copy)").locator("button[data-action=remove]").click()
    page.wait_for_selector("#charts-status:has-text('removed')")
    assert card(page, "second (copy)").count() == 0
    shot(page, "chart-removed")
    page.click("#chart-undo")
    card(page, "second (copy)").wait_for()
    assert "removed" not in page.locator("#charts-status").text_content()
    shot(page, "chart-list")


def test_edit_changes_the_spec(page) -> None:
    api(page, "/api/items/save", {"kind": "chart", "name": "to edit", "spec": {"type": "bar", "metrics": [["bench", "acc"]]}})
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    open_charts(page)
    card(page, "to edit").locator("button[data-action=edit]").click()
    page.wait_for_selector("#chart-builder:not([hidden])")
    assert page.input_value("#chart-name") == "to edit"
    assert page.locator("#chart-metrics input[value=acc]").is_checked()
    page.select_option("#chart-type", "grouped_bar")
    for metric in ("acc", "f1"):
        page.locator(f"#chart-metrics input[value={metric}]").check()
    page.locator("#chart-preview[data-drawn-ms]").wait_for()
    page.click("#chart-save")
    page.wait_for_selector("#chart-builder[hidden]", state="attached")
    item = next(i for i in api(page, "/api/items?kind=chart") if i["name"] == "to edit")
    assert item["spec"]["type"] == "grouped_bar" and item["spec"]["metrics"] == [["bench", "acc"], ["bench", "f1"]]


def test_the_table_selection_is_the_charts_models(page) -> None:
    page.click("button.view-tab[data-view='table']")
    for name in ("small", "large"):
        page.locator(f"#pivot tbody tr:has(td.model-name:text-is('{name}')) input[type=checkbox]").check()
    open_charts(page)
    page.click("#chart-new")
    assert "selection (2 models)" in page.locator("#chart-models-from option").first.text_content()
    build(page, "two models", "grouped_bar", "bench", ["acc", "f1"])
    item = next(i for i in api(page, "/api/items?kind=chart") if i["name"] == "two models")
    ids = {r["id"] for r in api(page, "/api/pivot?family=bench")["rows"] if r["model"] in ("small", "large")}
    assert set(item["spec"]["models"]) == ids
    assert card(page, "two models").locator("rect title").count() == 4


def test_export_png_and_svg(page, tmp_path: Path) -> None:
    name = "acc: small/large <v1>"
    build(page, name, "grouped_bar", "bench", ["acc", "f1"])
    chart = card(page, name)
    with page.expect_download() as info:
        chart.locator("button[data-action=png]").click()
    assert info.value.suggested_filename == "acc_small_large_v1.png"
    png = tmp_path / "chart.png"
    info.value.save_as(png)
    assert png.read_bytes().startswith(PNG_SIGNATURE) and png.stat().st_size > 2_000
    with page.expect_download() as info:
        chart.locator("button[data-action=svg]").click()
    assert info.value.suggested_filename == "acc_small_large_v1.svg"
    path = tmp_path / "chart.svg"
    info.value.save_as(path)
    root = ET.parse(path).getroot()  # (parses as XML)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("font-family")
    words = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert name in words  # its name as its heading
    for model in ("small", "medium", "large", "rep", XSS):
        assert model in words
    assert chart.locator(".chart-error").text_content() == ""


def test_markup_and_prototype_names_are_text(page) -> None:
    build(page, XSS, "grouped_bar", "odd", ["constructor", "__proto__", "toString"])
    chart = card(page, XSS)
    assert chart.locator("h3").text_content() == XSS
    drawn = texts(chart.locator("svg.chart"))
    assert "odd/constructor" in drawn and "odd/__proto__" in drawn and "odd/toString" in drawn
    assert chart.locator("rect title").count() == 3  # small's three values, nothing from Object.prototype
    build(page, "xss model", "bar", "bench", ["acc"])
    assert XSS in texts(card(page, "xss model").locator("svg.chart"))
    assert page.locator("img").count() == 0 and page.locator("svg image").count() == 0
    shot(page, "chart-xss")


def test_missing_models_and_metrics_are_said(page) -> None:
    gone = {"type": "grouped_bar", "metrics": [["bench", "acc"], ["bench", "gone"]], "models": [1, 99999]}
    api(page, "/api/items/save", {"kind": "chart", "name": "with missing", "spec": gone})
    api(page, "/api/items/save", {"kind": "chart", "name": "no summary", "spec": {"type": "bar", "summary": 99999}})
    api(page, "/api/items/save", {"kind": "chart", "name": "bad scatter", "spec": {"type": "scatter", "x": ["params", "nope"],
                                                                                "y": ["bench", "gone"]}})
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    open_charts(page)
    for name in ("with missing", "no summary", "bad scatter"):
        card(page, name).locator("svg.chart[data-drawn-ms]").wait_for()
    missing = texts(card(page, "with missing"))
    assert "No longer in the registry: bench/gone" in missing and "1 of the chart's 2 models" in missing
    assert card(page, "with missing").locator("rect title").count() == 1
    assert "could not be drawn" in texts(card(page, "no summary"))
    assert "bench/gone" in texts(card(page, "bad scatter"))


def test_accessibility_of_controls_and_charts(page) -> None:
    build(page, "a11y", "grouped_bar", "bench", ["acc", "f1"])
    page.click("#chart-new")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('#view-charts :is(button, select, input)')]
        .filter(c => !c.closest('[hidden]'))
        .filter(c => !(c.getAttribute('aria-label') || c.labels?.length || (c.tagName === 'BUTTON' && c.textContent.trim())))
        .map(c => c.outerHTML.slice(0, 80))""")
    assert unlabelled == []
    chart = card(page, "a11y").locator("svg.chart")
    assert chart.get_attribute("role") == "img" and chart.get_attribute("aria-label").startswith("a11y.")
    # keyboard: Tab reaches the card's buttons, and the focused one is outlined
    card(page, "a11y").locator("button[data-action=rename]").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "duplicate"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_a_read_only_registry_refuses_a_save_on_the_page(browser, registry: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    copy = folder / "charts.db"
    with sqlite3.connect(registry) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    writable = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    try:
        for path in (copy, folder):
            os.chmod(path, path.stat().st_mode & ~writable)
        with serve(copy) as url, open_page(browser, url) as page:
            open_charts(page)
            before = names(page)
            page.click("#chart-new")
            page.fill("#chart-name", "refused")
            page.click("#chart-save")
            page.wait_for_selector("#chart-save-error:has-text('read-only')")
            assert names(page) == before
            shot(page, "chart-read-only")
    finally:
        for path in (folder, copy):
            os.chmod(path, path.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(folder)


SYNTHETIC = """([models, metrics]) => {
    const columns = [], values = {};
    for (let j = 0; j < metrics; j++) columns.push({family: 'f', metric: `m${j}`, lower_is_better: j === 1});
    const rows = [];
    for (let i = 0; i < models; i++) {
        const v = {};
        columns.forEach((c, j) => { v[c.metric] = ((i * 7 + j * 3) % 17) / 17; });
        rows.push({id: i + 1, model: `model-${i}`, run: 'r', step: null, params: {size: i}, repeats: {}, values: {f: v}});
    }
    return {pivot: {family: 'f', columns, rows},
            spec: {models: [], metrics: columns.map(c => ['f', c.metric]), error_bars: true}};
}"""


def test_drawing_time_of_big_charts(page) -> None:
    timings = page.evaluate(f"""async () => {{
        const charts = await import('/static/charts.js');
        const make = {SYNTHETIC};
        const target = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
        document.getElementById('charts-root').append(target);
        const time = (spec, data) => {{
            const started = performance.now();
            charts.drawChart(target, spec, data);
            return [performance.now() - started, Number(target.getAttribute('data-drawn-ms')),
                    target.querySelectorAll('title').length];
        }};
        const bars = make([50, 10]), radar = make([10, 20]), many = make([6, 12]);
        const out = {{
            grouped: time({{...bars.spec, type: 'grouped_bar'}}, {{pivot: bars.pivot}}),
            radar: time({{...radar.spec, type: 'radar'}}, {{pivot: radar.pivot}}),
        }};
        charts.drawChart(target, {{...many.spec, type: 'grouped_bar'}}, {{pivot: many.pivot}});
        out.hatched = target.querySelectorAll('rect[fill^="url(#"]').length;
        charts.drawChart(target, {{...radar.spec, type: 'radar', models: []}}, {{pivot: make([30, 5]).pivot}});
        out.capped = [...target.querySelectorAll('text')].some(t => t.textContent.startsWith('Showing 12 of 30 models'));
        target.remove();
        return out;
    }}""")
    grouped_ms, grouped_attr, grouped_titles = timings["grouped"]
    radar_ms, radar_attr, radar_titles = timings["radar"]
    assert grouped_titles >= 500 and radar_titles >= 200
    assert grouped_ms <= 200 and grouped_attr <= grouped_ms + 0.1, timings
    assert radar_ms <= 100 and radar_attr <= radar_ms + 0.1, timings
    assert timings["hatched"] == 2 * 6 + 2  # metrics 11 and 12 reuse two colours, hatched (bars and legend)
    assert timings["capped"]
