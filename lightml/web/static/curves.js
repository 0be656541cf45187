// The checkpoint curves: one metric against the checkpoint step, one line per model.
import {$, el, svg, api, fmt, own, STRONG_COLORS} from "./core.js";

// Past ten series the dash pattern changes. Every series also has a marker shape of its own,
// so colour is never the only way to tell two lines apart.
const SERIES_COLORS = STRONG_COLORS;
const DASHES = ["", "7 4", "2 3", "10 3 2 3"];
const MARKERS = ["circle", "square", "triangle", "diamond", "plus"];
const LEGEND_FONT = "12px system-ui, sans-serif", TICK_FONT = "11px system-ui, sans-serif";  // lineage.css's

export function seriesStyle(i) {
  return {color: SERIES_COLORS[i % SERIES_COLORS.length], dash: DASHES[Math.floor(i / SERIES_COLORS.length) % DASHES.length],
    marker: MARKERS[i % MARKERS.length]};
}

// The metrics of the family whose pivot column says lower is better (for the axis title).
let lowerIsBetter = new Set();

export async function loadCurveMetrics() {
  const family = $("curve-family").value;
  if (!family) return;
  const pivot = await api(`/api/pivot?${new URLSearchParams({family, checkpoints: "1"})}`);
  if ($("curve-family").value !== family) return;  // another family was picked meanwhile: its call goes on
  lowerIsBetter = new Set(pivot.columns.filter((c) => c.family === family && c.lower_is_better).map((c) => c.metric));
  // Only the metrics some checkpoint has: a curve needs steps (a model-level value alone draws none).
  const stepped = new Set();
  for (const row of pivot.rows) {
    if (row.step == null) continue;
    for (const metric of Object.keys(own(row.values, family) || {})) stepped.add(metric);
  }
  const metrics = pivot.columns.map((c) => c.metric).filter((m) => stepped.has(m));
  const select = $("curve-metric");
  const current = select.value;
  select.replaceChildren(...metrics.map((m) => el("option", {value: m, text: m})));
  if (metrics.includes(current)) select.value = current;
  await loadCurves();
}

// ---------------------------------------------------------------- axes

// Round tick values (1, 2, 2.5 or 5 times a power of ten) covering lo..hi in about `count`
// steps; the axis then spans the first to the last tick. integer: no step under 1 (steps).
export function niceTicks(lo, hi, count, integer = false) {
  if (lo === hi) {
    const pad = integer ? 1 : (lo === 0 ? 1 : Math.abs(lo) * 0.1);
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw * 0.999);
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.floor(lo / step), last = Math.ceil(hi / step);
  const ticks = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return {ticks, step, lo: ticks[0], hi: ticks[ticks.length - 1]};
}

const compact = new Intl.NumberFormat("en", {notation: "compact", maximumFractionDigits: 2});

// A tick's label with as many decimals as the step has (0.25 -> "0.25", 0.3 -> "0.30" with 0.05).
export function tickLabel(value, step) {
  if (Math.abs(step) >= 10000) return compact.format(value);
  if (step < 1e-4) return value.toExponential(1);
  const decimals = (String(Number(step.toPrecision(6))).split(".")[1] || "").length;
  return value.toFixed(decimals);
}

const measurer = document.createElement("canvas").getContext("2d");
function textWidth(text, font) {
  measurer.font = font;
  return measurer.measureText(text).width;
}

// ---------------------------------------------------------------- drawing

// The latest loadCurves call: only its answer is drawn. (Two calls can be in flight at once,
// e.g. a family's metric list loading the curves while the user picks a metric: if each
// drew its answer, the chart would hold both.)
export let curvesCall = 0;

export async function loadCurves() {
  const call = ++curvesCall;
  const family = $("curve-family").value, metric = $("curve-metric").value;
  const chart = $("curves");
  chart.replaceChildren();
  if (!family || !metric) return;
  const empty = $("curves-empty");
  let series;
  try {
    series = await api(`/api/curves?${new URLSearchParams({family, metric})}`);
  } catch (error) {
    if (call !== curvesCall) return;
    // e.g. 404: the family or metric went away (a model was deleted) since the lists were loaded
    empty.textContent = error.message;
    empty.hidden = false;
    return;
  }
  if (call !== curvesCall) return;  // a later call draws its own answer
  empty.textContent = "No checkpoint has this metric.";
  empty.hidden = series.length > 0;
  if (series.length) drawCurves(chart, series, `${metric}${lowerIsBetter.has(metric) ? " (lower is better)" : ""}`);
}

// A series' name in the legend and tooltips: the model, with its run where two share a name.
function seriesLabels(series) {
  const count = new Map();
  for (const s of series) count.set(s.model, (count.get(s.model) || 0) + 1);
  return series.map((s) => (count.get(s.model) > 1 ? `${s.model} (${s.run ?? "no run"})` : s.model));
}

// Legend entries placed in rows under the plot, wrapping at the chart's width: never cut at
// its right edge however long the names. Returns [{label, x, row}] and the number of rows.
function legendLayout(labels, left, width) {
  let x = left, row = 0;
  const places = labels.map((label) => {
    const w = 34 + textWidth(label, LEGEND_FONT) + 18;
    if (x > left && x + w > left + width) { x = left; row += 1; }
    const place = {label, x, row};
    x += w;
    return place;
  });
  return {places, rows: labels.length ? row + 1 : 0};
}

// The text, cut with "…" where it is wider than width (a name longer than the whole chart).
function fitText(text, width) {
  if (textWidth(text, LEGEND_FONT) <= width) return text;
  let n = text.length;
  while (n > 1 && textWidth(text.slice(0, n) + "…", LEGEND_FONT) > width) n -= 1;
  return text.slice(0, n) + "…";
}

