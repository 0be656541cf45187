// The table view: the pivot of models x metrics, windowed, sorted, filtered; and the selection.
import {$, el, api, own, state, naturalCompare} from "./core.js";
import {editButton, showHistory} from "./details.js";
import {display, familyColor, formatDelta, formatValue, rowHeight, shownName} from "./display.js";
import {remember} from "./views.js";

export async function loadFamilies() {
  const families = await api("/api/families");
  state.familyNames = families.map((f) => f.family);  // (their order picks each family's colour)
  const tabs = $("family-tabs");
  tabs.replaceChildren();
  const add = (label, family) => {
    const button = el("button", {text: label, "data-family": family ?? ""});
    const active = (state.family ?? "") === (family ?? "");
    button.classList.toggle("active", active);
    button.setAttribute("aria-pressed", String(active));
    if (family != null) {
      const swatch = el("span", {class: "family-swatch", "aria-hidden": "true"});
      swatch.style.background = familyColor(family, state.familyNames);
      button.prepend(swatch);
    }
    button.addEventListener("click", () => {
      // (a new tab: its own columns, unsorted)
      state.family = family; state.sort = null; state.columns = null; remember(); loadFamilies(); loadPivot();
    });
    tabs.append(button);
  };
  // The overview (every family) comes first and is where the page opens; then one tab per family.
  add("All families", null);
  for (const f of families) add(f.family, f.family);
  if (state.family === undefined || (state.family !== null && !families.some((f) => f.family === state.family))) {
    state.family = null;
    tabs.querySelectorAll("button").forEach((b) => {
      b.classList.toggle("active", b.dataset.family === (state.family ?? ""));
      b.setAttribute("aria-pressed", String(b.dataset.family === (state.family ?? "")));
    });
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
    $("where-error").textContent = error.message;
    $("where-error").hidden = false;
    if (error.status === 404 && state.run) {
      // A run that is gone (a link or a saved view made before it was pruned): said, and every run shown.
      state.run = "";
      $("run-filter").value = "";
      await loadPivot();
      $("where-error").textContent = `${error.message}: showing every run`;
      $("where-error").hidden = false;
    }
    // (A bad filter expression: the server says where it went wrong; the table stays as it was.)
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
  state.settingsMarks = null;
  offerGroupKeys(pivot);
  showPivot();
  if (pivot.family != null) loadSettingsMarks(pivot.family, request);
}

// In a family's tab: the values produced with other eval settings than most of their column,
// marked "!" with the keys that differ (asked after the table is drawn: it never waits for them).
async function loadSettingsMarks(family, request) {
  let marks;
  const params = new URLSearchParams({family});
  if (state.run) params.set("run", state.run);
  if (state.includeHidden) params.set("include_hidden", "1");
  try { marks = await api(`/api/settings-marks?${params}`); } catch { return; }
  if (request !== state.pivotRequests || !Object.keys(marks).length) return;
  state.settingsMarks = new Map(Object.entries(marks).map(([metric, m]) =>
    [`${family}\u0000${metric}`, new Map(Object.entries(m.models).map(([id, text]) => [Number(id), text]))]));
  // The rows drawn already get their marks in place (drawn again, a focused cell would lose
  // its focus); the others get them when drawn.
  const first = state.checkpoints ? 4 : 3;  // (the select, Model, Run and Step cells before the values)
  for (const record of state.rowsById) {
    if (!record.tr || record.row.group || record.row.step != null) continue;
    state.pivot.columns.forEach((column, i) => {
      const td = record.tr.children[first + i];
      if (td) markSettings(td, record.row, column);
    });
  }
}

// "!" on a value produced with other eval settings than most of its column, and why in its title.
function markSettings(td, row, column) {
  const differs = state.settingsMarks ? state.settingsMarks.get(columnKey(column))?.get(row.id) : null;
  if (!differs || td.classList.contains("settings-differ")) return;
  td.classList.add("settings-differ");
  const note = `other eval settings than most of the column: ${differs}`;
  td.dataset.delta = td.dataset.delta ? `${td.dataset.delta}; ${note}` : note;
  if (td.title) td.title = `click: its history and eval settings (${td.dataset.delta})`;
}

// The table as loaded, with the columns chosen (all unless some were picked), the summary
// set's column first if one is shown, and (grouped by a parameter) one row per value of it,
// each the mean of its models' values: a sweep read as "beta=0.1 (n=3)" against "beta=0.3 (n=2)".
export function showPivot() {
  if (!state.fullPivot) return;
  let pivot = withSummary(chosenColumns(state.fullPivot));
  state.pivot = state.groupBy ? groupedPivot(pivot, state.groupBy) : pivot;
  renderTable();
}

export const columnKey = (column) => `${column.family}\u0000${column.metric}`;

// Only the columns picked ("Columns…"), when some were: a projection of every row.
function chosenColumns(pivot) {
  if (!state.columns) return pivot;
  const keep = pivot.columns.map((c, i) => [c, i]).filter(([c]) => state.columns.has(columnKey(c)));
  const columns = keep.map(([c]) => ({...c}));
  const at = new Map(columns.map((c, i) => [columnKey(c), i]));
  for (const c of columns) c.stderrIndex = c.stderr == null ? null : at.get(`${c.family}\u0000${c.stderr}`) ?? null;
  const rows = pivot.rows.map((row) => ({...row, values: keep.map(([, i]) => row.values[i]),
                                         spreads: keep.map(([, i]) => row.spreads[i])}));
  return {...pivot, columns, rows};
}

// The summary set's column (its mean per model, with the 95% interval where known), first.
function withSummary(pivot) {
  const summary = state.summary;
  if (!summary || !summary.byId) return pivot;
  const column = {family: "Σ", metric: summary.name, summary: true, lower_is_better: false, stderrIndex: null,
                  metrics: summary.metrics};
  const columns = [column, ...pivot.columns.map((c) => ({...c, stderrIndex: c.stderrIndex == null ? null : c.stderrIndex + 1}))];
  const rows = pivot.rows.map((row) => {
    const found = row.step == null ? summary.byId.get(row.id) : undefined;
    return {...row, values: [found ? found.mean : null, ...row.values],
            spreads: [found ? {half_width: found.half_width, summary: found} : null, ...row.spreads]};
  });
  return {...pivot, columns, rows};
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

export function columnLabel(column, families) {
  const direction = column.lower_is_better ? " (lower is better)" : "";
  const title = column.summary ? `summary set ${column.metric}: the mean of ${column.metrics.map((m) => m.join("/")).join(", ")}`
    : `${column.family}/${column.metric}${direction}`;
  const th = el("th", {title, tabindex: "0", scope: "col"});
  if (state.family === null || column.summary) {
    const band = el("span", {class: "family", text: column.family});
    if (!column.summary) band.style.borderTopColor = familyColor(column.family, families);
    th.append(band);
  }
  th.append(document.createTextNode(column.metric));
  if (column.lower_is_better) th.append(el("span", {class: "direction", "aria-hidden": "true"}));  // (a CSS ↓)
  return th;
}

// The table is windowed: only the rows in view (plus a margin) are in the DOM, so sorting,
// filtering and scrolling stay fast with thousands of models. Rows have a fixed height (the
// display setting's density).
export const MARGIN_ROWS = 15;

// What the sort names, as the URL and saved views keep it: "model", "run", "step",
// "summary", or [family, metric]. The index of that column now, or the key itself.
function sortColumn(by) {
  if (!Array.isArray(by)) return by === "summary" ? state.pivot.columns.findIndex((c) => c.summary) : by;
  return state.pivot.columns.findIndex((c) => !c.summary && c.family === by[0] && c.metric === by[1]);
}

function sortKeyOf(key) {
  if (typeof key !== "number") return key;
  const column = state.pivot.columns[key];
  return column.summary ? "summary" : [column.family, column.metric];
}

export function renderTable() {
  const {columns, rows} = state.pivot;
  const families = state.familyNames || [];
  const head = el("tr", {}, el("th", {text: "✓", class: "select-col", scope: "col"}));
  const fixed = [["model", "Model"], ["run", "Run"]].concat(state.checkpoints ? [["step", "Step"]] : []);
  const sortable = (th, key) => {
    th.addEventListener("click", () => sortBy(key));
    th.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(key); } });
  };
  for (const [key, label] of fixed) {
    const th = el("th", {text: label, "data-sort": key, tabindex: "0", scope: "col"});
    sortable(th, key);
    head.append(th);
  }
  columns.forEach((column, i) => {
    const th = columnLabel(column, families);
    th.dataset.sort = String(i);
    if (column.summary) th.classList.add("summary-col");
    sortable(th, i);
    head.append(th);
  });
  $("pivot").tHead.replaceChildren(head);

  // Per column: its best and worst value (direction-aware, over every row, not only those in
  // view), its range (for the relative scale's shades), and whether it holds fractions (0..1:
  // what "show as %" applies to).
  state.columnStats = columns.map((column, i) => {
    let low = Infinity, high = -Infinity, count = 0;
    for (const r of rows) {
      const v = r.values[i];
      if (v == null) continue;
      count += 1;
      if (v < low) low = v;
      if (v > high) high = v;
    }
    const fraction = count > 0 && low >= 0 && high <= 1 && !/stderr/i.test(column.metric);
    const extremes = count < 2 || low === high ? null
      : column.lower_is_better ? {best: low, worst: high} : {best: high, worst: low};
    return {extremes, fraction, range: count ? high - low : 0};
  });
  state.reference = referenceRows();
  state.rowsById = rows.map((row) => ({row, tr: null}));
  applySort();
}

