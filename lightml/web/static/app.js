// LightML dashboard. Plain JavaScript written for this project, no libraries.
// Every piece of registry data reaches the page through textContent or setAttribute,
// never as HTML markup, so a model named "<img onerror=...>" is shown as text.
"use strict";

const state = {
  family: undefined,       // a family name; null: all families; undefined: not chosen yet (the first)
  run: "",
  checkpoints: false,
  includeHidden: false,
  search: "",
  where: "",  // the filter expression applied to the table (lightml.read.filters), "" for none
  showEmpty: false,  // in a family's tab, also the models with no value in it
  groupBy: "",  // a parameter whose values the table's rows are (each the mean of its models), "" for none
  sort: null,              // {col: index or "model"/"run"/"step", dir: 1 | -1}
  selected: new Set(),     // model ids
  onlySelected: false,
  pivot: null,
  rowsById: [],            // [{row, tr}] in data order
  lastSeq: 0,
  view: "table",
  lineage: null,
  graph: {x: 0, y: 0, k: 1, showCheckpoints: false},
};

const $ = (id) => document.getElementById(id);

// Objects keyed by registry data (family, metric names) must be read through their own
// properties only: a metric named "constructor" or a family named "__proto__" would otherwise
// find Object.prototype's.
const own = (object, key) => (object != null && Object.hasOwn(object, key) ? object[key] : undefined);

// The edit token the server wrote into the page; the POST endpoints refuse requests without it.
const TOKEN = document.querySelector('meta[name="lightml-token"]').content;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// The SVG namespace (a name, never fetched), read from the page's own <svg> elements.
const SVG_NAMESPACE = document.getElementById("graph").namespaceURI;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NAMESPACE, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  return node;
}