function drawCurves(chart, series, yTitle) {
  chart.style.height = "";  // (back to the style sheet's height before measuring it)
  const points = series.flatMap((s) => s.points);
  const box = chart.getBoundingClientRect();
  const W = Math.max(box.width, 400);
  const xAxis = niceTicks(Math.min(...points.map((p) => p[0])), Math.max(...points.map((p) => p[0])), Math.max(2, Math.floor(W / 110)), true);
  const yAxis = niceTicks(Math.min(...points.map((p) => p[1])), Math.max(...points.map((p) => p[1])), 6);
  const yLabels = yAxis.ticks.map((v) => tickLabel(v, yAxis.step));
  const xLabels = xAxis.ticks.map((v) => tickLabel(v, xAxis.step));
  const L = 30 + Math.max(...yLabels.map((t) => textWidth(t, TICK_FONT))), T = 14;
  const R = 12 + textWidth(xLabels[xLabels.length - 1], TICK_FONT) / 2;
  const labels = seriesLabels(series);
  const legend = legendLayout(labels.map((label) => fitText(label, W - L - R - 52)), L, W - L - R);
  const B = 46 + legend.rows * 20;
  // A long legend makes the chart taller rather than squeezing the plot to nothing.
  const H = Math.max(box.height, 300, T + 160 + B);
  if (H > box.height) chart.style.height = `${H}px`;
  const sx = (s) => L + (s - xAxis.lo) / (xAxis.hi - xAxis.lo) * (W - L - R);
  const sy = (v) => T + (1 - (v - yAxis.lo) / (yAxis.hi - yAxis.lo)) * (H - T - B);
  const grid = svg("g", {class: "grid"});
  xAxis.ticks.forEach((s, i) => {
    grid.append(svg("line", {x1: sx(s), y1: T, x2: sx(s), y2: H - B}));
    chart.append(svg("text", {class: "tick x", x: sx(s), y: H - B + 16, "text-anchor": "middle", text: xLabels[i]}));
  });
  yAxis.ticks.forEach((v, i) => {
    grid.append(svg("line", {x1: L, y1: sy(v), x2: W - R, y2: sy(v)}));
    chart.append(svg("text", {class: "tick y", x: L - 6, y: sy(v) + 4, "text-anchor": "end", text: yLabels[i]}));
  });
  chart.prepend(grid);
  chart.append(svg("line", {class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B}),
    svg("line", {class: "axis", x1: L, y1: T, x2: L, y2: H - B}),
    svg("text", {class: "axis-title", x: (L + W - R) / 2, y: H - B + 34, "text-anchor": "middle", text: "step"}),
    svg("text", {class: "axis-title", transform: `translate(12,${(T + H - B) / 2}) rotate(-90)`, "text-anchor": "middle", text: yTitle}));
  series.forEach((s, i) => drawSeries(chart, s, labels[i], seriesStyle(i), sx, sy));
  legend.places.forEach((place, i) => chart.append(legendItem(place.label, labels[i], seriesStyle(i), place.x, H - B + 54 + place.row * 20)));
}

function drawSeries(chart, s, label, style, sx, sy) {
  const line = svg("polyline", {class: "series", fill: "none", stroke: style.color, "stroke-width": 2,
    points: s.points.map(([step, v]) => `${sx(step)},${sy(v)}`).join(" ")});
  if (style.dash) line.setAttribute("stroke-dasharray", style.dash);
  chart.append(line);
  for (const [step, v] of s.points) {
    const point = marker(style, sx(step), sy(v));
    point.append(svg("title", {text: `${label} step ${step}: ${fmt(v)}`}));
    chart.append(point);
  }
}

// A data point: a circle for the first shape, a path for the others.
function marker(style, x, y) {
  if (style.marker === "circle") return svg("circle", {class: "point", cx: x, cy: y, r: 3.5, fill: style.color});
  return svg("path", {class: "point", d: shapePath(style.marker, x, y, 4), fill: style.color});
}

function shapePath(shape, x, y, r) {
  const t = r / 3;  // (half the plus sign's bar width)
  switch (shape) {
    case "square": return `M${x - r},${y - r}h${2 * r}v${2 * r}h${-2 * r}z`;
    case "triangle": return `M${x},${y - r * 1.2}L${x + r * 1.1},${y + r * 0.9}L${x - r * 1.1},${y + r * 0.9}z`;
    case "diamond": return `M${x},${y - r * 1.3}L${x + r * 1.3},${y}L${x},${y + r * 1.3}L${x - r * 1.3},${y}z`;
    case "plus": return `M${x - t},${y - r}h${2 * t}v${r - t}h${r - t}v${2 * t}h${t - r}v${r - t}h${-2 * t}v${t - r}h${t - r}v${-2 * t}h${r - t}z`;
    default: return `M${x - r},${y}a${r},${r} 0 1,0 ${2 * r},0a${r},${r} 0 1,0 ${-2 * r},0z`;  // circle
  }
}

// The legend's sample: the series' line (colour, dash) with its marker, then its name.
function legendItem(shown, label, style, x, y) {
  const item = svg("g", {class: "legend-item", transform: `translate(${x},${y})`});
  const sample = svg("line", {x1: 0, y1: -4, x2: 28, y2: -4, stroke: style.color, "stroke-width": 2});
  if (style.dash) sample.setAttribute("stroke-dasharray", style.dash);
  item.append(sample, svg("path", {d: shapePath(style.marker, 14, -4, 4), fill: style.color}),
    svg("text", {x: 34, y: 0, text: shown}), svg("title", {text: label}));
  return item;
}
