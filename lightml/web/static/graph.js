// The lineage graph: models laid out by depth, coloured by run, pan and zoom, a side panel with
// the chosen model's card (and its parent control), keyboard access.
import {$, el, svg, api, post, state, naturalCompare, LIGHT_COLORS} from "./core.js";
import {toggleSelected, syncSelection} from "./table.js";
import {showEdit} from "./details.js";
import {refresh} from "./main.js";

// The legend names each run, so a colour is never the only way to tell runs apart.
const RUN_COLORS = LIGHT_COLORS;

// Geometry, in graph units (1 unit = 1 px at zoom 1). A row leaves room under each box for its
// checkpoint dots, so they never reach the next row or column.
const COL_W = 200, ROW_H = 46, BOX_W = 172, BOX_H = 30, PAD = 20, BAND_GAP = 80;
const FAN_OUT = 24;  // more childless children than this: in a grid
const LABEL_FONT = "11px system-ui, sans-serif";  // #graph .node text's, to measure labels
const LABEL_W = BOX_W - 12;
// Under this zoom an 11 px label is smaller than ~6 px on screen: unreadable, so not drawn.
const READABLE_K = 0.55;

// What the drawn graph is made of, for the event handlers (rebuilt by renderGraph).
const graph = {byId: new Map(), position: new Map(), children: new Map(), columns: new Map(),
  extent: {width: 0, height: 0}, minK: 0.1, fitted: false, fitView: false, current: null, picking: null};

export async function loadLineage() {
  state.lineage = await api("/api/lineage");
  renderGraph();
}

// ---------------------------------------------------------------- layout

function childrenOf(nodes, byId) {
  const children = new Map();
  for (const n of nodes) {
    const parent = byId.has(n.parent) ? n.parent : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(n);
  }
  for (const kids of children.values()) kids.sort((a, b) => naturalCompare(a.model, b.model) || naturalCompare(a.run ?? "", b.run ?? ""));
  return children;
}

// One tree: a node's column is its depth (base left, SFT, DPO ... right); rows follow a
// depth-first walk, so each child sits near its parent. Cells are relative to the tree.
// A node with many children that have none of their own (a base with 500 fine-tunes) has
// them in a grid framed by one box, rather than in a column 500 rows high.
function layoutTree(root, children, seen) {
  const cells = [], groups = [];
  let rows = 0, cols = 0;
  const visit = (node, depth) => {
    if (seen.has(node.id)) return;
    seen.add(node.id);
    cells.push({id: node.id, col: depth, row: rows});
    cols = Math.max(cols, depth + 1);
    const kids = children.get(node.id) || [];
    const leaves = kids.filter((kid) => !children.has(kid.id));
    const grid = new Set(leaves.length > FAN_OUT ? leaves : []);
    if (!kids.length) rows += 1;
    for (const kid of kids) if (!grid.has(kid)) visit(kid, depth + 1);
    if (grid.size) placeGrid(node, [...grid], depth + 1);
  };
  const placeGrid = (parent, leaves, col) => {
    // about as tall as wide on a screen: a box is COL_W wide, ROW_H high
    const across = Math.ceil(Math.sqrt(leaves.length * ROW_H / COL_W * 1.6));
    leaves.forEach((leaf, i) => {
      seen.add(leaf.id);
      cells.push({id: leaf.id, col: col + (i % across), row: rows + Math.floor(i / across), grouped: true});
    });
    const down = Math.ceil(leaves.length / across);
    groups.push({parent: parent.id, col, row: rows, cols: across, rows: down});
    rows += down;
    cols = Math.max(cols, col + across);
  };
  visit(root, 0);
  return {cells, groups, rows: Math.max(rows, 1), cols};
}

