// The charts view: saved charts (items of kind "chart" in the registry, so everyone who opens
// it sees the same charts), a builder for new ones, each drawn as SVG and exported as SVG or PNG.
// Registry data reaches the page through textContent and setAttribute only (core.js says why).
import {$, el, svg, api, post, fmt, own, state, naturalCompare, STRONG_COLORS} from "./core.js";

// ---------------------------------------------------------------- look

// Past ten series a colour comes back, hatched (bars) or with another dash and marker (lines,
// points): colour is never the only thing that differs.
const PALETTE = STRONG_COLORS;
const DASHES = ["", "7 4", "2 3", "10 3 2 3"];
const MARKERS = ["circle", "square", "triangle", "diamond", "cross"];
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const INK = "#1d2330", MUTED = "#6b7385", GRID = "#e3e6ec";
// At most this many models per chart when the chart names none (every model of its filter).
const CAPS = {bar: 50, grouped_bar: 50, radar: 12, line: 20, scatter: 500};
const TYPES = [["bar", "bar (one metric)"], ["grouped_bar", "grouped bar"], ["radar", "radar"],
  ["line", "line over checkpoint steps"], ["scatter", "scatter"], ["summary", "summary set (bar)"]];

const look = (index, variant = Math.floor(index / PALETTE.length)) => ({color: PALETTE[index % PALETTE.length], variant});
const dashOf = (lk) => DASHES[lk.variant % DASHES.length];
const markerOf = (lk) => MARKERS[lk.variant % MARKERS.length];

// Text is measured by its length, not by the browser: drawing never waits for layout.
const textWidth = (text, size = 12) => String(text).length * size * 0.58;
const clip = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

// ---------------------------------------------------------------- scales

// Ticks at 1, 2 or 5 times a power of ten, covering [low, high].
export function niceTicks(low, high, count = 5) {
  if (!(high > low)) {
    const pad = Math.abs(low) * 0.1 || 1;
    [low, high] = [low - pad, high + pad];
  }
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw * (1 - 1e-9));
  const first = Math.floor(low / step + 1e-9) * step, last = Math.ceil(high / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; first + i * step <= last + step * 1e-6; i++) ticks.push(Number((first + i * step).toPrecision(12)));
  return {low: first, high: last, step, ticks};
}

function tickText(value, step) {
  if (value === 0) return "0";
  const size = Math.abs(value);
  if (size >= 1e6 || size < 1e-4) return value.toExponential(1);
  return value.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9))));
}

const linear = (d0, d1, r0, r1) => (v) => r0 + (d1 === d0 ? 0.5 : (v - d0) / (d1 - d0)) * (r1 - r0);

// ---------------------------------------------------------------- reading the data

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
const valueOf = (row, family, metric) => num(own(own(row.values, family), metric));
const keyOf = (family, metric) => `${family}\u0000${metric}`;
const metricName = (column) => `${column.family}/${column.metric}${column.lower_is_better ? " (lower is better)" : ""}`;

// The columns a chart names, in its order, and the names of those no longer in the registry.
function chartColumns(metrics, pivot) {
  const at = new Map(pivot.columns.map((c) => [keyOf(c.family, c.metric), c]));
  const columns = [], missing = [];
  for (const [family, metric] of metrics || []) {
    const column = at.get(keyOf(family, metric));
    if (column) columns.push(column); else missing.push(`${family}/${metric}`);
  }
  return {columns, missing};
}

// The model rows a chart draws: those it names (in its order), or every model row of its
// filter in natural order, capped. Notes say what is missing and what was left out.
function chartRows(spec, rows, cap, notes) {
  let chosen;
  if (spec.models && spec.models.length) {
    const byId = new Map(rows.map((r) => [r.id, r]));
    chosen = spec.models.map((id) => byId.get(id)).filter(Boolean);
    const gone = spec.models.length - chosen.length;
    if (gone) notes.push(`${gone} of the chart's ${spec.models.length} models are not in the registry (or its filter) any more.`);
  } else {
    chosen = [...rows].sort((a, b) => naturalCompare(a.model, b.model) || naturalCompare(a.run ?? "", b.run ?? ""));
  }
  if (chosen.length > cap) {
    notes.push(`Showing ${cap} of ${chosen.length} models (a chart of this type shows at most ${cap}; ` +
      "tick models in the table to choose which).");
    chosen = chosen.slice(0, cap);
  }
  return chosen;
}

// A model's label: its name, and its run where another drawn model has the same name.
function labeller(rows) {
  const count = new Map();
  for (const r of rows) count.set(r.model, (count.get(r.model) || 0) + 1);
  return (r) => (count.get(r.model) > 1 ? `${r.model} (${r.run ?? "no run"})` : r.model);
}

// A value's error bar: the 95% interval over its repeats when it is their mean, else lm-eval's
// stderr of it (column.stderr names the stderr's column), else none.
function errorOf(row, column) {
  const spread = own(own(row.repeats, column.family), column.metric);
  if (spread && num(spread.half_width) != null) return {half: spread.half_width, kind: "repeats", n: spread.n};
  const stderr = column.stderr == null ? null : valueOf(row, column.family, column.stderr);
  return stderr != null && stderr >= 0 ? {half: stderr, kind: "stderr"} : null;
}

// A param's value as a group label, and the order of the groups (numbers as numbers).
function paramGroups(rows, key) {
  const label = (r) => {
    const v = own(r.params, key);
    return v === undefined ? `${key}: none` : `${key}=${typeof v === "string" ? v : JSON.stringify(v)}`;
  };
  const values = new Map();
  for (const r of rows) if (!values.has(label(r))) values.set(label(r), own(r.params, key));
  const labels = [...values.keys()].sort((a, b) => {
    const va = values.get(a), vb = values.get(b);
    if (typeof va === "number" && typeof vb === "number") return va - vb;
    if (va === undefined || vb === undefined) return (va === undefined) - (vb === undefined);
    return naturalCompare(a, b);
  });
  const index = new Map(labels.map((l, i) => [l, i]));
  return {labels, label, indexOf: (r) => index.get(label(r))};
}

// Each row's look: by its colour group (color_by) when there is one, the rows of a group told
// apart by dash and marker; else one colour per row.
function rowLooks(rows, colorBy) {
  if (!colorBy) return {lookOf: (r) => look(rows.indexOf(r)), groups: null};
  const groups = paramGroups(rows, colorBy);
  const seen = new Map(), looks = new Map();
  for (const r of rows) {
    const g = groups.indexOf(r), k = seen.get(g) || 0;
    seen.set(g, k + 1);
    looks.set(r, look(g, Math.floor(g / PALETTE.length) + k));
  }
  return {lookOf: (r) => looks.get(r), groups};
}

