// LightML dashboard: what every part of the page shares (its state, DOM and SVG builders,
// the API calls, number formatting). Plain JavaScript written for this project, no libraries.
// Every piece of registry data reaches the page through textContent or setAttribute,
// never as HTML markup, so a model named "<img onerror=...>" is shown as text.
export const state = {
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

export const $ = (id) => document.getElementById(id);

// The page's colours, chosen for it: ten strong ones that stay apart (lines, bars, points,
// family bands), and eight light fills that black text reads on (the lineage's runs). Past the
// end a colour comes back, and whatever draws it varies something else too (a dash, a marker,
// hatching; a legend names every one), so colour is never the only way to tell two apart.
export const STRONG_COLORS = ["#3067a6", "#ec7813", "#309149", "#d22d3a", "#298e8e", "#cfaa17", "#914db2", "#cb4da1",
                              "#7d5036", "#6a707c"];
export const LIGHT_COLORS = ["#a5cde9", "#f9bf86", "#a6dda6", "#cec1e1", "#f4a29a", "#fbe974", "#90d5c4", "#d9d9d9"];

// Objects keyed by registry data (family, metric names) must be read through their own
// properties only: a metric named "constructor" or a family named "__proto__" would otherwise
// find Object.prototype's.
export const own = (object, key) => (object != null && Object.hasOwn(object, key) ? object[key] : undefined);

// The edit token the server wrote into the page; the POST endpoints refuse requests without it.
export const TOKEN = document.querySelector('meta[name="lightml-token"]').content;

export function el(tag, attrs = {}, ...children) {
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
export const SVG_NAMESPACE = document.getElementById("graph").namespaceURI;

export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NAMESPACE, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  return node;
}

export async function api(path, options) {
  const response = await fetch(path, options);
  // Every answer of the server is JSON; something in between (a proxy) may answer otherwise.
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// An edit (notes, hidden flag) through the server, which logs it as an event with origin "web".
export function post(path, body) {
  return api(path, {method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-LightML-Token": TOKEN}});
}

export function fmt(value) {
  return value == null ? "—" : Number(value).toFixed(4);
}

export function naturalCompare(a, b) {
  return String(a).localeCompare(String(b), undefined, {numeric: true, sensitivity: "base"});
}

// The modal dialog: opened with a title and content (null parts left out); focus moves into
// it, and back to what had it when the dialog closes (Escape, ✕, a click outside, or done).
let opener = null;

export function openModal(title, ...content) {
  if ($("modal").hidden) opener = document.activeElement;
  $("modal-title").textContent = title;
  $("modal-body").replaceChildren(...content.filter((part) => part != null));
  $("modal").hidden = false;
  if (!$("modal").contains(document.activeElement)) $("modal-close").focus();
}

export function closeModal() {
  if ($("modal").hidden) return;
  $("modal").hidden = true;
  if (opener && opener.isConnected) opener.focus();
  opener = null;
}

// A value with lm-eval's standard error of it, where one was logged.
export function withStderr(value, stderr) {
  return stderr == null ? fmt(value) : `${fmt(value)} ±${fmt(stderr)}`;
}

// A value that is the mean of repeats: with its 95% interval over them and their count;
// otherwise as withStderr.
export function withSpread(value, stderr, spread) {
  if (value == null) return fmt(value);
  if (spread == null) return withStderr(value, stderr);
  return spread.half_width == null ? `${fmt(value)} (n=${spread.n})` : `${fmt(value)} ±${fmt(spread.half_width)} (n=${spread.n})`;
}
