"""The lineage graph and the checkpoint curves in headless Chromium: readable names, the side
panel with the model's card, setting a parent from the page, keyboard access, the checkpoint
dots' place, the curves' axes and legend, and a 2,000-node registry.

Screenshots go to tests/artifacts/lineage-*.png.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from browsing import XSS, open_page, require_browser, serve, shot  # tests/web/browsing.py
from lightml.handle import LightMLHandle

sync_api = require_browser()

LONG = "meta-llama/Llama-3.2-1B-Instruct-sft-dpo-epoch3"
CURVE_MODELS = [f"curve-{i:02d}" for i in range(12)]


def build(db: Path) -> None:
    """base -> sft -> dpo -> LONG, sft with checkpoints; XSS (notes XSS) and orphan unparented;
    12 models with a checkpointed loss for the curves."""
    with LightMLHandle(db, "pretrain") as h:
        h.register_model("base", "org/base")
        h.log_model_metric("base", "reasoning", "arc", 0.30)
    with LightMLHandle(db, "sft") as h:
        h.register_model("sft", "/models/sft", parent_name="pretrain/base")
        for step, value in ((100, 0.35), (200, 0.41), (300, 0.44)):
            cid = h.register_checkpoint("sft", step, f"/ckpt/sft-{step}")
            h.log_checkpoint_metric(cid, "reasoning", "arc", value)
        h.register_model("dpo", "/models/dpo", parent_name="sft")
        h.register_model(LONG, "/models/long", parent_name="dpo")
        h.set_notes(LONG, "the third epoch")
        h.register_model(XSS, "/models/xss")
        h.set_notes(XSS, XSS)
        h.register_model("orphan", "/models/orphan")
        for i, name in enumerate(CURVE_MODELS):
            h.register_model(name, f"/models/{name}")
            for step in (1000, 2000, 3000):
                cid = h.register_checkpoint(name, step, f"/ckpt/{name}-{step}")
                h.log_checkpoint_metric(cid, "training", "loss", 2.0 - step / 4000 + i * 0.05)


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("lineage") / "reg.db"
    build(db)
    return db


@pytest.fixture(scope="module")
def server(registry: Path):
    with serve(registry) as url:
        yield url


@pytest.fixture
def graph(browser, server):
    with open_page(browser, server) as page:
        page.click("button.view-tab[data-view='graph']")
        page.wait_for_selector("#graph .node")
        yield page


def node(page, name: str):
    return page.locator("#graph .node", has=page.locator(f"title:text-is('{name} (run sft)')"))


def open_card(page, name: str) -> None:
    node(page, name).click()
    page.wait_for_selector(f"#model-panel h2.card-name:text-is('{name}')")
    page.wait_for_selector("#model-panel .card-facts dt")


def facts(page) -> dict[str, str]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#model-panel .card-facts dt')]
        .map((dt) => [dt.textContent, dt.nextElementSibling.textContent]))""")


def test_a_long_name_wraps_in_its_box_and_the_card_shows_it_in_full(graph) -> None:
    lines = node(graph, LONG).locator("text tspan").all_text_contents()
    assert len(lines) == 2 and "".join(lines) == LONG and not any("…" in line for line in lines)
    box, label = node(graph, LONG).locator("rect").bounding_box(), node(graph, LONG).locator("text").bounding_box()
    assert label["x"] + label["width"] <= box["x"] + box["width"]  # wrapped inside the box
    open_card(graph, LONG)
    card = facts(graph)
    assert card["path"] == "/models/long" and card["run"] == "sft" and card["parent"] == "dpo (sft)"
    assert card["children"] == "none" and card["notes"] == "the third epoch"
    assert "by" in card["last change"] and card["last change"].startswith("#")
    open_card(graph, "sft")
    card = facts(graph)
    assert card["parent"] == "base (pretrain)" and card["children"] == "dpo (sft)"
    assert card["checkpoints"] == "steps 100, 200, 300"
    shot(graph, "lineage-card")
    graph.click("#model-panel .card-facts dd button:text-is('dpo (sft)')")  # a child opens its own card
    graph.wait_for_selector("#model-panel h2.card-name:text-is('dpo')")


def test_names_and_notes_with_markup_are_text(graph) -> None:
    assert node(graph, XSS).locator("text").text_content() == XSS
    open_card(graph, XSS)
    assert graph.locator("#model-panel h2").text_content() == XSS and facts(graph)["notes"] == XSS
    assert graph.locator("#graph img, #model-panel img").count() == 0


