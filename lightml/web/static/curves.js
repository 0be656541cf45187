// The checkpoint curves: one metric against the checkpoint step, one line per model.
import {$, el, svg, api, fmt, own} from "./core.js";
import {RUN_COLORS} from "./graph.js";

export async function loadCurveMetrics() {
  const family = $("curve-family").value;
  if (!family) return;
  const pivot = await api(`/api/pivot?${new URLSearchParams({family, checkpoints: "1"})}`);
  if ($("curve-family").value !== family) return;  // another family was picked meanwhile: its call goes on
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
  chart.replaceChildren();
  empty.textContent = "No checkpoint has this metric.";
  empty.hidden = series.length > 0;
  if (!series.length) return;
  const points = series.flatMap((s) => s.points);
  const steps = points.map((p) => p[0]), values = points.map((p) => p[1]);
  const box = chart.getBoundingClientRect();
  const W = Math.max(box.width, 400), H = Math.max(box.height, 300), L = 60, R = 180, T = 20, B = 40;
  const x0 = Math.min(...steps), x1 = Math.max(...steps), y0 = Math.min(...values), y1 = Math.max(...values);
  const sx = (s) => L + (x1 === x0 ? 0.5 : (s - x0) / (x1 - x0)) * (W - L - R);
  const sy = (v) => T + (y1 === y0 ? 0.5 : 1 - (v - y0) / (y1 - y0)) * (H - T - B);
  chart.append(svg("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#888"}),
    svg("line", {x1: L, y1: T, x2: L, y2: H - B, stroke: "#888"}),
    svg("text", {x: L, y: H - 10, text: `step ${x0}`}), svg("text", {x: W - R - 60, y: H - 10, text: `step ${x1}`}),
    svg("text", {x: 4, y: T + 10, text: fmt(y1)}), svg("text", {x: 4, y: H - B, text: fmt(y0)}));
  series.forEach((s, i) => {
    const color = RUN_COLORS[i % RUN_COLORS.length].replace("#", "");
    const stroke = `#${color}`;
    chart.append(svg("polyline", {fill: "none", stroke, "stroke-width": 2,
      points: s.points.map(([step, v]) => `${sx(step)},${sy(v)}`).join(" ")}));
    for (const [step, v] of s.points) {
      const dot = svg("circle", {cx: sx(step), cy: sy(v), r: 3.5, fill: stroke});
      dot.append(svg("title", {text: `${s.model} step ${step}: ${fmt(v)}`}));
      chart.append(dot);
    }
    chart.append(svg("text", {x: W - R + 10, y: T + 14 + i * 16, fill: stroke, text: s.model}));
  });
}
