// The table view: the pivot of models x metrics, windowed, sorted, filtered; and the selection.
import {$, el, api, fmt, own, state, naturalCompare, withSpread} from "./core.js";
import {editButton, showHistory} from "./details.js";

export async function loadFamilies() {
  const families = await api("/api/families");
  const tabs = $("family-tabs");
  tabs.replaceChildren();
  const add = (label, family) => {
    const button = el("button", {text: label, "data-family": family ?? ""});
    if ((state.family ?? "") === (family ?? "")) button.classList.add("active");
    button.addEventListener("click", () => { state.family = family; state.sort = null; loadFamilies(); loadPivot(); });
    tabs.append(button);
  };
  // The overview (every family) comes first and is where the page opens; then one tab per family.
  add("All families", null);
  for (const f of families) add(f.family, f.family);
  if (state.family === undefined || (state.family !== null && !families.some((f) => f.family === state.family))) {
    state.family = null;
    tabs.querySelectorAll("button").forEach((b) => b.classList.toggle("active", b.dataset.family === (state.family ?? "")));
  }
  const curveFamily = $("curve-family");
  const current = curveFamily.value;
  curveFamily.replaceChildren(...families.map((f) => el("option", {value: f.family, text: f.family})));
  if (current) curveFamily.value = current;
}

export async function loadRuns() {
  const runs = await api("/api/runs");
  const select = $("run-filter");
  const current = select.value;
  select.replaceChildren(el("option", {value: "", text: "all runs"}),
    ...runs.map((r) => el("option", {value: r.run, text: `${r.run} (${r.models})`})));
  select.value = current;
}

export async function loadPivot() {
  const params = new URLSearchParams();
  if (state.family !== null) params.set("family", state.family);
  if (state.run) params.set("run", state.run);
  if (state.checkpoints) params.set("checkpoints", "1");
  if (state.includeHidden) params.set("include_hidden", "1");
  if (state.where) params.set("where", state.where);
  // Only the newest request's answer is shown: a slow answer for the tab left a moment ago
  // must not overwrite the one asked for since.
  const request = state.pivotRequests = (state.pivotRequests || 0) + 1;
  let pivot;
  try {
    pivot = await api(`/api/pivot?${params}`);
    if (request !== state.pivotRequests) return;
  } catch (error) {
    if (request !== state.pivotRequests) return;
    if (!state.where) throw error;
    // A bad filter expression: the server says where it went wrong; the table stays as it was.
    $("where-error").textContent = error.message;
    $("where-error").hidden = false;
    return;
  }
  $("where-error").hidden = true;
  // values arrive as {family: {metric: value}}: lay them out in column order
  for (const row of pivot.rows) {
    const byFamily = row.values;
    row.values = pivot.columns.map((c) => own(own(byFamily, c.family), c.metric) ?? null);
    const spreads = row.repeats || {};
    row.spreads = pivot.columns.map((c) => own(own(spreads, c.family), c.metric) ?? null);
  }
  // A score's stderr column (the server names it): its value is shown beside the score too.
  const at = new Map(pivot.columns.map((c, i) => [`${c.family}\u0000${c.metric}`, i]));
  for (const c of pivot.columns) c.stderrIndex = c.stderr == null ? null : at.get(`${c.family}\u0000${c.stderr}`);
  state.fullPivot = pivot;
  offerGroupKeys(pivot);
  showPivot();
}

// The table as loaded, or (grouped by a parameter) one row per value of it, each the mean of
// its models' values: a sweep read as "beta=0.1 (n=3)" against "beta=0.3 (n=2)".
export function showPivot() {
  const pivot = state.fullPivot;
  state.pivot = state.groupBy ? groupedPivot(pivot, state.groupBy) : pivot;
  renderTable();
}

export function offerGroupKeys(pivot) {
  const keys = new Set();
  for (const row of pivot.rows) for (const key of Object.keys(row.params || {})) keys.add(key);
  const select = $("group-by");
  if (state.groupBy && !keys.has(state.groupBy)) keys.add(state.groupBy);
  select.replaceChildren(el("option", {value: "", text: "no grouping"}),
    ...[...keys].sort(naturalCompare).map((key) => el("option", {value: key, text: `group by ${key}`})));
  select.value = state.groupBy;
}