// Trees are stacked in bands side by side rather than in one column, so a registry of many
// small trees (2,000 base models, say) fills a screen-shaped area instead of a 2,000-row strip.
export function layout(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const children = childrenOf(nodes, byId);
  const seen = new Set();
  const trees = (children.get(null) || []).map((root) => layoutTree(root, children, seen));
  for (const n of nodes) if (!seen.has(n.id)) trees.push(layoutTree(n, children, seen));  // cycles, if any
  const area = trees.reduce((sum, t) => sum + t.rows * ROW_H * (t.cols * COL_W + BAND_GAP), 0);
  const bandRows = Math.max(...trees.map((t) => t.rows), Math.ceil(Math.sqrt(area / 1.6) / ROW_H));
  const position = new Map(), groups = [];
  let bandX = 0, bandCols = 0, row = 0;
  for (const tree of trees) {
    if (row > 0 && row + tree.rows > bandRows) {  // this band is full: the next one to its right
      bandX += bandCols * COL_W + BAND_GAP;
      bandCols = 0;
      row = 0;
    }
    const at = (col, r) => ({x: PAD + bandX + col * COL_W, y: PAD + (row + r) * ROW_H});
    for (const c of tree.cells) position.set(c.id, {...at(c.col, c.row), grouped: Boolean(c.grouped)});
    for (const g of tree.groups) {
      groups.push({parent: g.parent, ...at(g.col, g.row),
        width: (g.cols - 1) * COL_W + BOX_W, height: (g.rows - 1) * ROW_H + BOX_H + 10});
    }
    bandCols = Math.max(bandCols, tree.cols);
    row += tree.rows;
  }
  return {position, groups, children, byId};
}

// Node ids by column (same x), top to bottom: the up and down arrow keys walk them.
function columnsOf(position) {
  const columns = new Map();
  for (const [id, p] of position) {
    if (!columns.has(p.x)) columns.set(p.x, []);
    columns.get(p.x).push(id);
  }
  for (const ids of columns.values()) ids.sort((a, b) => position.get(a).y - position.get(b).y);
  return columns;
}

// ---------------------------------------------------------------- labels

const measurer = document.createElement("canvas").getContext("2d");
const wrapped = new Map();  // name -> its lines (measuring is the costly part of drawing 2,000 nodes)

function textWidth(text) {
  measurer.font = LABEL_FONT;
  return measurer.measureText(text).width;
}