// The relative colour scale's reference of each row: its parent's row, or the baseline's.
function referenceRows() {
  if (display.scale === "absolute") return null;
  const models = new Map(state.pivot.rows.filter((r) => r.step == null && !r.group).map((r) => [r.id, r]));
  if (display.scale === "baseline") {
    const baseline = models.get(display.baseline);
    return baseline ? () => baseline : null;
  }
  return (row) => models.get(row.parent_id);
}

// A value cell's colour and mark: best / worst of its column (absolute), or better / worse
// than the reference (relative, shaded by how far, in the column's range). A mark (▲ ▼) says
// the same as the colour, for whoever cannot tell the colours apart.
function shade(td, row, i, value) {
  if (value == null) return;
  const stats = state.columnStats[i];
  const column = state.pivot.columns[i];
  if (!state.reference) {
    const e = stats.extremes;
    if (e && value === e.best) td.classList.add("best");
    else if (e && value === e.worst) td.classList.add("worst");
    return;
  }
  const reference = row.group ? null : state.reference(row);
  if (!reference || reference === row && row.step == null) return;
  const base = reference.values[i];
  if (base == null || base === value) return;
  const delta = value - base;
  const better = (delta > 0) !== Boolean(column.lower_is_better);
  const strength = stats.range > 0 ? Math.abs(delta) / stats.range : 1;
  td.classList.add(better ? "better" : "worse", strength > 0.5 ? "strong" : strength > 0.15 ? "medium" : "weak");
  const against = display.scale === "parent" ? `its parent ${reference.model}` : `the baseline ${reference.model}`;
  td.dataset.delta = `${delta > 0 ? "+" : ""}${formatDelta(delta, stats.fraction)} vs ${against}`;
}