// The data a chart needs, fetched (each URL once per `cache`). Synchronous drawing follows.
export async function chartData(spec, cache = new Map()) {
  const get = (url) => {
    if (!cache.has(url)) cache.set(url, api(url));
    return cache.get(url);
  };
  if (spec.summary != null) return {summary: await get(`/api/summary?id=${encodeURIComponent(spec.summary)}`)};
  const families = new Set((spec.metrics || []).map((m) => m[0]));
  for (const axis of [spec.x, spec.y]) if (axis && axis[0] !== "params") families.add(axis[0]);
  const params = new URLSearchParams();
  if (families.size === 1) params.set("family", [...families][0]);
  if (spec.run) params.set("run", spec.run);
  if (spec.where) params.set("where", spec.where);
  const pivot = get(`/api/pivot?${params}`);
  if (spec.type !== "line") return {pivot: await pivot};
  const [family, metric] = (spec.metrics || [])[0] || [];
  if (family == null) return {pivot: await pivot, curves: []};
  const curves = get(`/api/curves?${new URLSearchParams({family, metric})}`);
  return {pivot: await pivot, curves: await curves.catch(() => null)};  // (null: the metric is gone)
}

// ---------------------------------------------------------------- drawing: the frame

let drawings = 0;  // a unique prefix per drawing for its pattern ids (several charts share a page)

function drawing(width, title) {
  return {frag: document.createDocumentFragment(), defs: svg("defs"), patterns: new Set(), uid: `chart${++drawings}`,
    width, y: 12, title, legend: [], notes: [], summary: ""};
}

function text(d, x, y, content, attrs = {}) {
  const node = svg("text", {x, y, fill: INK, ...attrs});
  node.textContent = content;
  d.frag.append(node);
  return node;
}

const titled = (node, content) => { node.append(svg("title", {text: content})); return node; };

// Lines of at most `width` pixels of text, split at spaces.
function wrap(content, width, size = 12) {
  const lines = [];
  let line = "";
  for (const word of String(content).split(" ")) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size) > width) { lines.push(line); line = word; } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

function heading(d) {
  if (!d.title) return;
  for (const line of wrap(d.title, d.width - 32, 15)) {
    d.y += 18;
    text(d, 16, d.y, line, {"font-size": 15, "font-weight": 600});
  }
  d.y += 8;
}