def test_checkpoint_dots_stay_under_their_own_node(graph) -> None:
    graph.check("#graph-checkpoints")
    graph.wait_for_selector("#graph .checkpoint")
    boxes = graph.evaluate("""() => [...document.querySelectorAll('#graph .node')].map((g) => ({
        id: g.dataset.id, rect: g.querySelector('rect').getBoundingClientRect().toJSON(),
        dots: [...g.querySelectorAll('.checkpoint circle')].map((c) => c.getBoundingClientRect().toJSON())}))""")
    dotted = [b for b in boxes if b["dots"]]
    assert sum(len(b["dots"]) for b in dotted) == 3 + 3 * len(CURVE_MODELS)

    def overlap(a, b) -> bool:
        return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]

    for owner in dotted:
        for dot in owner["dots"]:
            assert owner["rect"]["left"] <= dot["left"] and dot["right"] <= owner["rect"]["right"]
            assert not any(overlap(dot, other["rect"]) for other in boxes if other["id"] != owner["id"])
    shot(graph, "lineage-checkpoints")


def test_a_node_is_reached_by_keyboard_and_enter_opens_its_card(graph) -> None:
    graph.focus("#graph-search")
    for _ in range(10):
        graph.keyboard.press("Tab")
        if graph.evaluate("document.activeElement.classList.contains('node')"):
            break
    assert graph.evaluate("document.activeElement.matches('.node:focus-visible')")
    assert graph.locator("#graph .node[tabindex='0']").count() == 1  # one tab stop, not one per node
    graph.keyboard.press("ArrowDown")
    name = graph.evaluate("document.activeElement.querySelector('title').textContent").split(" (run ")[0]
    graph.keyboard.press("Enter")
    graph.wait_for_selector(f"#model-panel h2.card-name:text-is('{name}')")
    assert graph.locator("#parent-choice").get_attribute("id") == graph.locator("label[for='parent-choice']").get_attribute("for")
    shot(graph, "lineage-keyboard")


def test_curves_have_ticks_gridlines_a_whole_legend_and_distinct_styles(graph) -> None:
    graph.click("button.view-tab[data-view='curves']")
    graph.select_option("#curve-family", "training")
    graph.wait_for_function(f"document.querySelectorAll('#curves polyline').length === {len(CURVE_MODELS)}")
    for axis in ("x", "y"):
        labels = graph.locator(f"#curves text.tick.{axis}").all_text_contents()
        assert len(labels) >= 3 and len(set(labels)) == len(labels)
    assert graph.locator("#curves .grid line").count() == graph.locator("#curves text.tick").count()
    assert "1000" in graph.locator("#curves text.tick.x").all_text_contents()
    assert "lower is better" in graph.locator("#curves .axis-title").all_text_contents()[1]
    chart = graph.locator("#curves").bounding_box()
    items = graph.locator("#curves .legend-item")
    assert items.count() == len(CURVE_MODELS)
    for i in range(items.count()):
        b = items.nth(i).bounding_box()
        assert chart["x"] <= b["x"] and b["x"] + b["width"] <= chart["x"] + chart["width"]
        assert chart["y"] <= b["y"] and b["y"] + b["height"] <= chart["y"] + chart["height"]
    styles = graph.eval_on_selector_all(
        "#curves polyline", "ls => ls.map((l) => [l.getAttribute('stroke'), l.getAttribute('stroke-dasharray')])")
    assert len({stroke for stroke, _ in styles[:10]}) == 10  # ten colours, then dashes
    assert len({tuple(s) for s in styles}) == len(CURVE_MODELS)
    shot(graph, "lineage-curves")


# ---------------------------------------------------------------- setting the parent (its own registry)

@pytest.fixture
def editable(browser, tmp_path: Path):
    db = tmp_path / "edit.db"
    build(db)
    with serve(db) as url, open_page(browser, url) as page:
        page.click("button.view-tab[data-view='graph']")
        page.wait_for_selector("#graph .node")
        yield page, db


def column_of(page, name: str) -> float:
    """The node's x in the graph (its translate)."""
    return float(node(page, name).get_attribute("transform").split("(")[1].split(",")[0])


def card_says(page, label: str, text: str) -> None:
    page.wait_for_function("""([label, text]) => [...document.querySelectorAll('#model-panel .card-facts dt')]
        .some((dt) => dt.textContent === label && dt.nextElementSibling.textContent === text)""", arg=[label, text])


def said(page, text: str) -> None:
    page.wait_for_selector(f"#parent-message:has-text('{text}')")