export function groupedPivot(pivot, key) {
  const groups = new Map();
  for (const row of pivot.rows) {
    if (row.step != null) continue;  // (model rows only: a checkpoint is not a run of the sweep)
    const has = row.params != null && Object.prototype.hasOwnProperty.call(row.params, key);
    // (as JSON: 1, true and "1" are three groups, and text never reads as "-", the models without it)
    const label = `${key}=${has ? JSON.stringify(row.params[key]) : "-"}`;
    if (!groups.has(label)) groups.set(label, {value: has ? row.params[key] : undefined, has, members: []});
    groups.get(label).members.push(row);
  }
  const rank = (g) => (!g.has ? 3 : typeof g.value === "number" ? 0 : typeof g.value === "boolean" ? 1 : 2);
  const ordered = [...groups.entries()].sort(([la, a], [lb, b]) =>
    rank(a) - rank(b) || (rank(a) === 0 ? a.value - b.value : naturalCompare(la, lb)));
  const rows = ordered.map(([label, g], i) => ({
    id: -1 - i, group: true, model: `${label} (n=${g.members.length})`, run: "", step: null, hidden: false,
    members: g.members.map((r) => r.model),
    values: pivot.columns.map((c, j) => {
      const known = g.members.map((r) => r.values[j]).filter((v) => v != null);
      return known.length ? known.reduce((sum, v) => sum + v, 0) / known.length : null;
    }),
  }));
  return {...pivot, rows};
}

export function columnLabel(column) {
  const th = el("th", {title: `${column.family}/${column.metric}${column.lower_is_better ? " (lower is better)" : ""}`});
  if (state.family === null) th.append(el("span", {class: "family", text: column.family}));
  th.append(document.createTextNode(column.metric));
  return th;
}

// The table is windowed: only the rows in view (plus a margin) are in the DOM, so sorting,
// filtering and scrolling stay fast with thousands of models. Rows have a fixed height.
export const ROW_HEIGHT = 26;
export const MARGIN_ROWS = 15;

export function renderTable() {
  const {columns, rows} = state.pivot;
  const head = el("tr", {}, el("th", {text: "✓", class: "select-col"}));
  const fixed = [["model", "Model"], ["run", "Run"]].concat(state.checkpoints ? [["step", "Step"]] : []);
  for (const [key, label] of fixed) {
    const th = el("th", {text: label, "data-sort": key});
    th.addEventListener("click", () => sortBy(key));
    head.append(th);
  }
  columns.forEach((column, i) => {
    const th = columnLabel(column);
    th.dataset.sort = String(i);
    th.addEventListener("click", () => sortBy(i));
    head.append(th);
  });
  $("pivot").tHead.replaceChildren(head);

  // best / worst per column, direction-aware, over every row (not only the ones in view)
  state.extremes = columns.map((column, i) => {
    let low = Infinity, high = -Infinity, count = 0;
    for (const r of rows) {
      const v = r.values[i];
      if (v == null) continue;
      count += 1;
      if (v < low) low = v;
      if (v > high) high = v;
    }
    if (count < 2 || low === high) return null;
    return column.lower_is_better ? {best: low, worst: high} : {best: high, worst: low};
  });
  state.rowsById = rows.map((row) => ({row, tr: null}));
  applySort();
}

export function rowElement(record) {
  if (record.tr) return record.tr;
  const {row} = record;
  const {columns} = state.pivot;
  const tr = el("tr", {class: row.group ? "group" : row.step == null ? "model" : "checkpoint", "data-model-id": String(row.id)});
  if (row.hidden) tr.classList.add("hidden-model");
  const box = el("input", {type: "checkbox", "aria-label": `select ${row.model}`});
  if (row.group) {  // a group's mean: nothing to select, edit or trace back to one stored value
    box.disabled = true;
    tr.append(el("td", {}, box), el("td", {text: row.model, class: "model-name", title: `the mean of ${row.members.join(", ")}`}),
      el("td", {text: ""}));
    if (state.checkpoints) tr.append(el("td", {text: ""}));
    row.values.forEach((value, i) => {
      const td = el("td", {class: "num", text: fmt(value)});
      const e = state.extremes[i];
      if (e && value === e.best) td.classList.add("best");
      else if (e && value === e.worst) td.classList.add("worst");
      tr.append(td);
    });
    record.tr = tr;
    return tr;
  }
  box.addEventListener("change", () => toggleSelected(row.id, box.checked));
  // Model rows get an edit button (notes, hide) beside their checkbox; checkpoints have none.
  const edit = row.step == null ? editButton(row) : null;
  tr.append(el("td", {}, box, edit), el("td", {text: row.model, class: "model-name"}), el("td", {text: row.run ?? ""}));
  if (state.checkpoints) tr.append(el("td", {text: row.step == null ? "" : `step ${row.step}`}));
  row.values.forEach((value, i) => {
    const stderrAt = columns[i].stderrIndex;
    const td = el("td", {class: "num", text: withSpread(value, stderrAt == null ? null : row.values[stderrAt], row.spreads[i])});
    const e = state.extremes[i];
    if (e && value === e.best) td.classList.add("best");
    else if (e && value === e.worst) td.classList.add("worst");
    if (value != null) {
      td.title = "click: its history and eval settings";
      td.addEventListener("click", () => showHistory(row, columns[i]));
    }
    tr.append(td);
  });
  record.tr = tr;
  return tr;
}