// The longest prefix of text (at least one character) that fits in width.
function fittingLength(text, width) {
  let lo = 1, hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (textWidth(text.slice(0, mid)) <= width) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// A name in at most two lines that fit the box: broken after a separator (/ - _ . space) where
// one is near the end of the first line; a name too long for two lines keeps its start and its
// end (where fine-tunes differ: "-dpo-epoch3"), with "…" for the middle. The full name is in
// the node's <title> and the side panel.
export function labelLines(name) {
  if (wrapped.has(name)) return wrapped.get(name);
  let lines = [name];
  if (textWidth(name) > LABEL_W) {
    let cut = fittingLength(name, LABEL_W);
    const separator = Math.max(...["/", "-", "_", ".", " "].map((s) => name.lastIndexOf(s, cut - 1)));
    if (separator >= cut * 0.5) cut = separator + 1;
    let rest = name.slice(cut);
    if (textWidth(rest) > LABEL_W) {
      const reversed = [...rest].reverse().join("");
      rest = "…" + rest.slice(rest.length - fittingLength(reversed, LABEL_W - textWidth("…")));
    }
    lines = [name.slice(0, cut), rest];
  }
  wrapped.set(name, lines);
  return lines;
}

function labelElement(name) {
  const lines = labelLines(name);
  const text = svg("text", {x: 6, y: lines.length === 1 ? 19 : 13});
  lines.forEach((line, i) => text.append(svg("tspan", {x: 6, dy: i ? 13 : 0, text: line})));
  return text;
}

// ---------------------------------------------------------------- drawing

export function renderLegend(runs) {
  $("graph-legend").replaceChildren(...runs.map((run, i) => {
    const swatch = el("span", {class: "swatch"});
    swatch.style.background = RUN_COLORS[i % RUN_COLORS.length];  // (CSSOM: no inline style attribute)
    return el("span", {class: "legend-item"}, swatch, document.createTextNode(run ?? "(no run)"));
  }));
}

// Dots under the box, squeezed to its width: never past it into the gap or the next column.
function checkpointDots(n) {
  const count = n.checkpoints.length;
  const gap = count > 1 ? Math.min(10, (BOX_W - 10) / (count - 1)) : 0;
  return n.checkpoints.map((c, i) => {
    const dot = svg("g", {class: "checkpoint", transform: `translate(${5 + i * gap},${BOX_H + 7})`});
    dot.append(svg("circle", {r: 3.5}), svg("title", {text: `${n.model} step ${c.step}`}));
    return dot;
  });
}

function nodeElement(n, p, fill) {
  const run = n.run ?? "none";
  const g = svg("g", {class: "node", "data-id": String(n.id), transform: `translate(${p.x},${p.y})`,
    tabindex: "-1", role: "button", "aria-label": `${n.model} (run ${run}): open its card`});
  g.append(svg("rect", {width: BOX_W, height: BOX_H, fill}), labelElement(n.model),
    svg("title", {text: `${n.model} (run ${run})`}));
  if (state.graph.showCheckpoints) g.append(...checkpointDots(n));
  return g;
}

// A grid of children: one frame around them, one edge from their parent to it.
function groupElements(group, from) {
  const frame = svg("rect", {class: "edge group", x: group.x - 8, y: group.y - 6, width: group.width + 16,
    height: group.height + 12, rx: 6});
  return [frame, edgeElement(from, {x: group.x - 8, y: group.y})];
}

function edgeElement(from, to) {
  const y1 = from.y + BOX_H / 2, y2 = to.y + BOX_H / 2, x1 = from.x + BOX_W;
  return svg("path", {class: "edge", d: `M${x1},${y1} C${x1 + 20},${y1} ${to.x - 20},${y2} ${to.x},${y2}`});
}

export function renderGraph() {
  const {nodes} = state.lineage;
  const {position, groups, children, byId} = layout(nodes);
  Object.assign(graph, {position, children, byId, columns: columnsOf(position)});
  graph.extent = {width: Math.max(0, ...[...position.values()].map((p) => p.x + BOX_W)) + PAD,
    height: Math.max(0, ...[...position.values()].map((p) => p.y + ROW_H)) + PAD};
  updateMinZoom();
  const runs = [...new Set(nodes.map((n) => n.run))];
  renderLegend(runs);
  const drawn = document.createDocumentFragment();
  for (const n of nodes) {
    if (byId.has(n.parent) && !position.get(n.id).grouped) drawn.append(edgeElement(position.get(n.parent), position.get(n.id)));
  }
  for (const group of groups) drawn.append(...groupElements(group, position.get(group.parent)));
  for (const n of nodes) drawn.append(nodeElement(n, position.get(n.id), RUN_COLORS[runs.indexOf(n.run) % RUN_COLORS.length]));
  $("graph-root").replaceChildren(drawn);
  if (graph.current != null && !byId.has(graph.current)) closePanel();  // hidden or deleted meanwhile
  markCurrent();
  // Fitted the first time it is shown, and again while the user has not moved the view since
  // (the graph grew); otherwise a render keeps the user's pan and zoom.
  if ((!graph.fitted || graph.fitView) && $("graph").getBoundingClientRect().width) {
    graph.fitted = true;
    fitGraph();
  }
  applyGraphTransform();
  markHits();
  syncSelection();
  if (graph.current != null) showCard(graph.current);
}

// Keyboard focus roves: one node is in the tab order (the current one, else the first), the
// arrow keys move between nodes. 2,000 tab stops would make the page unusable by keyboard.
function markCurrent() {
  let entry = null;
  document.querySelectorAll("#graph .node").forEach((g) => {
    const current = Number(g.dataset.id) === graph.current;
    g.classList.toggle("current", current);
    if (current) entry = g;
    g.setAttribute("tabindex", "-1");
  });
  (entry || document.querySelector("#graph .node"))?.setAttribute("tabindex", "0");
}

export function showTooltip(event, node, families) {
  const tip = $("tooltip");
  tip.replaceChildren(el("strong", {text: node.model}), el("div", {text: `run: ${node.run ?? ""}`}));
  for (const f of families) {
    const has = node.families.includes(f);
    tip.append(el("div", {}, el("span", {class: `dot ${has ? "yes" : "no"}`}), document.createTextNode(f)));
  }
  if (node.checkpoints.length) tip.append(el("div", {text: `${node.checkpoints.length} checkpoints`}));
  tip.hidden = false;
  moveTooltip(event);
}

export function moveTooltip(event) {
  const tip = $("tooltip");
  tip.style.left = `${event.clientX + 14}px`;
  tip.style.top = `${event.clientY + 10}px`;
}

// The search field's input: marks the models whose name has its text, and brings the first of
// them into view, zoomed in far enough to read it.
export function highlightGraph() {
  const first = markHits();
  if (first != null && (!onScreen(first) || state.graph.k < READABLE_K)) centerOn(first, Math.max(state.graph.k, 1));
}

// Marks the search's hits (and dims the rest); returns the first hit's id.
function markHits() {
  const needle = $("graph-search").value.toLowerCase();
  let first = null;
  document.querySelectorAll("#graph .node").forEach((g) => {
    const id = Number(g.dataset.id);
    const hit = Boolean(needle) && graph.byId.get(id).model.toLowerCase().includes(needle);
    g.classList.toggle("highlight", hit);
    g.classList.toggle("dim", Boolean(needle) && !hit);
    if (hit && first == null) first = id;
  });
  return first;
}

// ---------------------------------------------------------------- view: pan, zoom, fit

export function applyGraphTransform() {
  const {x, y, k} = state.graph;
  $("graph-root").setAttribute("transform", `translate(${x},${y}) scale(${k})`);
  $("graph").classList.toggle("far", k < READABLE_K);  // level of detail: boxes only
}

// The whole graph in view (never magnified past 1.5: three nodes do not fill the screen).
export function fitGraph() {
  const box = $("graph").getBoundingClientRect();
  if (!box.width || !graph.extent.width) return;
  const k = Math.min(1.5, box.width / graph.extent.width, box.height / graph.extent.height);
  Object.assign(state.graph, {k, x: (box.width - graph.extent.width * k) / 2, y: (box.height - graph.extent.height * k) / 2});
  graph.fitView = true;
  applyGraphTransform();
}

// How far the wheel zooms out: to half the whole graph's fit (a big graph needs more than 0.1).
// Kept, not measured on each wheel event: measuring the page there would cost frame time.
function updateMinZoom() {
  const box = $("graph").getBoundingClientRect();
  const fit = graph.extent.width && box.width ? Math.min(box.width / graph.extent.width, box.height / graph.extent.height) : 1;
  graph.minK = Math.min(0.1, fit / 2);
}

function onScreen(id) {
  const p = graph.position.get(id), {x, y, k} = state.graph, box = $("graph").getBoundingClientRect();
  const left = x + p.x * k, top = y + p.y * k;
  return left >= 0 && top >= 0 && left + BOX_W * k <= box.width && top + BOX_H * k <= box.height;
}

function centerOn(id, k) {
  const p = graph.position.get(id), box = $("graph").getBoundingClientRect();
  Object.assign(state.graph, {k, x: box.width / 2 - (p.x + BOX_W / 2) * k, y: box.height / 2 - (p.y + BOX_H / 2) * k});
  graph.fitView = false;
  applyGraphTransform();
}

// Wiring (called once by main.js): pan and zoom, the nodes' mouse and keyboard handling, the
// fit button.
export function setupPanZoom() {
  const area = $("graph");
  let drag = null;
  area.addEventListener("mousedown", (event) => {
    drag = {x: event.clientX, y: event.clientY, gx: state.graph.x, gy: state.graph.y, moved: false};
  });
  window.addEventListener("mouseup", () => {
    // A drag that moved ends in a click on the node it started on: not a choice of that node.
    if (drag?.moved) area.addEventListener("click", (e) => e.stopPropagation(), {capture: true, once: true});
    drag = null;
  });
  window.addEventListener("mousemove", (event) => {
    if (!drag) return;
    drag.moved ||= Math.abs(event.clientX - drag.x) + Math.abs(event.clientY - drag.y) > 4;
    graph.fitView &&= !drag.moved;
    state.graph.x = drag.gx + event.clientX - drag.x;
    state.graph.y = drag.gy + event.clientY - drag.y;
    requestAnimationFrame(applyGraphTransform);
  });
  area.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = area.getBoundingClientRect();
    const mx = event.clientX - box.left, my = event.clientY - box.top;
    const factor = Math.exp(-event.deltaY * 0.0015);
    const k = Math.min(4, Math.max(graph.minK, state.graph.k * factor));
    // zoom around the pointer
    state.graph.x = mx - (mx - state.graph.x) * (k / state.graph.k);
    state.graph.y = my - (my - state.graph.y) * (k / state.graph.k);
    state.graph.k = k;
    graph.fitView = false;
    // While zooming, labels are hidden: re-drawing thousands of texts every frame is what
    // would make the zoom stutter. They come back once the wheel rests.
    area.classList.add("moving");
    clearTimeout(state.graph.rest);
    state.graph.rest = setTimeout(() => area.classList.remove("moving"), 150);
    requestAnimationFrame(applyGraphTransform);
  }, {passive: false});
  setupNodeEvents($("graph-root"));
  const fit = el("button", {id: "graph-fit", type: "button", text: "Fit", title: "show the whole graph"});
  fit.addEventListener("click", fitGraph);
  $("graph-checkpoints").closest("label").after(fit);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape" && graph.picking != null) stopPicking("Picking cancelled."); });
}

