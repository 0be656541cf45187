// Summary sets: a named set of metrics (across families) averaged per model — the table's
// first column when one is chosen, with the 95% interval where every metric has a standard
// error (lightml.read.summary says how). Saved in the registry (dashboard items of kind
// "summary"); the charts view draws one as a bar chart.
import {$, el, api, post, openModal, closeModal, state, naturalCompare} from "./core.js";
import {remember} from "./views.js";

export async function loadSummarySets() {
  const sets = await api("/api/items?kind=summary");
  state.summarySets = sets;
  const select = $("summary-set");
  select.replaceChildren(el("option", {value: "", text: "no summary column"}),
    ...sets.map((s) => el("option", {value: String(s.id), text: `Σ ${s.name}`})));
  if (state.summary && !sets.some((s) => s.id === state.summary.id)) state.summary = null;  // removed meanwhile
  select.value = state.summary ? String(state.summary.id) : "";
  return sets;
}

// The chosen set's averages (state.summary.byId: model id -> its row), or none.
export async function loadSummary() {
  if (!state.summary) return;
  const {id} = state.summary;
  let answer;
  try {
    answer = await api(`/api/summary?id=${id}${state.includeHidden ? "&include_hidden=1" : ""}`);
  } catch (error) {
    state.summary = null;  // (gone: removed by someone else)
    $("summary-set").value = "";
    return;
  }
  if (!state.summary || state.summary.id !== id) return;  // another set was chosen meanwhile
  state.summary = {id, name: answer.name, metrics: answer.metrics, byId: new Map(answer.rows.map((r) => [r.id, r]))};
}

// Create or edit a set: a name and the metrics, picked from every family's columns.
export async function showSummaryEditor(existing = null) {
  const overview = await api("/api/pivot");
  const columns = overview.columns.slice().sort((a, b) => naturalCompare(a.family, b.family) || naturalCompare(a.metric, b.metric));
  const chosen = new Set((existing ? existing.spec.metrics : []).map((m) => m.join("\u0000")));
  const name = el("input", {id: "summary-name", type: "text", maxlength: "200", value: existing ? existing.name : ""});
  const filter = el("input", {id: "summary-filter", type: "search", placeholder: "filter metrics…", "aria-label": "filter the metrics"});
  const list = el("div", {class: "metric-picker"});
  const boxes = columns.map((c, i) => {
    const key = `${c.family}\u0000${c.metric}`;
    const box = el("input", {type: "checkbox", id: `summary-metric-${i}`, "data-key": key});
    box.checked = chosen.has(key);
    const label = el("label", {for: `summary-metric-${i}`, class: "metric-choice"}, box,
      document.createTextNode(` ${c.family} / ${c.metric}`));
    list.append(label);
    return {box, label, text: `${c.family}/${c.metric}`.toLowerCase(), pair: [c.family, c.metric]};
  });
  filter.addEventListener("input", () => {
    const needle = filter.value.toLowerCase();
    for (const b of boxes) b.label.hidden = Boolean(needle) && !b.text.includes(needle);
  });
  const problem = el("p", {class: "error", role: "alert"});
  const save = el("button", {id: "save-summary", text: existing ? "Save changes" : "Save set"});
  save.addEventListener("click", async () => {
    const metrics = boxes.filter((b) => b.box.checked).map((b) => b.pair);
    let saved;
    try {
      saved = await post("/api/items/save", {kind: "summary", name: name.value.trim(), spec: {metrics},
                                             ...(existing ? {id: existing.id} : {})});
    } catch (error) {
      problem.textContent = error.message;
      return;
    }
    closeModal();
    state.summary = {id: saved.id, name: "", byId: null};
    remember();  // (the new column is in the URL, as one chosen from the list is)
    await Promise.all([loadSummarySets(), hooks.reload()]);
  });
  openModal(existing ? `Summary set ${existing.name}` : "New summary set",
    el("p", {class: "hint", text: "The mean of these metrics per model (of those it has), with a 95% interval when every " +
      "one has a standard error (logged, or from per-sample scores). Saved in the registry."}),
    el("label", {for: "summary-name", text: "Name"}), name, filter, list, save, problem);
  name.focus();
}

// The sets, to edit or remove.
export async function showManageSummaries() {
  const problem = el("p", {class: "error", role: "alert"});
  const list = el("ul", {class: "item-list"});
  const render = async () => {
    const sets = await loadSummarySets();
    list.replaceChildren(...sets.map((set) => {
      const edit = el("button", {text: "Edit"});
      edit.addEventListener("click", () => showSummaryEditor(set));
      const remove = el("button", {text: "Remove"});
      remove.addEventListener("click", async () => {
        try { await post("/api/items/remove", {id: set.id}); } catch (error) { problem.textContent = error.message; return; }
        if (state.summary && state.summary.id === set.id) { state.summary = null; await hooks.reload(); }
        await render();
      });
      return el("li", {}, document.createTextNode(`${set.name} (${set.spec.metrics.length} metrics) `), edit, remove);
    }));
  };
  await render();
  const create = el("button", {id: "new-summary", text: "New summary set"});
  create.addEventListener("click", () => showSummaryEditor());
  openModal("Summary sets", list, create, problem);
}

// Filled by main.js: reload the table.
export const hooks = {reload: async () => {}};