async function api(path, options) {
  const response = await fetch(path, options);
  // Every answer of the server is JSON; something in between (a proxy) may answer otherwise.
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

// An edit (notes, hidden flag) through the server, which logs it as an event with origin "web".
function post(path, body) {
  return api(path, {method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-LightML-Token": TOKEN}});
}

function fmt(value) {
  return value == null ? "—" : Number(value).toFixed(4);
}

// ---------------------------------------------------------------- table view

async function loadFamilies() {
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

async function loadRuns() {
  const runs = await api("/api/runs");
  const select = $("run-filter");
  const current = select.value;
  select.replaceChildren(el("option", {value: "", text: "all runs"}),
    ...runs.map((r) => el("option", {value: r.run, text: `${r.run} (${r.models})`})));
  select.value = current;
}

async function loadPivot() {
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
function showPivot() {
  const pivot = state.fullPivot;
  state.pivot = state.groupBy ? groupedPivot(pivot, state.groupBy) : pivot;
  renderTable();
}

function offerGroupKeys(pivot) {
  const keys = new Set();
  for (const row of pivot.rows) for (const key of Object.keys(row.params || {})) keys.add(key);
  const select = $("group-by");
  if (state.groupBy && !keys.has(state.groupBy)) keys.add(state.groupBy);
  select.replaceChildren(el("option", {value: "", text: "no grouping"}),
    ...[...keys].sort(naturalCompare).map((key) => el("option", {value: key, text: `group by ${key}`})));
  select.value = state.groupBy;
}

function naturalCompare(a, b) {
  return String(a).localeCompare(String(b), undefined, {numeric: true, sensitivity: "base"});
}

function groupedPivot(pivot, key) {
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

function columnLabel(column) {
  const th = el("th", {title: `${column.family}/${column.metric}${column.lower_is_better ? " (lower is better)" : ""}`});
  if (state.family === null) th.append(el("span", {class: "family", text: column.family}));
  th.append(document.createTextNode(column.metric));
  return th;
}

// The table is windowed: only the rows in view (plus a margin) are in the DOM, so sorting,
// filtering and scrolling stay fast with thousands of models. Rows have a fixed height.
const ROW_HEIGHT = 26;
const MARGIN_ROWS = 15;

function renderTable() {
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

function rowElement(record) {
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

function markSelected(record) {
  const on = state.selected.has(record.row.id);
  record.tr.classList.toggle("selected", on);
  record.tr.querySelector("input").checked = on;
}

function spacer(height) {
  const tr = el("tr", {class: "spacer"});
  tr.style.height = `${height}px`;
  return tr;
}

function renderWindow() {
  const wrap = document.querySelector(".table-wrap");
  const shown = state.visible || [];
  const first = Math.max(0, Math.floor(wrap.scrollTop / ROW_HEIGHT) - MARGIN_ROWS);
  const last = Math.min(shown.length, first + Math.ceil(wrap.clientHeight / ROW_HEIGHT) + 2 * MARGIN_ROWS);
  const rows = shown.slice(first, last).map((record) => { const tr = rowElement(record); markSelected(record); return tr; });
  $("pivot").tBodies[0].replaceChildren(spacer(first * ROW_HEIGHT), ...rows, spacer((shown.length - last) * ROW_HEIGHT));
}

function sortBy(key) {
  const same = state.sort && state.sort.col === key;
  state.sort = {col: key, dir: same ? -state.sort.dir : (typeof key === "number" ? -1 : 1)};
  applySort();
}

function applySort() {
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

function applyFilter() {
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
function emptyText() {
  if (state.fullPivot && state.fullPivot.rows.length === 0 && !state.where && !state.run) {
    return "No models yet. Log one from Python: h = LightMLHandle('registry.db', 'my-run'); " +
      "h.register_model('my-model', 'org/model'); h.log_model_metric('my-model', 'reasoning', 'arc', 0.5) " +
      "(or import lm-eval results: lightml scan --path RESULTS_DIR).";
  }
  return state.where ? "No model matches the filter expression." : "No metrics to show.";
}

// ---------------------------------------------------------------- selection

function toggleSelected(id, on) {
  if (on) state.selected.add(id); else state.selected.delete(id);
  syncSelection();
}

function syncSelection() {
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

function modelOf(id) {
  const hit = state.rowsById.find((r) => r.row.id === id) ||
    (state.lineage && state.lineage.nodes.find((n) => n.id === id) && {row: state.lineage.nodes.find((n) => n.id === id)});
  return hit ? {model: hit.row.model, run: hit.row.run} : null;
}

// ---------------------------------------------------------------- modals

function openModal(title, ...content) {
  $("modal-title").textContent = title;
  $("modal-body").replaceChildren(...content);
  $("modal").hidden = false;
}

// A value with lm-eval's standard error of it, where one was logged.
function withStderr(value, stderr) {
  return stderr == null ? fmt(value) : `${fmt(value)} ±${fmt(stderr)}`;
}

// A value that is the mean of repeats: with its 95% interval over them and their count;
// otherwise as withStderr.
function withSpread(value, stderr, spread) {
  if (value == null) return fmt(value);
  if (spread == null) return withStderr(value, stderr);
  return spread.half_width == null ? `${fmt(value)} (n=${spread.n})` : `${fmt(value)} ±${fmt(spread.half_width)} (n=${spread.n})`;
}

async function showCompare() {
  const [a, b] = [...state.selected].map(modelOf);
  if (!a || !b) return;
  const params = new URLSearchParams({a: a.model, b: b.model});
  if (a.run) params.set("run_a", a.run);
  if (b.run) params.set("run_b", b.run);
  let result;
  try { result = await api(`/api/compare?${params}`); } catch (error) { openModal("Compare", el("p", {text: error.message})); return; }
  const table = el("table", {class: "compare"});
  const anyDiffer = result.deltas.some((d) => d.settings_differ && d.settings_differ.length);
  const headers = ["Family", "Metric", a.model, b.model, "Δ (B − A)", "%", "p"].concat(anyDiffer ? ["Settings"] : []);
  table.append(el("tr", {}, ...headers.map((h) => el("th", {text: h}))));
  for (const d of result.deltas) {
    const better = d.delta == null || d.delta === 0 ? "" : ((d.delta > 0) !== d.lower_is_better ? "up" : "down");
    const p = d.p_value == null ? "" : (d.p_value < 0.0001 ? "<0.0001" : d.p_value.toFixed(4)) + (d.significant ? " ✱" : "");
    // A metric both models have per-sample scores for opens the documents that flipped (a test
    // over repeat values alone has none).
    const scored = d.p_value != null && d.test !== "welch_t_over_repeats";
    const metricCell = !scored ? el("td", {text: d.metric})
      : el("td", {}, el("button", {class: "link flips", title: "which documents flipped", text: d.metric}));
    if (scored) metricCell.firstChild.addEventListener("click", () => showFlips(a, b, d.family, d.metric));
    table.append(el("tr", {},
      el("td", {text: d.family}), metricCell,
      el("td", {class: "num", text: withSpread(d.value_a, d.stderr_a, d.repeats_a)}),
      el("td", {class: "num", text: withSpread(d.value_b, d.stderr_b, d.repeats_b)}),
      el("td", {class: `num ${better}`, text: d.delta == null ? "—" : (d.delta > 0 ? "+" : "") + d.delta.toFixed(4)}),
      el("td", {class: "num", text: d.pct_change == null ? "—" : `${d.pct_change > 0 ? "+" : ""}${d.pct_change.toFixed(1)}%`}),
      el("td", {class: d.significant ? "num sig" : "num", text: p}),
      ...(anyDiffer ? [el("td", {class: "settings-differ", text: d.settings_differ.length ? `! ${d.settings_differ.join(", ")}` : ""})] : [])));
  }
  const s = result.summary;
  openModal(`${a.model} vs ${b.model}`, table,
    el("p", {text: `${s.improved} improved, ${s.regressed} regressed, ${s.unchanged} unchanged, ${s.missing} missing. ` +
      "p: paired test on per-sample scores (McNemar for 0/1 scores, bootstrap otherwise; over repeats where both " +
      "logged them); ✱ p < 0.05. (n=…): the mean of n repeats, ± the half-width of its 95% interval. " +
      "A metric with p opens the documents that flipped." +
      (anyDiffer ? " !: the two values were produced with eval settings that differ in these keys (they change the number)." : "")}));
}

// The documents where the two models' scores differ, with the texts where scan recorded them.
async function showFlips(a, b, family, metric) {
  const params = new URLSearchParams({a: a.model, b: b.model, family, metric});
  if (a.run) params.set("run_a", a.run);
  if (b.run) params.set("run_b", b.run);
  const back = el("button", {class: "link", text: "← back to the comparison"});
  back.addEventListener("click", showCompare);
  const title = `Flips of ${family}/${metric}: ${a.model} vs ${b.model}`;
  let result;
  try { result = await api(`/api/flips?${params}`); } catch (error) { openModal(title, back, el("p", {text: error.message})); return; }
  const summary = el("p", {text: `${result.flipped} of ${result.documents} documents differ: ${a.model} better on ` +
    `${result.better_a}, ${b.model} better on ${result.better_b} (paired by ${result.paired_by}).` +
    (result.flips.length < result.flipped ? ` The first ${result.flips.length} are listed.` : "")});
  const table = el("table", {class: "flips"});
  table.append(el("tr", {}, ...["document", a.model, b.model, "better"].map((h) => el("th", {text: h}))));
  const notes = new Set();
  for (const flip of result.flips) {
    table.append(el("tr", {class: "flip"}, el("td", {text: String(flip.doc)}), el("td", {class: "num", text: fmt(flip.a)}),
      el("td", {class: "num", text: fmt(flip.b)}), el("td", {text: flip.better === "a" ? a.model : b.model})));
    if ("prompt" in flip) {
      const texts = el("dl", {class: "flip-texts"});
      for (const [label, text] of [["prompt", flip.prompt], ["target", flip.target], [a.model, flip.response_a], [b.model, flip.response_b]]) {
        texts.append(el("dt", {text: label}), el("dd", {text: text == null ? "—" : text}));
      }
      table.append(el("tr", {class: "flip-texts"}, el("td", {colspan: "4"}, texts)));
    }
    if (flip.text_note) notes.add(flip.text_note);
  }
  openModal(title, back, summary, table, ...[...notes].map((note) => el("p", {class: "note", text: `Texts: ${note}`})));
}

async function showHistory(row, column) {
  const params = new URLSearchParams({model: row.model, family: column.family, metric: column.metric});
  if (row.run) params.set("run", row.run);
  if (row.step != null) params.set("step", String(row.step));
  let entries;
  try { entries = await api(`/api/history?${params}`); } catch (error) { openModal("History", el("p", {text: error.message})); return; }
  const table = el("table", {class: "history"});
  table.append(el("tr", {}, ...["#", "when (UTC)", "what", "value", "before", "who"].map((h) => el("th", {text: h}))));
  for (const e of entries) {
    table.append(el("tr", {}, el("td", {text: String(e.seq)}), el("td", {text: e.at.replace("T", " ").replace("Z", "")}),
      el("td", {text: e.action}), el("td", {class: "num", text: fmt(e.value)}),
      el("td", {class: "num", text: e.previous_value == null ? "" : fmt(e.previous_value)}), el("td", {text: e.actor})));
  }
  const where = row.step == null ? row.model : `${row.model} @ step ${row.step}`;
  // The eval settings of the current value: those of the last insert or overwrite.
  const current = [...entries].reverse().find((e) => e.action === "inserted" || e.action === "overwritten");
  const settings = current && current.settings;
  const settingsPart = settings
    ? [el("h3", {text: "Eval settings of this value"}),
       el("table", {class: "settings"}, ...Object.entries(settings).map(([k, v]) =>
         el("tr", {}, el("th", {text: k}), el("td", {text: String(v)}))))]
    : [el("p", {class: "hint", text: "No eval settings were recorded with this value."})];
  openModal(`History of ${column.family}/${column.metric} — ${where}`, table, ...settingsPart);
}

// ---------------------------------------------------------------- editing notes and the hidden flag

function editButton(row) {
  const title = row.notes ? `notes: ${row.notes}` : "edit notes, hide";
  const button = el("button", {class: "edit", text: "✎", title});
  button.addEventListener("click", () => showEdit(row));
  return button;
}

function showEdit(row) {
  const notes = el("textarea", {id: "edit-notes", rows: "5", cols: "60"});
  notes.value = row.notes ?? "";
  const save = el("button", {id: "save-notes", text: "Save notes"});
  const toggle = el("button", {id: "toggle-hidden", text: row.hidden ? "Unhide" : "Hide"});
  const problem = el("p", {id: "edit-error", class: "error"});
  const change = async (path, body) => {
    try {
      await post(path, {model: row.model, run: row.run, ...body});
    } catch (error) {
      problem.textContent = error.message;  // the modal stays open with the reason
      return;
    }
    $("modal").hidden = true;
    await refresh();
  };
  save.addEventListener("click", () => change("/api/notes", {notes: notes.value}));
  toggle.addEventListener("click", () => change("/api/hidden", {hidden: !row.hidden}));
  const hint = row.hidden ? "Hidden: left out of listings, export and the dashboard unless asked for."
    : "Hiding leaves the model out of listings, export and the dashboard (tick \"hidden\" to see it again).";
  openModal(`Edit ${row.model}${row.run ? ` (${row.run})` : ""}`,
    el("label", {for: "edit-notes", text: "Notes"}), notes,
    el("div", {class: "edit-actions"}, save, toggle), el("p", {class: "hint", text: hint}), problem);
  notes.focus();
}

// ---------------------------------------------------------------- lineage graph

// Light fills that stay apart from each other (and from the text on them); the legend names
// each run, so a colour is never the only way to tell runs apart.
const RUN_COLORS = ["#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#fc9272", "#ffe066", "#66c2a5", "#d9d9d9"];

async function loadLineage() {
  state.lineage = await api("/api/lineage");
  renderGraph();
}

function layout(nodes) {
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

function renderLegend(runs) {
  $("graph-legend").replaceChildren(...runs.map((run, i) => {
    const swatch = el("span", {class: "swatch"});
    swatch.style.background = RUN_COLORS[i % RUN_COLORS.length];  // (CSSOM: no inline style attribute)
    return el("span", {class: "legend-item"}, swatch, document.createTextNode(run ?? "(no run)"));
  }));
}

function renderGraph() {
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

function showTooltip(event, node, families) {
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

function moveTooltip(event) {
  const tip = $("tooltip");
  tip.style.left = `${event.clientX + 14}px`;
  tip.style.top = `${event.clientY + 10}px`;
}

function highlightGraph() {
  const needle = $("graph-search").value.toLowerCase();
  document.querySelectorAll("#graph .node").forEach((g) => {
    const node = state.lineage.nodes.find((n) => n.id === Number(g.dataset.id));
    const hit = needle && node.model.toLowerCase().includes(needle);
    g.classList.toggle("highlight", Boolean(hit));
    g.classList.toggle("dim", Boolean(needle) && !hit);
  });
}

function applyGraphTransform() {
  const {x, y, k} = state.graph;
  $("graph-root").setAttribute("transform", `translate(${x},${y}) scale(${k})`);
}

function setupPanZoom() {
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

// ---------------------------------------------------------------- checkpoint curves

async function loadCurveMetrics() {
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
let curvesCall = 0;

async function loadCurves() {
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

// ---------------------------------------------------------------- live updates

async function poll() {
  try {
    const feed = await api(`/api/events?after=${state.lastSeq}`);
    $("live").classList.remove("stale");
    if (feed.last > state.lastSeq) {
      const first = state.lastSeq === 0;
      state.lastSeq = feed.last;
      if (!first) await refresh();
    }
  } catch (error) {
    $("live").classList.add("stale");
  }
  setTimeout(poll, 1000);
}

async function refresh() {
  // Reload the data under the current view; sort, filters and selection are kept in `state`.
  await Promise.all([loadFamilies(), loadRuns(), loadPivot()]);
  if (state.view === "graph") await loadLineage();
  if (state.view === "curves") await loadCurves();
}

// ---------------------------------------------------------------- wiring

function showView(view) {
  state.view = view;
  document.querySelectorAll(".view-tab").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  for (const name of ["table", "graph", "curves"]) $(`view-${name}`).hidden = name !== view;
  if (view === "graph") loadLineage();
  if (view === "curves") loadCurveMetrics();
}

function wire() {
  document.querySelectorAll(".view-tab").forEach((b) => b.addEventListener("click", () => showView(b.dataset.view)));
  $("search").addEventListener("input", (e) => { state.search = e.target.value; applyFilter(); });
  $("where").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { state.where = e.target.value.trim(); loadPivot(); }
  });
  $("where").addEventListener("search", (e) => {  // (the clear button of a search field)
    if (!e.target.value) { state.where = ""; loadPivot(); }
  });
  document.querySelector(".table-wrap").addEventListener("scroll", () => requestAnimationFrame(renderWindow));
  $("run-filter").addEventListener("change", (e) => { state.run = e.target.value; loadPivot(); });
  $("show-checkpoints").addEventListener("change", (e) => { state.checkpoints = e.target.checked; loadPivot(); });
  $("show-hidden").addEventListener("change", (e) => { state.includeHidden = e.target.checked; loadPivot(); });
  $("show-empty").addEventListener("change", (e) => { state.showEmpty = e.target.checked; applyFilter(); });
  $("group-by").addEventListener("change", (e) => { state.groupBy = e.target.value; showPivot(); });
  $("graph-search").addEventListener("input", highlightGraph);
  $("graph-checkpoints").addEventListener("change", (e) => { state.graph.showCheckpoints = e.target.checked; renderGraph(); });
  $("curve-family").addEventListener("change", loadCurveMetrics);
  $("curve-metric").addEventListener("change", loadCurves);
  $("filter-selected").addEventListener("click", () => { state.onlySelected = !state.onlySelected; syncSelection(); });
  $("compare-selected").addEventListener("click", showCompare);
  $("clear-selected").addEventListener("click", () => { state.selected.clear(); state.onlySelected = false; syncSelection(); });
  $("modal-close").addEventListener("click", () => { $("modal").hidden = true; });
  $("modal").addEventListener("click", (e) => { if (e.target === $("modal")) $("modal").hidden = true; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("modal").hidden = true; });
  setupPanZoom();
}

async function start() {
  wire();
  await Promise.all([loadFamilies(), loadRuns()]);
  await loadPivot();
  document.body.dataset.ready = "1";  // for tests and the benchmark: the page is interactive
  poll();
}

start();
