// The table's view — family, run, filters, toggles, grouping, sort, chosen columns, summary set
// — kept in the page's URL (shareable; back and forward step through it), and saved under a
// name in the registry (dashboard items of kind "view", so a lab sharing the registry shares
// them). A view's spec is the same object the URL spells out.
import {$, el, api, post, openModal, closeModal, state} from "./core.js";

// The URL's parameters and the spec's keys, one to one.
const URL_KEYS = {family: "family", run: "run", search: "q", where: "where", group_by: "group",
                  checkpoints: "ck", include_hidden: "hidden", show_empty: "empty", sort_by: "sort",
                  sort_dir: "dir", columns: "cols", summary: "summary"};
const FLAGS = new Set(["checkpoints", "include_hidden", "show_empty"]);
const SORT_KEYS = ["model", "run", "step", "summary"];
const JSON_KEYS = new Set(["sort_by", "columns"]);

// The current view as a spec: only what differs from the page's defaults.
export function currentSpec() {
  const spec = {};
  if (state.family != null) spec.family = state.family;
  if (state.run) spec.run = state.run;
  if (state.search) spec.search = state.search;
  if (state.where) spec.where = state.where;
  if (state.groupBy) spec.group_by = state.groupBy;
  if (state.checkpoints) spec.checkpoints = true;
  if (state.includeHidden) spec.include_hidden = true;
  if (state.showEmpty) spec.show_empty = true;
  if (state.sort) { spec.sort_by = state.sort.by; spec.sort_dir = state.sort.dir; }
  if (state.columns) spec.columns = [...state.columns].map((key) => key.split("\u0000"));
  if (state.summary) spec.summary = state.summary.id;
  return spec;
}

// Put a spec into the page's state (what it does not name takes the default).
export function takeSpec(spec) {
  state.family = spec.family ?? null;
  state.run = spec.run ?? "";
  state.search = spec.search ?? "";
  state.where = spec.where ?? "";
  state.groupBy = spec.group_by ?? "";
  state.checkpoints = spec.checkpoints === true;
  state.includeHidden = spec.include_hidden === true;
  state.showEmpty = spec.show_empty === true;
  const by = spec.sort_by;
  // (from a link: anything but a fixed column, the summary or [family, metric] means unsorted)
  const sortable = SORT_KEYS.includes(by) || (Array.isArray(by) && by.length === 2 && by.every((x) => typeof x === "string"));
  state.sort = sortable ? {by, dir: spec.sort_dir === -1 ? -1 : 1} : null;
  state.columns = Array.isArray(spec.columns)
    ? new Set(spec.columns.filter((c) => Array.isArray(c) && c.length === 2).map((c) => c.join("\u0000"))) : null;
  const summary = Number.isInteger(spec.summary) ? spec.summary : null;
  state.summary = summary == null ? null : {id: summary, name: "", byId: null};
  syncControls();
}

export function specFromUrl() {
  const params = new URLSearchParams(location.search);
  const spec = {};
  for (const [key, name] of Object.entries(URL_KEYS)) {
    const raw = params.get(name);
    if (raw == null) continue;
    if (FLAGS.has(key)) spec[key] = raw === "1";
    else if (key === "sort_dir" || key === "summary") spec[key] = Number(raw);
    else if (JSON_KEYS.has(key)) {
      try { spec[key] = raw.startsWith("[") ? JSON.parse(raw) : raw; } catch { /* a damaged URL: that part ignored */ }
    } else spec[key] = raw;
  }
  return spec;
}

export function viewFromUrl() {
  const view = new URLSearchParams(location.search).get("view");
  return ["table", "graph", "curves", "charts"].includes(view) ? view : "table";
}

function urlOf(spec) {
  const params = new URLSearchParams();
  if (state.view && state.view !== "table") params.set("view", state.view);
  for (const [key, value] of Object.entries(spec)) {
    const name = URL_KEYS[key];
    if (FLAGS.has(key)) params.set(name, "1");
    else if (JSON_KEYS.has(key) && typeof value !== "string") params.set(name, JSON.stringify(value));
    else params.set(name, String(value));
  }
  const query = params.toString();
  return query ? `?${query}` : location.pathname;
}

// After the user changed the view: a new history entry (back returns to the one before);
// ``replace`` while typing, so that each key is not one.
export function remember({replace = false} = {}) {
  const url = urlOf(currentSpec());
  if (url === (location.search || location.pathname)) return;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
}