export function markSelected(record) {
  const on = state.selected.has(record.row.id);
  record.tr.classList.toggle("selected", on);
  record.tr.querySelector("input").checked = on;
}

export function spacer(height) {
  const tr = el("tr", {class: "spacer"});
  tr.style.height = `${height}px`;
  return tr;
}

export function renderWindow() {
  const wrap = document.querySelector(".table-wrap");
  const shown = state.visible || [];
  const first = Math.max(0, Math.floor(wrap.scrollTop / ROW_HEIGHT) - MARGIN_ROWS);
  const last = Math.min(shown.length, first + Math.ceil(wrap.clientHeight / ROW_HEIGHT) + 2 * MARGIN_ROWS);
  const rows = shown.slice(first, last).map((record) => { const tr = rowElement(record); markSelected(record); return tr; });
  $("pivot").tBodies[0].replaceChildren(spacer(first * ROW_HEIGHT), ...rows, spacer((shown.length - last) * ROW_HEIGHT));
}

export function sortBy(key) {
  const same = state.sort && state.sort.col === key;
  state.sort = {col: key, dir: same ? -state.sort.dir : (typeof key === "number" ? -1 : 1)};
  applySort();
}

export function applySort() {
  document.querySelectorAll("#pivot th").forEach((th) => th.classList.remove("sorted-asc", "sorted-desc"));
  let ordered = state.rowsById;
  if (state.sort) {
    const {col, dir} = state.sort;
    const th = document.querySelector(`#pivot th[data-sort="${col}"]`);
    if (th) th.classList.add(dir > 0 ? "sorted-asc" : "sorted-desc");
    const value = (r) => typeof col === "number" ? r.row.values[col] : r.row[col];
    // Checkpoints stay under their model: sort model groups, keep each group's order.
    const groups = [];
    for (const r of state.rowsById) {
      if (r.row.step == null || !groups.length) groups.push([r]);
      else groups[groups.length - 1].push(r);
    }
    groups.sort((a, b) => {
      const va = value(a[0]), vb = value(b[0]);
      if (va == null && vb == null) return 0;
      if (va == null) return 1;       // missing values last, whichever the direction
      if (vb == null) return -1;
      // names in natural order (mmlu_2shot before mmlu_10shot), numbers as numbers
      return (typeof va === "string" ? naturalCompare(va, vb) : (va < vb ? -1 : va > vb ? 1 : 0)) * dir;
    });
    ordered = groups.flat();
  }
  state.ordered = ordered;
  applyFilter();
}

export function applyFilter() {
  const needle = state.search.toLowerCase();
  // A family's tab leaves out the models that have nothing in it (unless asked for).
  const hideEmpty = state.family !== null && !state.showEmpty;
  state.visible = (state.ordered || []).filter(({row}) =>
    (!needle || row.model.toLowerCase().includes(needle)) && (!state.onlySelected || state.selected.has(row.id))
    && (!hideEmpty || row.values.some((v) => v != null)));
  renderWindow();
  $("table-empty").hidden = state.visible.length > 0;
  if (!state.visible.length) $("table-empty").textContent = emptyText();
}

// What an empty table says: how to start, when the registry has no model at all.
export function emptyText() {
  if (state.fullPivot && state.fullPivot.rows.length === 0 && !state.where && !state.run) {
    return "No models yet. Log one from Python: h = LightMLHandle('registry.db', 'my-run'); " +
      "h.register_model('my-model', 'org/model'); h.log_model_metric('my-model', 'reasoning', 'arc', 0.5) " +
      "(or import lm-eval results: lightml scan --path RESULTS_DIR).";
  }
  return state.where ? "No model matches the filter expression." : "No metrics to show.";
}

// ---------------------------------------------------------------- selection

export function toggleSelected(id, on) {
  if (on) state.selected.add(id); else state.selected.delete(id);
  syncSelection();
}

export function syncSelection() {
  for (const record of state.rowsById) if (record.tr) markSelected(record);
  document.querySelectorAll("#graph .node").forEach((node) =>
    node.classList.toggle("selected", state.selected.has(Number(node.dataset.id))));
  $("selection-bar").hidden = state.selected.size === 0;
  $("selection-count").textContent = `${state.selected.size} selected`;
  $("compare-selected").disabled = state.selected.size !== 2;
  if (state.onlySelected && state.selected.size === 0) state.onlySelected = false;
  $("filter-selected").textContent = state.onlySelected ? "Show all" : "Filter table";
  applyFilter();
}

export function modelOf(id) {
  const hit = state.rowsById.find((r) => r.row.id === id) ||
    (state.lineage && state.lineage.nodes.find((n) => n.id === id) && {row: state.lineage.nodes.find((n) => n.id === id)});
  return hit ? {model: hit.row.model, run: hit.row.run} : null;
}