// One set of listeners on the graph's root for all its nodes (rather than four per node).
function setupNodeEvents(root) {
  const nodeAt = (target) => target.closest?.(".node");
  const idOf = (g) => Number(g.dataset.id);
  root.addEventListener("mouseover", (event) => {
    const g = nodeAt(event.target);
    if (g && !g.contains(event.relatedTarget)) showTooltip(event, graph.byId.get(idOf(g)), state.lineage.families);
  });
  root.addEventListener("mousemove", (event) => { if (!$("tooltip").hidden) moveTooltip(event); });
  root.addEventListener("mouseout", (event) => {
    const g = nodeAt(event.target);
    if (g && !g.contains(event.relatedTarget)) $("tooltip").hidden = true;
  });
  root.addEventListener("click", (event) => {
    const g = nodeAt(event.target);
    if (!g) return;
    if (event.shiftKey || event.ctrlKey || event.metaKey) toggleSelected(idOf(g), !state.selected.has(idOf(g)));
    else chooseNode(idOf(g));
  });
  root.addEventListener("keydown", (event) => {
    const g = nodeAt(event.target);
    if (!g) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      chooseNode(idOf(g));
    }
    const next = neighbour(idOf(g), event.key);
    if (next != null) {
      event.preventDefault();
      focusNode(next);
    }
  });
  root.addEventListener("focusin", (event) => {
    const g = nodeAt(event.target);
    if (!g) return;
    root.querySelectorAll(".node[tabindex='0']").forEach((other) => other.setAttribute("tabindex", "-1"));
    g.setAttribute("tabindex", "0");
  });
}