function barFill(d, lk) {
  if (!lk.variant) return lk.color;
  const id = `${d.uid}-hatch-${lk.color.slice(1)}-${lk.variant}`;
  if (!d.patterns.has(id)) {
    d.patterns.add(id);
    const pattern = svg("pattern", {id, width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: `rotate(${[45, -45, 0, 90][lk.variant % 4]})`});
    pattern.append(svg("rect", {width: 6, height: 6, fill: lk.color}),
      svg("line", {x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#fff", "stroke-width": 2.5}));
    d.defs.append(pattern);
  }
  return `url(#${id})`;
}

function marker(shape, x, y, r, color) {
  const fill = {fill: color, stroke: "#fff", "stroke-width": 1};
  if (shape === "square") return svg("rect", {x: x - r, y: y - r, width: 2 * r, height: 2 * r, ...fill});
  const polygon = (corners) => svg("polygon", {points: corners.map(([dx, dy]) => `${x + dx * r},${y + dy * r}`).join(" "), ...fill});
  if (shape === "triangle") return polygon([[0, -1.2], [1.1, 0.8], [-1.1, 0.8]]);
  if (shape === "diamond") return polygon([[0, -1.3], [1.1, 0], [0, 1.3], [-1.1, 0]]);
  if (shape === "cross") {
    return svg("path", {d: `M${x - r},${y - r}L${x + r},${y + r}M${x - r},${y + r}L${x + r},${y - r}`,
      stroke: color, "stroke-width": 2.5, fill: "none"});
  }
  return svg("circle", {cx: x, cy: y, r, ...fill});
}

// The legend, below the plot, in as many rows as its entries need: never cut.
function legend(d) {
  if (!d.legend.length) return;
  let x = 16, y = d.y + 8;
  for (const entry of d.legend) {
    const shown = clip(entry.label, 80), {color} = entry.look;
    const width = 30 + textWidth(shown) + 16;
    if (x > 16 && x + width > d.width - 16) { x = 16; y += 20; }
    const g = svg("g", {});
    if (entry.kind === "box") {
      g.append(svg("rect", {x, y, width: 14, height: 14, fill: barFill(d, entry.look), stroke: INK, "stroke-width": 0.5}));
    } else {
      if (entry.kind === "line") {
        g.append(svg("line", {x1: x, y1: y + 7, x2: x + 24, y2: y + 7, stroke: color, "stroke-width": 2,
          "stroke-dasharray": dashOf(entry.look)}));
      }
      g.append(marker(markerOf(entry.look), x + 12, y + 7, 4, color));
    }
    const label = svg("text", {x: x + 30, y: y + 11.5, fill: INK, text: shown});
    g.append(titled(label, entry.label));
    d.frag.append(g);
    x += width;
  }
  d.y = y + 24;
}

function notes(d) {
  for (const note of d.notes) {
    for (const line of wrap(note, d.width - 32)) {
      d.y += 16;
      text(d, 16, d.y, line, {fill: MUTED});
    }
  }
  if (d.notes.length) d.y += 8;
}

// A horizontal value axis with gridlines: ticks from `scale`, its label written up the side.
function valueAxis(d, ticks, sy, left, right, label) {
  const g = svg("g", {"font-size": 11});
  for (const t of ticks.ticks) {
    const y = sy(t);
    g.append(svg("line", {x1: left, y1: y, x2: right, y2: y, stroke: t === 0 ? "#9aa3b5" : GRID}));
    const tick = svg("text", {x: left - 6, y: y + 4, "text-anchor": "end", fill: MUTED});
    tick.textContent = tickText(t, ticks.step);
    g.append(tick);
  }
  const mid = (sy(ticks.low) + sy(ticks.high)) / 2;
  const title = svg("text", {x: 14, y: mid, "text-anchor": "middle", fill: INK, transform: `rotate(-90 14 ${mid})`});
  title.textContent = clip(label, 60);
  g.append(title);
  d.frag.append(g);
}

// A message in place of a chart (nothing to draw, or it could not be drawn).
function message(d, content) {
  d.notes.unshift(content);
  d.summary = content;
}

// ---------------------------------------------------------------- drawing: the chart types

// Bars: categories (models) on x, one bar per series in each, with error bars where known.
// cell(ci, si) -> {value, err, look, title} or null (no value).
function bars(d, categories, series, cell, yLabel, bands) {
  const cells = categories.map((_, ci) => series.map((_, si) => cell(ci, si)));
  const known = cells.flat().filter(Boolean);
  if (!known.length) {
    message(d, "No model has a value of the chart's metrics.");
    return false;
  }
  let low = 0, high = 0;
  for (const c of known) {
    const half = c.err ? c.err.half : 0;
    low = Math.min(low, c.value - half);
    high = Math.max(high, c.value + half);
  }
  if (low === 0 && high === 0) high = 1;
  const ticks = niceTicks(low, high);
  const L = 64, R = 16, T = d.y + 10, H = 300;
  const groupWidth = Math.max((d.width - L - R) / categories.length, series.length * 5 + 10, 18);
  d.width = Math.max(d.width, L + R + groupWidth * categories.length);
  const sy = linear(ticks.low, ticks.high, T + H, T);
  if (bands) bandsBehind(d, bands, L, T, H, groupWidth);
  valueAxis(d, ticks, sy, L, d.width - R, yLabel);
  // Bars at most 48 px wide, centred in their group: a few models do not make slabs.
  const barWidth = Math.min((groupWidth - 8) / series.length, 48), inset = (groupWidth - barWidth * series.length) / 2;
  const group = svg("g", {});
  const whiskers = svg("g", {stroke: INK, "stroke-width": 1.2});
  cells.forEach((row, ci) => row.forEach((c, si) => {
    if (!c) return;
    const x = L + ci * groupWidth + inset + si * barWidth;
    const y0 = sy(Math.max(0, c.value)), y1 = sy(Math.min(0, c.value));
    const rect = svg("rect", {x, y: y0, width: Math.max(barWidth - 1, 1), height: Math.max(y1 - y0, 0.5), fill: barFill(d, c.look)});
    group.append(titled(rect, c.title));
    if (c.err) {
      const cx = x + barWidth / 2 - 0.5, top = sy(c.value + c.err.half), bottom = sy(c.value - c.err.half), w = Math.min(barWidth / 3, 5);
      whiskers.append(svg("path", {d: `M${cx},${top}V${bottom}M${cx - w},${top}H${cx + w}M${cx - w},${bottom}H${cx + w}`}));
    }
  }));
  d.frag.append(group, whiskers);
  d.y = T + H + categoryLabels(d, categories, L, T + H, groupWidth) + 8;
  return true;
}

// The category names under the axis, slanted when they do not fit; returns the height used.
function categoryLabels(d, categories, left, top, groupWidth) {
  const labels = categories.map((c) => clip(c.label, 28));
  const slanted = labels.some((l) => textWidth(l, 11) > groupWidth - 4);
  const g = svg("g", {"font-size": 11, fill: INK});
  labels.forEach((label, i) => {
    const x = left + (i + 0.5) * groupWidth;
    const node = svg("text", slanted
      ? {x, y: top + 14, "text-anchor": "end", transform: `rotate(-40 ${x} ${top + 14})`}
      : {x, y: top + 16, "text-anchor": "middle"});
    node.textContent = label;
    g.append(titled(node, categories[i].label));
  });
  d.frag.append(g);
  return slanted ? 20 + Math.max(...labels.map((l) => textWidth(l, 11))) * 0.65 : 24;
}

// Shaded spans behind runs of neighbouring categories with the same group (a color_by value).
function bandsBehind(d, bands, left, top, height, groupWidth) {
  let start = 0, band = 0;
  bands.forEach((label, i) => {
    if (i + 1 < bands.length && bands[i + 1] === label) return;
    const x = left + start * groupWidth, width = (i + 1 - start) * groupWidth;
    d.frag.append(svg("rect", {x, y: top, width, height, fill: band++ % 2 ? "#ffffff" : "#eef1f6"}));
    text(d, x + 4, top + 12, clip(label, Math.max(4, Math.floor(width / 6.5))), {"font-size": 11, fill: MUTED});
    start = i + 1;
  });
}

// Which bars carry which kind of error bar, said in the caption.
function errorCaption(d, found) {
  if (!found.stderr.size && !found.repeats.size) {
    d.notes.push("No error bars: none of these values has a logged stderr or repeats.");
    return;
  }
  const list = (set) => [...set].slice(0, 8).join(", ") + (set.size > 8 ? ` and ${set.size - 8} more` : "");
  if (found.stderr.size) d.notes.push(`Error bars ±1 stderr (the logged *_stderr value) on: ${list(found.stderr)}.`);
  if (found.repeats.size) d.notes.push(`Error bars: the 95% interval over repeats on: ${list(found.repeats)}.`);
  d.notes.push("Bars without one have no known uncertainty.");
}

function drawBar(d, spec, data) {
  const grouped = spec.type === "grouped_bar";
  const {columns, missing} = chartColumns(grouped ? spec.metrics : (spec.metrics || []).slice(0, 1), data.pivot);
  if (missing.length) d.notes.push(`No longer in the registry: ${missing.join(", ")}.`);
  if (!columns.length) return message(d, "None of the chart's metrics is in the registry any more.");
  const rows = chartRows(spec, data.pivot.rows.filter((r) => r.step == null), CAPS[spec.type], d.notes);
  const groups = spec.color_by ? paramGroups(rows, spec.color_by) : null;
  if (groups) rows.sort((a, b) => groups.indexOf(a) - groups.indexOf(b));  // (stable: natural order within a group)
  const name = labeller(rows);
  const found = {stderr: new Set(), repeats: new Set()};
  const cell = (ci, si) => {
    const row = rows[ci], column = columns[si], value = valueOf(row, column.family, column.metric);
    if (value == null) return null;
    const err = spec.error_bars ? errorOf(row, column) : null;
    if (err) found[err.kind].add(err.kind === "stderr" ? column.metric : `${name(row)} ${column.metric} (n=${err.n})`);
    const lk = grouped ? look(si) : look(groups ? groups.indexOf(row) : 0);
    const spread = err ? (err.kind === "stderr" ? ` ±${fmt(err.half)} (stderr)` : ` ±${fmt(err.half)} (95%, ${err.n} repeats)`) : "";
    return {value, err, look: lk, title: `${name(row)} · ${metricName(column)}: ${fmt(value)}${spread}`};
  };
  const categories = rows.map((r) => ({label: name(r)}));
  const yLabel = columns.length === 1 ? metricName(columns[0]) : columns[0].family;
  if (!bars(d, categories, columns, cell, yLabel, grouped && groups ? rows.map(groups.label) : null)) return;
  if (grouped) d.legend = columns.map((c, i) => ({kind: "box", look: look(i), label: metricName(c)}));
  else if (groups) d.legend = groups.labels.map((label, i) => ({kind: "box", look: look(i), label}));
  if (spec.error_bars) errorCaption(d, found);
  d.summary = `${grouped ? "Grouped bar" : "Bar"} chart of ${columns.map(metricName).join(", ")} for ${rows.length} model${rows.length === 1 ? "" : "s"}`;
}

function drawSummary(d, spec, data) {
  const set = data.summary;
  const notes = d.notes;
  const rows = chartRows(spec, set.rows, CAPS.bar, notes).filter((r) => num(r.mean) != null);
  const name = labeller(rows);
  const total = set.metrics.length;
  const lacking = rows.filter((r) => r.missing && r.missing.length);
  const cell = (ci) => {
    const r = rows[ci], half = num(r.half_width);
    return {value: r.mean, err: spec.error_bars === false || half == null ? null : {half}, look: look(0),
      title: `${name(r)} · mean of ${r.n} of ${total} metrics: ${fmt(r.mean)}${half == null ? "" : ` ±${fmt(half)} (95%)`}`};
  };
  if (!bars(d, rows.map((r) => ({label: name(r)})), [{}], cell, `mean of “${set.name}” (${total} metrics)`, null)) return;
  notes.push(`Each bar: a model's mean over the summary set “${set.name}” (${total} metrics), ` +
    "its error bar the 95% interval of that mean (where one is known).");
  if (lacking.length) {
    notes.push(`Lacking some of the set's metrics (their mean is over those they have): ` +
      lacking.slice(0, 8).map((r) => `${name(r)} (${r.missing.length} missing)`).join(", ") + ".");
  }
  d.summary = `Bar chart of the summary set ${set.name} for ${rows.length} model${rows.length === 1 ? "" : "s"}`;
}

function drawRadar(d, spec, data) {
  const {columns, missing} = chartColumns(spec.metrics, data.pivot);
  if (missing.length) d.notes.push(`No longer in the registry: ${missing.join(", ")}.`);
  if (columns.length < 3) {
    const gone = missing.length ? ` (${missing.length} of them no longer in the registry)` : "";
    return message(d, `A radar needs 3 metrics or more; this chart has ${columns.length}${gone}`);
  }
  const rows = chartRows(spec, data.pivot.rows.filter((r) => r.step == null), CAPS.radar, d.notes);
  const values = rows.map((r) => columns.map((c) => valueOf(r, c.family, c.metric)));
  const all = values.flat().filter((v) => v != null);
  if (!all.length) return message(d, "No model has a value of the chart's metrics.");
  // One scale for every axis when every value is in [0, 1]; else each axis its own 0..max.
  const unit = all.every((v) => v >= 0 && v <= 1);
  const maxima = columns.map((_, i) => (unit ? 1 : Math.max(0, ...values.map((v) => v[i] ?? 0)) || 1));
  d.notes.push(unit ? "Every axis runs from 0 (centre) to 1 (every value is in [0, 1])."
    : "Each axis runs from 0 (centre) to the largest value of its metric (written at its end); negative values sit at the centre.");
  const radius = Math.min(d.width / 2 - 150, 230), cx = d.width / 2, cy = d.y + radius + 40;
  const angle = (i) => -Math.PI / 2 + (2 * Math.PI * i) / columns.length;
  const at = (i, fraction) => [cx + Math.cos(angle(i)) * radius * fraction, cy + Math.sin(angle(i)) * radius * fraction];
  const web = svg("g", {fill: "none", stroke: GRID});
  for (const f of [0.25, 0.5, 0.75, 1]) web.append(svg("polygon", {points: columns.map((_, i) => at(i, f).join(",")).join(" ")}));
  const labels = svg("g", {"font-size": 11, fill: INK});
  columns.forEach((c, i) => {
    const [x, y] = at(i, 1), [lx, ly] = at(i, 1.08), cos = Math.cos(angle(i));
    web.append(svg("line", {x1: cx, y1: cy, x2: x, y2: y}));
    const label = svg("text", {x: lx, y: ly + 4, "text-anchor": Math.abs(cos) < 0.2 ? "middle" : cos > 0 ? "start" : "end"});
    const full = `${c.metric}${c.lower_is_better ? " (lower is better)" : ""}${unit ? "" : ` (max ${Number(maxima[i].toPrecision(4))})`}`;
    label.textContent = clip(full, 34);
    labels.append(titled(label, `${c.family}/${full}`));
  });
  d.frag.append(web, labels);
  const {lookOf, groups} = rowLooks(rows, spec.color_by);
  const name = labeller(rows);
  rows.forEach((row, r) => {
    const lk = lookOf(row);
    const points = values[r].map((v, i) => (v == null ? null : at(i, Math.max(0, v) / maxima[i])));
    d.frag.append(radarPath(points, lk));
    const dots = svg("g", {});
    points.forEach((p, i) => {
      if (p) dots.append(titled(marker(markerOf(lk), p[0], p[1], 3.5, lk.color), `${name(row)} · ${metricName(columns[i])}: ${fmt(values[r][i])}`));
    });
    d.frag.append(dots);
    const gaps = columns.filter((_, i) => values[r][i] == null).map((c) => c.metric);
    if (gaps.length) d.notes.push(`${name(row)} has no value of ${gaps.join(", ")} (a gap in its outline).`);
  });
  d.legend = rows.map((row) => ({kind: "line", look: lookOf(row), label: groups ? `${name(row)} (${groups.label(row)})` : name(row)}));
  d.y = cy + radius + 40;
  d.summary = `Radar chart of ${rows.length} models across ${columns.length} metrics of ${columns[0].family}`;
}

// A model's outline on the radar: closed when it has every value, broken where one is missing.
function radarPath(points, lk) {
  let path = "", pen = false;
  points.forEach((p) => {
    if (!p) { pen = false; return; }
    path += `${pen ? "L" : "M"}${p[0]},${p[1]}`;
    pen = true;
  });
  const whole = points.every(Boolean);
  if (whole) path += "Z";
  else if (points[0] && pen) path += `L${points[0][0]},${points[0][1]}`;  // (the last point joins the first)
  return svg("path", {d: path, fill: whole ? lk.color : "none", "fill-opacity": 0.08, stroke: lk.color, "stroke-width": 2,
    "stroke-dasharray": dashOf(lk)});
}

// A frame of two numeric axes; returns the scales.
function xyFrame(d, xs, ys, xLabel, yLabel, pad = 0) {
  const L = 64, R = 24, T = d.y + 10, H = 320;
  // A margin of `pad` of the range keeps points off the frame's edge (never below 0 for
  // values that are all positive: a size axis does not start at -20).
  const padded = (values) => {
    const low = Math.min(...values), high = Math.max(...values), margin = (high - low) * pad;
    return [low >= 0 ? Math.max(0, low - margin) : low - margin, high + margin];
  };
  const xt = niceTicks(...padded(xs)), yt = niceTicks(...padded(ys));
  const sx = linear(xt.low, xt.high, L, d.width - R), sy = linear(yt.low, yt.high, T + H, T);
  valueAxis(d, yt, sy, L, d.width - R, yLabel);
  const g = svg("g", {"font-size": 11, fill: MUTED});
  for (const t of xt.ticks) {
    const x = sx(t);
    g.append(svg("line", {x1: x, y1: T, x2: x, y2: T + H, stroke: GRID}));
    const tick = svg("text", {x, y: T + H + 16, "text-anchor": "middle"});
    tick.textContent = tickText(t, xt.step);
    g.append(tick);
  }
  const title = svg("text", {x: (L + d.width - R) / 2, y: T + H + 36, "text-anchor": "middle", fill: INK});
  title.textContent = clip(xLabel, 80);
  g.append(title);
  d.frag.append(g);
  d.y = T + H + 48;
  return {sx, sy};
}

function drawLine(d, spec, data) {
  const [family, metric] = (spec.metrics || [])[0] || [];
  if (family == null) return message(d, "This chart names no metric.");
  const column = data.pivot.columns.find((c) => c.family === family && c.metric === metric) || {family, metric};
  if (!data.curves) return message(d, `No longer in the registry: ${family}/${metric}.`);
  // The curves name models by name and run: the chart's rows (by id) say which to draw.
  const rows = chartRows(spec, data.pivot.rows.filter((r) => r.step == null), Infinity, d.notes);
  const byKey = new Map(rows.map((r) => [keyOf(r.model, r.run ?? ""), r]));
  let series = data.curves.filter((s) => byKey.has(keyOf(s.model, s.run ?? "")));
  const without = rows.length - series.length;
  if (spec.models && spec.models.length && without > 0) d.notes.push(`${without} of the chart's models have no checkpoint value of ${metric}.`);
  if (series.length > CAPS.line) {
    d.notes.push(`Showing ${CAPS.line} of ${series.length} models' curves.`);
    series = series.slice(0, CAPS.line);
  }
  if (!series.length) return message(d, `No checkpoint has a value of ${family}/${metric}.`);
  const points = series.flatMap((s) => s.points);
  const {sx, sy} = xyFrame(d, points.map((p) => p[0]), points.map((p) => p[1]), "checkpoint step", metricName(column));
  const drawn = series.map((s) => byKey.get(keyOf(s.model, s.run ?? "")));
  const {lookOf, groups} = rowLooks(drawn, spec.color_by);
  const name = labeller(drawn);
  series.forEach((s, i) => {
    const lk = lookOf(drawn[i]);
    d.frag.append(svg("polyline", {fill: "none", stroke: lk.color, "stroke-width": 2, "stroke-dasharray": dashOf(lk),
      points: s.points.map(([step, v]) => `${sx(step)},${sy(v)}`).join(" ")}));
    const dots = svg("g", {});
    for (const [step, v] of s.points) {
      dots.append(titled(marker(markerOf(lk), sx(step), sy(v), 3.5, lk.color), `${name(drawn[i])} · ${metric} at step ${step}: ${fmt(v)}`));
    }
    d.frag.append(dots);
  });
  d.legend = drawn.map((row) => ({kind: "line", look: lookOf(row), label: groups ? `${name(row)} (${groups.label(row)})` : name(row)}));
  d.summary = `Line chart of ${family}/${metric} over checkpoint steps for ${series.length} model${series.length === 1 ? "" : "s"}`;
}

// A scatter axis: a metric ([family, metric]) or a numeric param (["params", key]).
function axisOf(spec, pivot) {
  if (!spec) return null;
  if (spec[0] === "params") return {label: `params.${spec[1]}`, get: (r) => num(own(r.params, spec[1]))};
  const column = pivot.columns.find((c) => c.family === spec[0] && c.metric === spec[1]);
  return column ? {label: metricName(column), get: (r) => valueOf(r, column.family, column.metric)} : null;
}

function drawScatter(d, spec, data) {
  const x = axisOf(spec.x, data.pivot), y = axisOf(spec.y, data.pivot);
  const gone = [[spec.x, x], [spec.y, y]].filter(([s, a]) => !a).map(([s]) => (s ? s.join("/") : "(none)"));
  if (gone.length) return message(d, `Not in the registry any more: ${gone.join(", ")}.`);
  const rows = chartRows(spec, data.pivot.rows.filter((r) => r.step == null), CAPS.scatter, d.notes);
  const placed = rows.filter((r) => x.get(r) != null && y.get(r) != null);
  const name = labeller(rows);
  const isPlaced = new Set(placed);
  const lacking = rows.filter((r) => !isPlaced.has(r));
  if (lacking.length) {
    d.notes.push(`${lacking.length} of ${rows.length} models lack a numeric value of ${x.label} or ${y.label}: ` +
      `${lacking.slice(0, 6).map(name).join(", ")}${lacking.length > 6 ? ", …" : ""}.`);
  }
  if (!placed.length) return message(d, `No model has numeric values of both ${x.label} and ${y.label}.`);
  const {sx, sy} = xyFrame(d, placed.map(x.get), placed.map(y.get), x.label, y.label, 0.06);
  const groups = spec.color_by ? paramGroups(placed, spec.color_by) : null;
  const lookOf = (r) => (groups ? look(groups.indexOf(r)) : look(0));
  const dots = svg("g", {}), labels = svg("g", {"font-size": 10, fill: MUTED});
  for (const r of placed) {
    const px = sx(x.get(r)), py = sy(y.get(r)), lk = lookOf(r);
    dots.append(titled(marker(markerOf(lk), px, py, 5, lk.color),
      `${name(r)} · ${x.label}: ${fmt(x.get(r))}, ${y.label}: ${fmt(y.get(r))}${groups ? ` · ${groups.label(r)}` : ""}`));
    if (placed.length <= 30) {
      const right = px > d.width * 0.75;  // (labels of points near the right edge go to their left)
      const label = svg("text", {x: right ? px - 7 : px + 7, y: py - 6, "text-anchor": right ? "end" : "start"});
      label.textContent = clip(name(r), 24);
      labels.append(label);
    }
  }
  d.frag.append(labels, dots);
  if (groups) d.legend = groups.labels.map((label, i) => ({kind: "dot", look: look(i), label}));
  d.summary = `Scatter of ${y.label} against ${x.label} for ${placed.length} model${placed.length === 1 ? "" : "s"}`;
}

const DRAWERS = {bar: drawBar, grouped_bar: drawBar, radar: drawRadar, line: drawLine, scatter: drawScatter, summary: drawSummary};

// Draws the chart of `spec` from its fetched `data` (or {error}) into the <svg> `target`, synchronously,
// built in a fragment and appended once; never throws (a chart it cannot draw says why).
// The time it took is left on the svg as data-drawn-ms (for the benchmark). Returns its notes.
export function drawChart(target, spec, data, {title = "", width} = {}) {
  const started = performance.now();
  const room = target.parentElement ? target.parentElement.clientWidth : 0;  // (0 while its view is hidden)
  const size = width || (room > 0 ? Math.max(520, room - 2) : 860);
  let d = drawing(size, title);
  try {
    heading(d);
    if (data.error) throw data.error;  // (its data could not be fetched: say why in its place)
    const draw = own(DRAWERS, spec.summary != null ? "summary" : spec.type);
    if (!draw) throw new Error(`unknown chart type ${JSON.stringify(spec.type)}`);
    draw(d, spec, data);
  } catch (error) {
    d = drawing(size, title);
    heading(d);
    message(d, `This chart could not be drawn: ${error.message}`);
  }
  legend(d);
  notes(d);
  const height = Math.ceil(d.y + 8);
  const background = svg("rect", {width: d.width, height, fill: "#fff"});
  target.replaceChildren(background, d.defs, d.frag);
  for (const [key, value] of Object.entries({width: d.width, height, viewBox: `0 0 ${d.width} ${height}`,
    "font-family": FONT, "font-size": 12, role: "img", "aria-label": [title, d.summary, ...d.notes].filter(Boolean).join(". ")})) {
    target.setAttribute(key, value);
  }
  target.setAttribute("data-drawn-ms", (performance.now() - started).toFixed(1));
  return d.notes;
}

// ---------------------------------------------------------------- export

// A file name from the chart's name: letters, digits, dots, dashes and underscores only.
export function fileName(name, extension) {
  const safe = String(name).normalize("NFKD").replace(/[^\w.-]+/g, "_").replace(/^[._]+|_+$/g, "").slice(0, 80);
  return `${safe || "chart"}.${extension}`;
}

// The chart as a standalone SVG document: drawn again, with its name, into a detached <svg>
// whose styles are all attributes (no style sheet of the page is needed to show it).
export function standaloneSvg(card) {
  const copy = svg("svg");
  drawChart(copy, card.item.spec, card.data, {title: card.item.name, width: Number(card.svg.getAttribute("width")) || undefined});
  return {text: new XMLSerializer().serializeToString(copy), width: Number(copy.getAttribute("width")), height: Number(copy.getAttribute("height"))};
}

function download(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = el("a", {href: url, download: name});
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);  // (revoked at once, the download may not have started)
}

// The SVG drawn onto a canvas at twice its size (through a blob: URL: nothing leaves the page).
async function pngOf({text, width, height}) {
  const url = URL.createObjectURL(new Blob([text], {type: "image/svg+xml"}));
  try {
    const image = new Image();
    await new Promise((resolve, reject) => {
      image.onload = resolve;
      image.onerror = () => reject(new Error("the chart could not be turned into an image"));
      image.src = url;
    });
    const canvas = el("canvas", {width: width * 2, height: height * 2});
    const context = canvas.getContext("2d");
    context.scale(2, 2);
    context.drawImage(image, 0, 0, width, height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    if (!blob) throw new Error("the chart is too large to export as PNG");
    return blob;
  } finally {
    URL.revokeObjectURL(url);
  }
}

export async function exportChart(card, format) {
  if (!card.data) throw new Error("the chart has not been drawn yet");
  if (card.data.error) throw card.data.error;
  const standalone = standaloneSvg(card);
  const blob = format === "svg" ? new Blob([standalone.text], {type: "image/svg+xml"}) : await pngOf(standalone);
  download(blob, fileName(card.item.name, format));
}

// ---------------------------------------------------------------- the view

const view = {built: false, items: [], cards: new Map(), listCall: 0, previewCall: 0, editing: null, options: null};

export async function loadCharts() {
  if (!view.built) buildView();
  await Promise.all([loadList(), loadOptions()]);
}

function buildView() {
  view.built = true;
  const add = el("button", {id: "chart-new", type: "button", "aria-controls": "chart-builder", text: "New chart"});
  add.addEventListener("click", () => openBuilder(null));
  const status = el("div", {id: "charts-status", role: "status", "aria-live": "polite"});
  $("charts-root").replaceChildren(
    el("div", {class: "toolbar charts-toolbar"}, el("h2", {text: "Charts"}), add, status),
    buildBuilder(),
    el("div", {id: "chart-list", class: "chart-list", "aria-label": "saved charts"}));
}

function setStatus(...content) {
  $("charts-status").replaceChildren(...content);
}

// A field of the builder: a label tied to its control.
function field(labelText, control) {
  return el("div", {class: "chart-field"}, el("label", {for: control.id, text: labelText}), control);
}

function buildBuilder() {
  const form = el("form", {id: "chart-builder", class: "chart-builder", "aria-label": "chart builder", hidden: ""});
  const select = (id) => el("select", {id});
  const type = select("chart-type");
  type.append(...TYPES.map(([value, label]) => el("option", {value, text: label})));
  const metrics = el("fieldset", {id: "chart-metrics", class: "chart-metrics"}, el("legend", {text: "metrics"}));
  const modelsFrom = select("chart-models-from");
  const errorBars = el("input", {id: "chart-error-bars", type: "checkbox"});
  errorBars.checked = true;
  const save = el("button", {id: "chart-save", type: "submit", text: "Save chart"});
  const cancel = el("button", {id: "chart-cancel", type: "button", text: "Cancel"});
  cancel.addEventListener("click", () => { form.hidden = true; view.editing = null; });
  const preview = el("div", {class: "chart-scroll"}, svg("svg", {id: "chart-preview", class: "chart"}));
  form.append(
    el("div", {class: "chart-fields"},
      field("name", el("input", {id: "chart-name", type: "text", maxlength: "200", autocomplete: "off"})),
      field("type", type),
      field("family", select("chart-family")),
      field("x axis", select("chart-x")),
      field("y axis", select("chart-y")),
      field("summary set", select("chart-summary")),
      field("models", modelsFrom),
      field("where", el("input", {id: "chart-where", type: "search", placeholder: "params.size > 1e9", autocomplete: "off"})),
      field("run", select("chart-run")),
      field("colour by", select("chart-color-by")),
      el("div", {class: "chart-field"}, el("label", {for: "chart-error-bars"}, errorBars, document.createTextNode(" error bars")))),
    metrics,
    el("div", {class: "chart-form-actions"}, save, cancel, el("span", {id: "chart-save-error", class: "error", role: "alert"})),
    el("p", {id: "chart-where-error", class: "error", role: "alert"}),
    preview);
  form.addEventListener("submit", (event) => { event.preventDefault(); saveBuilder(); });
  form.addEventListener("change", (event) => {
    if (event.target.id === "chart-type" || event.target.id === "chart-family") showFields();
    if (event.target.id === "chart-y") $("chart-y").dataset.touched = "1";  // (no longer set for the user)
    if (event.target.id === "chart-where" || event.target.id === "chart-run") loadOptions().then(showPreview);
    else showPreview();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { form.hidden = true; view.editing = null; }
  });
  return form;
}

// What the builder offers: the families' metrics, the runs, the params (numeric ones for the
// scatter's axes) and the summary sets, from an all-families pivot of the builder's filter.
async function loadOptions() {
  if (!view.built) return;
  const params = new URLSearchParams();
  const where = $("chart-where").value.trim(), run = $("chart-run").value;
  if (where) params.set("where", where);
  if (run) params.set("run", run);
  let pivot, runs, summaries;
  try {
    [pivot, runs, summaries] = await Promise.all([api(`/api/pivot?${params}`), api("/api/runs"),
      api("/api/items?kind=summary").catch(() => [])]);
  } catch (error) {
    $("chart-where-error").textContent = error.message;  // (a bad where: the builder stays as it was)
    return;
  }
  $("chart-where-error").textContent = "";
  view.options = {pivot, runs, summaries};
  fillSelects();
  showFields();
}

function replaceOptions(select, options) {
  const current = select.value;
  select.replaceChildren(...options.map(([value, label]) => el("option", {value, text: label})));
  if (options.some(([value]) => value === current)) select.value = current;
}

function fillSelects() {
  const {pivot, runs, summaries} = view.options;
  const models = pivot.rows.filter((r) => r.step == null);
  const families = [...new Set(pivot.columns.map((c) => c.family))].sort(naturalCompare);
  const family = $("chart-family");
  const hadFamily = family.value;
  replaceOptions(family, families.map((f) => [f, f]));
  if (!hadFamily && state.family && families.includes(state.family)) family.value = state.family;
  const keys = new Set(), numeric = new Set();
  for (const r of models) {
    for (const [key, value] of Object.entries(r.params || {})) {
      keys.add(key);
      if (num(value) != null) numeric.add(key);
    }
  }
  const axes = pivot.columns.filter((c) => !isStderr(c, pivot)).map((c) => [JSON.stringify([c.family, c.metric]), `${c.family}/${c.metric}`])
    .concat([...numeric].sort(naturalCompare).map((k) => [JSON.stringify(["params", k]), `params.${k}`]));
  replaceOptions($("chart-x"), axes);
  replaceOptions($("chart-y"), axes);
  if (!$("chart-y").dataset.touched && axes.length > 1 && $("chart-y").value === $("chart-x").value) $("chart-y").selectedIndex = 1;
  replaceOptions($("chart-color-by"), [["", "nothing"], ...[...keys].sort(naturalCompare).map((k) => [k, `params.${k}`])]);
  replaceOptions($("chart-run"), [["", "every run"], ...runs.map((r) => [r.run, r.run])]);
  replaceOptions($("chart-summary"), summaries.map((s) => [String(s.id), s.name]));
  fillModelsFrom();
}

// The models a chart draws: the table's selection (the selection bar is on every view, so
// it is read again when the builder opens) or every model of the chart's filter.
function fillModelsFrom() {
  const models = view.options.pivot.rows.filter((r) => r.step == null);
  const inFilter = models.filter((r) => state.selected.has(r.id)).length, size = state.selected.size;
  replaceOptions($("chart-models-from"), [
    ...(size ? [["selection", `the table's selection (${size} models${inFilter < size ? `, ${inFilter} in this filter` : ""})`]] : []),
    ["all", `every model of the filter (${models.length})`]]);
}

// A column that is another column's stderr: not a metric to chart on its own.
const isStderr = (column, pivot) => pivot.columns.some((c) => c.family === column.family && c.stderr === column.metric);

// The fields the chosen type uses, and the family's metrics (radio buttons where one is drawn).
function showFields() {
  if (!view.options) return;
  const type = $("chart-type").value;
  const uses = {
    "chart-family": !["scatter", "summary"].includes(type), "chart-x": type === "scatter", "chart-y": type === "scatter",
    "chart-summary": type === "summary", "chart-color-by": type !== "summary",
    "chart-error-bars": ["bar", "grouped_bar", "summary"].includes(type),
  };
  for (const [id, on] of Object.entries(uses)) $(id).closest(".chart-field").hidden = !on;
  const box = $("chart-metrics");
  box.hidden = !uses["chart-family"];
  const family = $("chart-family").value, single = type === "bar" || type === "line";
  const checked = new Set([...box.querySelectorAll("input:checked")].map((i) => i.value));
  const {pivot} = view.options;
  const names = pivot.columns.filter((c) => c.family === family && !isStderr(c, pivot)).map((c) => c.metric).sort(naturalCompare);
  const inputs = names.map((metric, i) => {
    const input = el("input", {type: single ? "radio" : "checkbox", name: "chart-metric", value: metric, id: `chart-metric-${i}`});
    input.checked = checked.has(metric);
    return el("label", {for: input.id, class: "chart-metric"}, input, document.createTextNode(` ${metric}`));
  });
  box.replaceChildren(el("legend", {text: single ? `metric of ${family}` : `metrics of ${family}`}), ...inputs);
  if (!box.querySelector("input:checked") && inputs.length) {
    const first = inputs.slice(0, single ? 1 : 3).map((l) => l.querySelector("input"));
    first.forEach((i) => { i.checked = true; });
  }
}

function specOfBuilder() {
  const type = $("chart-type").value;
  const spec = {type: type === "summary" ? "bar" : type};
  if (type === "summary") spec.summary = Number($("chart-summary").value);
  else if (type === "scatter") {
    spec.x = JSON.parse($("chart-x").value || "null");
    spec.y = JSON.parse($("chart-y").value || "null");
  } else {
    const family = $("chart-family").value;
    spec.metrics = [...$("chart-metrics").querySelectorAll("input:checked")].map((i) => [family, i.value]);
  }
  spec.models = $("chart-models-from").value === "selection" ? [...state.selected] : [];
  const where = $("chart-where").value.trim(), run = $("chart-run").value, colorBy = $("chart-color-by").value;
  if (where) spec.where = where;
  if (run) spec.run = run;
  if (colorBy && type !== "summary") spec.color_by = colorBy;
  if (["bar", "grouped_bar", "summary"].includes(type)) spec.error_bars = $("chart-error-bars").checked;
  return spec;
}

// The builder, empty (a new chart) or holding a saved chart to edit.
function openBuilder(item) {
  const form = $("chart-builder");
  view.editing = item ? item.id : null;
  $("chart-save-error").textContent = "";
  $("chart-name").value = item ? item.name : "";
  $("chart-save").textContent = item ? "Save changes" : "Save chart";
  if (view.options) fillModelsFrom();
  if (item) fillBuilder(item.spec);
  else if (state.selected.size) $("chart-models-from").value = "selection";
  form.hidden = false;
  showFields();
  if (item) checkMetrics(item.spec);
  $("chart-name").focus();
  showPreview();
}

function fillBuilder(spec) {
  const set = (id, value) => {
    const select = $(id);
    if (value != null && ![...select.options].some((o) => o.value === value)) select.append(el("option", {value, text: value}));
    select.value = value ?? "";
  };
  set("chart-type", spec.summary != null ? "summary" : spec.type);
  if (spec.summary != null) set("chart-summary", String(spec.summary));
  if (spec.metrics && spec.metrics.length) set("chart-family", spec.metrics[0][0]);
  if (spec.x) set("chart-x", JSON.stringify(spec.x));
  if (spec.y) { set("chart-y", JSON.stringify(spec.y)); $("chart-y").dataset.touched = "1"; }
  $("chart-where").value = spec.where || "";
  set("chart-run", spec.run || "");
  set("chart-color-by", spec.color_by || "");
  $("chart-error-bars").checked = spec.error_bars !== false;
  // A chart naming its models keeps them only if the table's selection is still those models.
  const models = spec.models || [];
  const same = models.length === state.selected.size && models.every((id) => state.selected.has(id));
  $("chart-models-from").value = same && models.length ? "selection" : "all";
}

function checkMetrics(spec) {
  const wanted = new Set((spec.metrics || []).map((m) => m[1]));
  for (const input of $("chart-metrics").querySelectorAll("input")) input.checked = wanted.has(input.value);
}

async function showPreview() {
  const form = $("chart-builder");
  if (form.hidden || !view.options) return;
  const call = ++view.previewCall;
  const target = $("chart-preview");
  const spec = specOfBuilder();
  let data;
  try {
    data = await chartData(spec);
  } catch (error) {
    data = {error};
  }
  if (call !== view.previewCall) return;  // the form changed since: a later call draws
  drawChart(target, spec, data, {title: $("chart-name").value.trim() || "(unnamed chart)"});
}

async function saveBuilder() {
  const name = $("chart-name").value.trim();
  const problem = $("chart-save-error");
  problem.textContent = "";
  if (!name) { problem.textContent = "A chart needs a name."; $("chart-name").focus(); return; }
  const spec = specOfBuilder();
  if (spec.metrics && !spec.metrics.length) { problem.textContent = "Pick a metric."; return; }
  if (spec.summary != null && !(spec.summary > 0)) { problem.textContent = "Pick a summary set (none is saved yet?)."; return; }
  const body = {kind: "chart", name, spec};
  if (view.editing != null) body.id = view.editing;
  try {
    await post("/api/items/save", body);
  } catch (error) {
    problem.textContent = error.message;  // (read-only, locked, name taken: the list stays as it was)
    return;
  }
  $("chart-builder").hidden = true;
  view.editing = null;
  await loadList();
}

// ---------------------------------------------------------------- the saved charts

async function loadList() {
  const call = ++view.listCall;
  let items;
  try {
    items = await api("/api/items?kind=chart");
  } catch (error) {
    if (call === view.listCall) setStatus(el("span", {class: "error", text: `The saved charts could not be loaded: ${error.message}`}));
    return;
  }
  if (call !== view.listCall) return;  // a later call shows its own answer
  view.items = items;
  const cache = new Map();  // (charts of the same family and filter share one pivot)
  const cards = items.map((item, i) => cardOf(item, i, items.length));
  const shown = cards.map((c) => c.element);
  if (!items.length) shown.push(el("p", {class: "hint", text: "No saved charts yet: “New chart” makes one."}));
  keepingFocus(() => $("chart-list").replaceChildren(...shown));
  view.cards = new Map(cards.map((c) => [c.item.id, c]));
  await Promise.all(cards.map((card) => drawCard(card, cache)));
}

// A live update re-lays the list: the control that had the focus (a kept card's) keeps it.
function keepingFocus(change) {
  const focused = document.activeElement;
  change();
  if (focused && focused.isConnected && document.activeElement !== focused) focused.focus();
}

// A card for a saved chart: the one already on the page (its rename field kept) or a new one.
function cardOf(item, index, count) {
  const known = view.cards.get(item.id);
  const card = known && known.item.name === item.name ? known : newCard(item);
  card.item = item;
  card.up.disabled = index === 0;
  card.down.disabled = index === count - 1;
  return card;
}

function newCard(item) {
  const name = item.name;
  const heading = el("h3", {text: name, id: `chart-title-${item.id}`});
  const problem = el("span", {class: "error chart-error", role: "alert"});
  const chart = svg("svg", {class: "chart", "data-chart-id": String(item.id)});
  const element = el("article", {class: "chart-card", "data-id": String(item.id), "aria-labelledby": heading.id});
  const card = {item, element, heading, problem, svg: chart, data: null};
  const button = (label, key, aria, action) => {
    const b = el("button", {type: "button", text: label, "aria-label": `${aria} chart ${name}`, "data-action": key});
    b.addEventListener("click", async () => {
      problem.textContent = "";
      try { await action(card, b); } catch (error) { problem.textContent = error.message; }
    });
    return b;
  };
  card.up = button("↑", "up", "move up", (c) => move(c, -1));
  card.down = button("↓", "down", "move down", (c) => move(c, 1));
  const actions = el("div", {class: "chart-actions", role: "group", "aria-label": `actions of chart ${name}`},
    button("Rename", "rename", "rename", startRename), button("Duplicate", "duplicate", "duplicate", duplicate),
    card.up, card.down, button("Edit", "edit", "edit", (c) => openBuilder(c.item)),
    button("PNG", "png", "export PNG of", (c) => exportChart(c, "png")),
    button("SVG", "svg", "export SVG of", (c) => exportChart(c, "svg")), button("Remove", "remove", "remove", remove));
  element.append(el("div", {class: "chart-head"}, heading, actions, problem), el("div", {class: "chart-scroll"}, chart));
  return card;
}

async function drawCard(card, cache) {
  try {
    card.data = await chartData(card.item.spec, cache);
  } catch (error) {
    card.data = {error};
  }
  drawChart(card.svg, card.item.spec, card.data, {title: ""});
  card.svg.setAttribute("aria-label", `${card.item.name}. ${card.svg.getAttribute("aria-label")}`);
}

function startRename(card) {
  const input = el("input", {type: "text", value: card.item.name, "aria-label": `new name of chart ${card.item.name}`, maxlength: "200"});
  const ok = el("button", {type: "submit", text: "Save name"});
  const cancel = el("button", {type: "button", text: "Cancel"});
  const form = el("form", {class: "chart-rename"}, input, ok, cancel);
  const close = () => { form.replaceWith(card.heading); card.element.querySelector("[data-action=rename]").focus(); };
  cancel.addEventListener("click", close);
  input.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) { card.problem.textContent = "A chart needs a name."; return; }
    try {
      await post("/api/items/save", {kind: "chart", id: card.item.id, name, spec: card.item.spec});
    } catch (error) {
      card.problem.textContent = error.message;
      return;
    }
    card.problem.textContent = "";
    await loadList();
  });
  card.heading.replaceWith(form);
  input.select();
}