def test_set_a_parent_from_the_list_by_picking_in_the_graph_and_clear_it(editable) -> None:
    page, db = editable
    edges = page.locator("#graph .edge").count()
    open_card(page, "orphan")
    page.fill("#parent-filter", "bas")
    assert page.locator("#parent-choice option").all_text_contents() == ["base (pretrain)"]
    page.select_option("#parent-choice", label="base (pretrain)")
    page.click("#parent-set")
    said(page, "Parent set to base.")
    assert page.locator("#graph .edge").count() == edges + 1
    card_says(page, "parent", "base (pretrain)")  # (the card is drawn again, from the server)
    assert column_of(page, "orphan") == column_of(page, "sft")  # one column right of base, as sft

    page.click("#parent-pick")
    said(page, "Click the new parent")
    page.keyboard.press("Escape")
    said(page, "Picking cancelled.")
    page.click("#parent-pick")
    node(page, "dpo").click()
    said(page, "Parent set to dpo.")
    assert column_of(page, "orphan") == column_of(page, LONG)  # a sibling of LONG now
    shot(page, "lineage-parent-set")

    open_card(page, "sft")  # orphan descends from sft now: the server refuses the cycle
    page.click("#parent-pick")
    node(page, "orphan").click()
    page.wait_for_selector("#parent-message.error")
    assert "cycle" in page.locator("#parent-message").text_content()
    shot(page, "lineage-parent-cycle")

    open_card(page, "orphan")
    page.click("#parent-clear")
    said(page, "Parent removed.")
    assert page.locator("#graph .edge").count() == edges
    with sqlite3.connect(db) as conn:
        last = conn.execute("SELECT type, origin FROM events ORDER BY seq DESC LIMIT 3").fetchall()
    assert [origin for _, origin in last] == ["web"] * 3 and all("parent" in kind for kind, _ in last)


def test_a_read_only_registry_says_so_in_the_panel(editable) -> None:
    page, db = editable
    open_card(page, "orphan")
    mode = db.stat().st_mode
    db.chmod(mode & ~0o222)  # chmod a-w (the tests run as root, which could still write)
    try:
        page.click("#parent-clear")
        page.wait_for_selector("#parent-message.error")
    finally:
        db.chmod(mode)
    assert "read-only" in page.locator("#parent-message").text_content()
    assert page.locator("#model-panel").is_visible()


# ---------------------------------------------------------------- 2,000 nodes

def test_two_thousand_nodes_fit_in_view_and_search_zooms_to_a_hit(browser, tmp_path: Path) -> None:
    db = tmp_path / "big.db"
    with LightMLHandle(db, "big", synchronous="NORMAL") as h:
        for m in range(1000):  # chains of five, and no metrics: the graph needs neither
            h.register_model(f"model-{m:04d}", f"/m/{m}", parent_name=f"model-{m - 1:04d}" if m % 5 else None)
        for m in range(1000, 2000):  # and a base with 1,000 fine-tunes
            h.register_model(f"model-{m:04d}", f"/m/{m}", parent_name="model-0000")
    with serve(db) as url, open_page(browser, url) as page:
        page.click("button.view-tab[data-view='graph']")
        page.wait_for_function("document.querySelectorAll('#graph .node').length === 2000")
        outside = """() => { const area = document.getElementById('graph').getBoundingClientRect();
            return [...document.querySelectorAll('#graph .node rect')].filter((r) => { const b = r.getBoundingClientRect();
              return b.left < area.left || b.top < area.top || b.right > area.right || b.bottom > area.bottom; }).length; }"""
        assert page.evaluate(outside) == 0  # fitted on first show
        # the 1,000 fine-tunes in a grid, not a column 1,000 rows high: a box stays a visible box
        assert page.locator("#graph .node rect").first.bounding_box()["height"] > 3
        assert page.locator("#graph.far").count() == 1  # too small to read: boxes only
        shot(page, "lineage-2000-fit")
        page.fill("#graph-search", "model-1999")
        hit = page.locator("#graph .node.highlight")
        assert hit.count() == 1 and page.locator("#graph.far").count() == 0
        area, b = page.locator("#graph").bounding_box(), hit.locator("rect").bounding_box()
        assert area["x"] <= b["x"] and b["x"] + b["width"] <= area["x"] + area["width"]
        assert area["y"] <= b["y"] and b["y"] + b["height"] <= area["y"] + area["height"]
        shot(page, "lineage-2000-search")
        page.click("#graph-fit")
        assert page.evaluate(outside) == 0