// The node an arrow key leads to: up/down in the same column, left to the parent, right to
// the first child.
function neighbour(id, key) {
  const column = graph.columns.get(graph.position.get(id).x);
  const at = column.indexOf(id);
  if (key === "ArrowUp") return column[at - 1];
  if (key === "ArrowDown") return column[at + 1];
  if (key === "ArrowLeft") return graph.byId.has(graph.byId.get(id).parent) ? graph.byId.get(id).parent : undefined;
  if (key === "ArrowRight") return (graph.children.get(id) || [])[0]?.id;
  return undefined;
}

function focusNode(id) {
  if (!onScreen(id)) centerOn(id, Math.max(state.graph.k, READABLE_K));
  document.querySelector(`#graph .node[data-id="${id}"]`)?.focus({preventScroll: true});
}

// A click (or Enter) on a node: the new parent while picking one, otherwise its card.
function chooseNode(id) {
  if (graph.picking == null) {
    openPanel(id);
    return;
  }
  const child = graph.byId.get(graph.picking);
  stopPicking("");
  setParent(child, graph.byId.get(id));
}

// ---------------------------------------------------------------- the side panel

function openPanel(id) {
  const opening = graph.current !== id;
  graph.current = id;
  stopPicking("");
  markCurrent();
  const panel = $("model-panel");
  if (opening) panel.replaceChildren(el("div", {id: "card"}), parentControl(graph.byId.get(id)));
  panel.hidden = false;
  showCard(id);
  // The panel took some of the graph's width: the whole graph in view again, or this node.
  if (graph.fitView) fitGraph();
  else if (!onScreen(id)) centerOn(id, state.graph.k);
}