// A name no live chart has: "NAME (copy)", "NAME (copy 2)", ...
function copyName(name) {
  const taken = new Set(view.items.map((i) => i.name));
  for (let n = 1; ; n++) {
    const candidate = `${name} (copy${n > 1 ? ` ${n}` : ""})`;
    if (!taken.has(candidate)) return candidate;
  }
}

async function duplicate(card) {
  await post("/api/items/save", {kind: "chart", name: copyName(card.item.name), spec: card.item.spec});
  await loadList();
}

async function move(card, by) {
  const ids = view.items.map((i) => i.id);
  const from = ids.indexOf(card.item.id), to = from + by;
  if (from < 0 || to < 0 || to >= ids.length) return;
  [ids[from], ids[to]] = [ids[to], ids[from]];
  await post("/api/items/reorder", {kind: "chart", ids});
  await loadList();
  // Keyboard users keep their place: on the moved chart's same button (the other one at an end).
  const moved = view.cards.get(card.item.id);
  if (!moved) return;
  const [same, other] = by < 0 ? [moved.up, moved.down] : [moved.down, moved.up];
  (same.disabled ? other : same).focus();
}

async function remove(card) {
  const {id, name} = card.item;
  await post("/api/items/remove", {id});
  const undo = el("button", {type: "button", text: "Undo", "aria-label": `undo removing chart ${name}`, id: "chart-undo"});
  undo.addEventListener("click", async () => {
    try {
      await post("/api/items/restore", {id});
    } catch (error) {
      setStatus(el("span", {class: "error", text: `Chart “${name}” could not be restored: ${error.message}`}));
      return;
    }
    setStatus();
    await loadList();
  });
  await loadList();
  setStatus(document.createTextNode(`Chart “${name}” removed — `), undo);
  undo.focus();
}
