// The lineage graph: models laid out by depth, coloured by run, pan and zoom.
import {$, el, svg, api, state} from "./core.js";
import {toggleSelected, syncSelection} from "./table.js";

// Light fills that stay apart from each other (and from the text on them); the legend names
// each run, so a colour is never the only way to tell runs apart.
export const RUN_COLORS = ["#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#fc9272", "#ffe066", "#66c2a5", "#d9d9d9"];

export async function loadLineage() {
  state.lineage = await api("/api/lineage");
  renderGraph();
}

export function layout(nodes) {
  // Layered: a node's column is its depth in the lineage (base left, SFT, DPO ... right);
  // rows follow a depth-first walk, so each child sits near its parent.
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const children = new Map();
  for (const n of nodes) {
    const parent = byId.has(n.parent) ? n.parent : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(n);
  }
  const position = new Map();
  let row = 0;
  const visit = (node, depth, seen) => {
    if (seen.has(node.id)) return;
    seen.add(node.id);
    position.set(node.id, {x: depth, y: row});
    const kids = children.get(node.id) || [];
    if (!kids.length) row += 1;
    for (const kid of kids) visit(kid, depth + 1, seen);
  };
  const seen = new Set();
  for (const root of children.get(null) || []) visit(root, 0, seen);
  for (const n of nodes) if (!seen.has(n.id)) visit(n, 0, seen);  // cycles, if any
  return position;
}

export function renderLegend(runs) {
  $("graph-legend").replaceChildren(...runs.map((run, i) => {
    const swatch = el("span", {class: "swatch"});
    swatch.style.background = RUN_COLORS[i % RUN_COLORS.length];  // (CSSOM: no inline style attribute)
    return el("span", {class: "legend-item"}, swatch, document.createTextNode(run ?? "(no run)"));
  }));
}

export function renderGraph() {
  const {nodes, families} = state.lineage;
  const root = $("graph-root");
  root.replaceChildren();
  const position = layout(nodes);
  const runs = [...new Set(nodes.map((n) => n.run))];
  renderLegend(runs);
  const W = 190, H = 34, BOX_W = 150, BOX_H = 22;
  const at = (id) => { const p = position.get(id); return {x: 20 + p.x * W, y: 20 + p.y * H}; };
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const n of nodes) {
    if (!byId.has(n.parent)) continue;
    const from = at(n.parent), to = at(n.id);
    root.append(svg("path", {class: "edge",
      d: `M${from.x + BOX_W},${from.y + BOX_H / 2} C${from.x + BOX_W + 20},${from.y + BOX_H / 2} ${to.x - 20},${to.y + BOX_H / 2} ${to.x},${to.y + BOX_H / 2}`}));
  }
  for (const n of nodes) {
    const p = at(n.id);
    const g = svg("g", {class: "node", "data-id": String(n.id), transform: `translate(${p.x},${p.y})`});
    g.append(svg("rect", {width: BOX_W, height: BOX_H, fill: RUN_COLORS[runs.indexOf(n.run) % RUN_COLORS.length]}));
    const label = n.model.length > 22 ? n.model.slice(0, 21) + "…" : n.model;
    g.append(svg("text", {x: 6, y: 15, text: label}), svg("title", {text: `${n.model} (run ${n.run ?? "none"})`}));
    if (state.graph.showCheckpoints) {
      n.checkpoints.forEach((c, i) => {
        const dot = svg("g", {class: "checkpoint", transform: `translate(${BOX_W + 8 + i * 10},${BOX_H / 2})`});
        dot.append(svg("circle", {r: 4}), svg("title", {text: `${n.model} step ${c.step}`}));
        g.append(dot);
      });
    }
    g.addEventListener("mouseenter", (event) => showTooltip(event, n, families));
    g.addEventListener("mousemove", moveTooltip);
    g.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
    g.addEventListener("click", () => { toggleSelected(n.id, !state.selected.has(n.id)); });
    root.append(g);
  }
  applyGraphTransform();
  highlightGraph();
  syncSelection();
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

export function highlightGraph() {
  const needle = $("graph-search").value.toLowerCase();
  document.querySelectorAll("#graph .node").forEach((g) => {
    const node = state.lineage.nodes.find((n) => n.id === Number(g.dataset.id));
    const hit = needle && node.model.toLowerCase().includes(needle);
    g.classList.toggle("highlight", Boolean(hit));
    g.classList.toggle("dim", Boolean(needle) && !hit);
  });
}

export function applyGraphTransform() {
  const {x, y, k} = state.graph;
  $("graph-root").setAttribute("transform", `translate(${x},${y}) scale(${k})`);
}

export function setupPanZoom() {
  const area = $("graph");
  let drag = null;
  area.addEventListener("mousedown", (event) => { drag = {x: event.clientX, y: event.clientY, gx: state.graph.x, gy: state.graph.y}; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (event) => {
    if (!drag) return;
    state.graph.x = drag.gx + event.clientX - drag.x;
    state.graph.y = drag.gy + event.clientY - drag.y;
    requestAnimationFrame(applyGraphTransform);
  });
  area.addEventListener("wheel", (event) => {
    event.preventDefault();
    const box = area.getBoundingClientRect();
    const mx = event.clientX - box.left, my = event.clientY - box.top;
    const factor = Math.exp(-event.deltaY * 0.0015);
    const k = Math.min(4, Math.max(0.1, state.graph.k * factor));
    // zoom around the pointer
    state.graph.x = mx - (mx - state.graph.x) * (k / state.graph.k);
    state.graph.y = my - (my - state.graph.y) * (k / state.graph.k);
    state.graph.k = k;
    // While zooming, labels are hidden: re-drawing thousands of texts every frame is what
    // would make the zoom stutter. They come back once the wheel rests.
    area.classList.add("moving");
    clearTimeout(state.graph.rest);
    state.graph.rest = setTimeout(() => area.classList.remove("moving"), 150);
    requestAnimationFrame(applyGraphTransform);
  }, {passive: false});
}