function closePanel() {
  graph.current = null;
  stopPicking("");
  $("model-panel").hidden = true;
  $("model-panel").replaceChildren();
  if (graph.fitView) fitGraph();
}

// The card: what the server knows of the model (GET /api/model). Drawn again on every render,
// so a live update shows in it; the parent control below it keeps what the user typed.
async function showCard(id) {
  const node = graph.byId.get(id);
  let card;
  try {
    card = await api(`/api/model?id=${id}`);
  } catch (error) {
    if (graph.current === id) fillCard(node, [["", error.message]]);
    return;
  }
  if (graph.current === id) fillCard(node, cardFacts(card));  // (not another node chosen meanwhile)
}

// [label, text or element] pairs, in the card's order; empty facts left out.
function cardFacts(card) {
  const link = (m) => {
    const button = el("button", {class: "link", type: "button", text: m.run ? `${m.model} (${m.run})` : m.model});
    button.addEventListener("click", () => { if (graph.byId.has(m.id)) { openPanel(m.id); focusNode(m.id); } });
    return button;
  };
  const settings = Object.entries(card.settings || {}).map(([k, values]) => `${k}: ${values.join(", ")}`);
  const change = card.last_change;
  return [
    ["path", card.path],
    ["run", card.run ?? "(no run)"],
    ["parent", card.parent ? link(card.parent) : "none"],
    ["children", card.children.length ? el("span", {class: "children"}, ...card.children.map(link)) : "none"],
    ["checkpoints", card.checkpoints.length ? `steps ${card.checkpoints.join(", ")}` : ""],
    ["families", card.families.join(", ")],
    ["params", Object.entries(card.params || {}).map(([k, v]) => `${k}=${v}`).join(", ")],
    ["tags", (card.tags || []).join(", ")],
    ["notes", card.notes || ""],
    ["last change", change ? `#${change.seq} ${change.at.replace("T", " ").replace("Z", "")} by ${change.actor}: ${change.what}` : ""],
    ["settings", settings.join("; ")],
    ["hidden", card.hidden ? "yes" : ""],
  ].filter(([, value]) => value !== "");
}

function fillCard(node, facts) {
  const close = el("button", {class: "close", type: "button", text: "✕", "aria-label": "close the card"});
  close.addEventListener("click", () => { const id = graph.current; closePanel(); focusNode(id); });
  const selected = el("input", {type: "checkbox", id: "panel-selected"});
  selected.checked = state.selected.has(node.id);
  selected.addEventListener("change", () => toggleSelected(node.id, selected.checked));
  const edit = el("button", {id: "panel-edit", type: "button", text: "Edit…", title: "notes, hide, rename, delete"});
  edit.addEventListener("click", () => editModel(node));
  const list = el("dl", {class: "card-facts"});
  for (const [label, value] of facts) list.append(el("dt", {text: label}), el("dd", {}, typeof value === "string" ? document.createTextNode(value) : value));
  $("card").replaceChildren(close, el("h2", {class: "card-name", text: node.model}), list,
    el("div", {class: "card-actions"}, el("label", {}, selected, document.createTextNode(" selected (to compare)")), edit));
}