function valueText(value, row, i) {
  const column = state.pivot.columns[i];
  const fraction = state.columnStats[i].fraction;
  const spread = row.spreads ? row.spreads[i] : null;
  if (value == null) return formatValue(value);
  if (column.summary) {
    const s = spread && spread.summary;
    const of = s && s.missing.length ? ` (${s.n} of ${s.n + s.missing.length})` : "";
    return (s && s.half_width != null ? `${formatValue(value, fraction)} ±${formatValue(s.half_width, fraction)}`
      : formatValue(value, fraction)) + of;
  }
  const stderrAt = column.stderrIndex;
  const stderr = stderrAt == null ? null : row.values[stderrAt];
  if (spread != null) {
    const shown = formatValue(value, fraction);
    return spread.half_width == null ? `${shown} (n=${spread.n})` : `${shown} ±${formatValue(spread.half_width, fraction)} (n=${spread.n})`;
  }
  return stderr == null ? formatValue(value, fraction) : `${formatValue(value, fraction)} ±${formatValue(stderr, fraction)}`;
}

function nameCell(row) {
  const td = el("td", {class: "model-name", text: row.group ? row.model : shownName(row.model)});
  if (!row.group && (display.compactNames || row.model.length > 40)) td.title = row.model;
  if (display.runTag && row.run) td.append(el("span", {class: "run-tag", text: ` @${row.run}`}));
  return td;
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
    const name = nameCell(row);
    name.title = `the mean of ${row.members.join(", ")}`;
    tr.append(el("td", {}, box), name, el("td", {text: ""}));
    if (state.checkpoints) tr.append(el("td", {text: ""}));
    row.values.forEach((value, i) => {
      const td = el("td", {class: "num", text: formatValue(value, state.columnStats[i].fraction)});
      shade(td, row, i, value);
      tr.append(td);
    });
    record.tr = tr;
    return tr;
  }
  box.addEventListener("change", () => toggleSelected(row.id, box.checked));
  // Model rows get an edit button (notes, hide, rename, parent, delete) beside their checkbox; checkpoints have none.
  const edit = row.step == null ? editButton(row) : null;
  tr.append(el("td", {}, box, edit), nameCell(row), el("td", {text: row.run ?? ""}));
  if (state.checkpoints) tr.append(el("td", {text: row.step == null ? "" : `step ${row.step}`}));
  row.values.forEach((value, i) => {
    const td = el("td", {class: "num", text: valueText(value, row, i)});
    shade(td, row, i, value);
    if (row.step == null) markSettings(td, row, columns[i]);
    if (value != null && !columns[i].summary) {
      // a value opens its history, by mouse or keyboard
      td.tabIndex = 0;
      td.title = `click: its history and eval settings${td.dataset.delta ? ` (${td.dataset.delta})` : ""}`;
      const open = () => showHistory(row, columns[i]);
      td.addEventListener("click", open);
      td.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
    } else if (columns[i].summary && value != null) {
      const s = row.spreads[i].summary;
      td.title = s.missing.length ? `missing: ${s.missing.map((m) => m.join("/")).join(", ")}` : "the mean of every metric of the set";
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
  const height = rowHeight();
  const first = Math.max(0, Math.floor(wrap.scrollTop / height) - MARGIN_ROWS);
  const last = Math.min(shown.length, first + Math.ceil(wrap.clientHeight / height) + 2 * MARGIN_ROWS);
  const rows = shown.slice(first, last).map((record) => { const tr = rowElement(record); markSelected(record); return tr; });
  $("pivot").tBodies[0].replaceChildren(spacer(first * height), ...rows, spacer((shown.length - last) * height));
}

export function sortBy(key) {
  const by = sortKeyOf(key);
  const same = state.sort && JSON.stringify(state.sort.by) === JSON.stringify(by);
  state.sort = {by, dir: same ? -state.sort.dir : (typeof key === "number" ? -1 : 1)};
  remember();
  applySort();
}

export function applySort() {
  document.querySelectorAll("#pivot th").forEach((th) => {
    th.classList.remove("sorted-asc", "sorted-desc");
    if (th.dataset.sort) th.removeAttribute("aria-sort");
  });
  let ordered = state.rowsById;
  const col = state.sort ? sortColumn(state.sort.by) : -1;
  if (state.sort && col !== -1) {
    const {dir} = state.sort;
    const th = document.querySelector(`#pivot th[data-sort="${CSS.escape(String(col))}"]`);
    if (th) {
      th.classList.add(dir > 0 ? "sorted-asc" : "sorted-desc");
      th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    }
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
  if (state.columns && state.pivot && state.pivot.columns.length === 0) return "No column is chosen: pick some under “Columns…”.";
  return state.where ? "No model matches the filter expression." : "No metrics to show.";
}

// ---------------------------------------------------------------- selection

export function toggleSelected(id, on) {
  if (on) state.selected.add(id); else state.selected.delete(id);
  syncSelection();
}

export function syncSelection() {
  for (const record of state.rowsById) if (record.tr) markSelected(record);
  document.querySelectorAll("#graph .node").forEach((node) => {
    const on = state.selected.has(Number(node.dataset.id));
    node.classList.toggle("selected", on);
    node.setAttribute("aria-selected", String(on));
  });
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