// The toolbar's controls, set from the state (after a view was applied, or back/forward).
export function syncControls() {
  $("search").value = state.search;
  $("where").value = state.where;
  $("show-checkpoints").checked = state.checkpoints;
  $("show-hidden").checked = state.includeHidden;
  $("show-empty").checked = state.showEmpty;
  const run = $("run-filter");
  if (state.run && ![...run.options].some((o) => o.value === state.run)) run.append(el("option", {value: state.run, text: state.run}));
  run.value = state.run;
  const group = $("group-by");
  if (state.groupBy && ![...group.options].some((o) => o.value === state.groupBy)) {
    group.append(el("option", {value: state.groupBy, text: `group by ${state.groupBy}`}));
  }
  group.value = state.groupBy;
}

// ---------------------------------------------------------------- saved views

// Filled by main.js: reload the table for the state (tabs, pivot, summary).
export const hooks = {reload: async () => {}};

export async function loadSavedViews() {
  const views = await api("/api/items?kind=view");
  state.savedViews = views;
  const select = $("saved-views");
  select.replaceChildren(el("option", {value: "", text: "saved views…"}),
    ...views.map((v) => el("option", {value: String(v.id), text: v.name})));
  select.value = "";
  return views;
}

export async function openSavedView(id) {
  const view = (state.savedViews || []).find((v) => v.id === id);
  if (!view) return;
  takeSpec(view.spec);
  remember();
  await hooks.reload();  // (a run gone since the view was saved: the table says so and shows every run)
}

function problemLine() {
  return el("p", {class: "error", role: "alert"});
}

// "Save view": under a new name, or over the saved view of that name.
export function showSaveView() {
  const name = el("input", {id: "view-name", type: "text", maxlength: "200", "aria-label": "name of the view"});
  const save = el("button", {id: "save-view", text: "Save"});
  const problem = problemLine();
  const submit = async () => {
    const existing = (state.savedViews || []).find((v) => v.name === name.value.trim());
    try {
      await post("/api/items/save", {kind: "view", name: name.value.trim(), spec: currentSpec(),
                                     ...(existing ? {id: existing.id} : {})});
    } catch (error) {
      problem.textContent = error.message;
      return;
    }
    closeModal();
    await loadSavedViews();
  };
  save.addEventListener("click", submit);
  name.addEventListener("keydown", (e) => { if (e.key === "Enter") submit(); });
  openModal("Save this view",
    el("p", {class: "hint", text: "The family, run, filters, toggles, grouping, sort, columns and summary set, saved in " +
      "the registry (everyone reading it sees it). A name already saved is updated."}),
    el("label", {for: "view-name", text: "Name"}), name, save, problem);
  name.focus();
}

// "Manage views": rename, reorder, remove (and restore what was removed).
export async function showManageViews() {
  const problem = problemLine();
  const list = el("ol", {class: "item-list"});
  const removedList = el("ul", {class: "item-list"});
  const act = async (path, body) => {
    try { await post(path, body); } catch (error) { problem.textContent = error.message; return false; }
    await render();
    return true;
  };
  const render = async () => {
    const views = await loadSavedViews();
    const removed = await api("/api/items?kind=view&removed=1");
    list.replaceChildren(...views.map((view, i) => {
      const name = el("input", {type: "text", value: view.name, "aria-label": `name of view ${view.name}`});
      const rename = el("button", {text: "Rename"});
      rename.addEventListener("click", () => act("/api/items/save", {kind: "view", id: view.id, name: name.value.trim(), spec: view.spec}));
      const move = (delta) => {
        const ids = views.map((v) => v.id);
        [ids[i], ids[i + delta]] = [ids[i + delta], ids[i]];
        return act("/api/items/reorder", {kind: "view", ids});
      };
      const up = el("button", {text: "↑", "aria-label": `move ${view.name} up`});
      const down = el("button", {text: "↓", "aria-label": `move ${view.name} down`});
      up.disabled = i === 0;
      down.disabled = i === views.length - 1;
      up.addEventListener("click", () => move(-1));
      down.addEventListener("click", () => move(1));
      const remove = el("button", {text: "Remove"});
      remove.addEventListener("click", () => act("/api/items/remove", {id: view.id}));
      return el("li", {"data-id": String(view.id)}, name, rename, up, down, remove);
    }));
    removedList.replaceChildren(...removed.map((view) => {
      const restore = el("button", {text: "Restore"});
      restore.addEventListener("click", () => act("/api/items/restore", {id: view.id}));
      return el("li", {}, document.createTextNode(`${view.name} `), restore);
    }));
  };
  await render();
  openModal("Saved views", list, el("h3", {text: "Removed"}), removedList, problem);
}