async function editModel(node) {
  let card = {notes: "", hidden: false};
  try { card = await api(`/api/model?id=${node.id}`); } catch (error) { /* the editor opens with what the graph knows */ }
  showEdit({model: node.model, run: node.run, notes: card.notes ?? "", hidden: Boolean(card.hidden)});
}

// ---------------------------------------------------------------- setting the parent

// Every model but this one and its descendants (which would make a cycle), in natural order.
function parentCandidates(node) {
  const below = new Set([node.id]);
  const walk = (id) => (graph.children.get(id) || []).forEach((kid) => { if (!below.has(kid.id)) { below.add(kid.id); walk(kid.id); } });
  walk(node.id);
  return [...graph.byId.values()].filter((n) => !below.has(n.id))
    .sort((a, b) => naturalCompare(a.model, b.model) || naturalCompare(a.run ?? "", b.run ?? ""));
}

function fillChoices(select, node, needle) {
  const options = parentCandidates(node).filter((n) => n.model.toLowerCase().includes(needle.toLowerCase()))
    .map((n) => el("option", {value: String(n.id), text: n.run ? `${n.model} (${n.run})` : n.model}));
  select.replaceChildren(...options);
  select.disabled = !options.length;
}

function parentControl(node) {
  const filter = el("input", {id: "parent-filter", type: "search", placeholder: "filter the list…"});
  const select = el("select", {id: "parent-choice", size: "6"});
  fillChoices(select, node, "");
  filter.addEventListener("input", () => fillChoices(select, node, filter.value));
  const set = el("button", {id: "parent-set", type: "button", text: "Set parent"});
  set.addEventListener("click", () => { if (select.value) setParent(node, graph.byId.get(Number(select.value))); });
  select.addEventListener("dblclick", () => set.click());
  const pick = el("button", {id: "parent-pick", type: "button", text: "Pick in the graph"});
  pick.addEventListener("click", () => (graph.picking == null ? startPicking(node) : stopPicking("Picking cancelled.")));
  const clear = el("button", {id: "parent-clear", type: "button", text: "No parent"});
  clear.addEventListener("click", () => setParent(node, null));
  return el("section", {class: "parent-control", "aria-labelledby": "parent-heading"},
    el("h3", {id: "parent-heading", text: "Set parent"}),
    el("label", {for: "parent-filter", text: "Find a model"}), filter,
    el("label", {for: "parent-choice", text: "New parent"}), select,
    el("div", {class: "card-actions"}, set, pick, clear),
    el("p", {id: "parent-message", role: "status"}));
}

function say(text, isError = false) {
  const message = $("parent-message");
  if (!message) return;
  message.textContent = text;
  message.classList.toggle("error", isError);
}

function startPicking(node) {
  graph.picking = node.id;
  $("graph").classList.add("picking");
  $("parent-pick").textContent = "Cancel picking";
  say(`Click the new parent of ${node.model} in the graph (Escape cancels).`);
}

function stopPicking(text) {
  if (graph.picking == null) return;
  graph.picking = null;
  $("graph").classList.remove("picking");
  if ($("parent-pick")) $("parent-pick").textContent = "Pick in the graph";
  say(text);
}

// The server refuses a cycle (409), a model as its own parent (400), a read-only registry (409), a locked one (503): its
// message is shown in the panel.
async function setParent(node, parent) {
  say("Saving…");
  try {
    await post("/api/parent", {model: node.model, run: node.run, parent: parent ? parent.model : null, parent_run: parent ? parent.run : null});
  } catch (error) {
    say(error.message, true);
    return;
  }
  await refresh();  // the table and the graph (which draws the edge anew, and the card)
  // The list of candidates changed with the lineage: a fresh control, with the outcome.
  const control = document.querySelector("#model-panel .parent-control");
  if (control && graph.current === node.id) control.replaceWith(parentControl(graph.byId.get(node.id)));
  say(parent ? `Parent set to ${parent.model}.` : "Parent removed.");
}
