// "Columns…": which metric columns the table shows (all unless some are picked), kept in the
// URL and in saved views like the rest of the view.
import {el, openModal, state, naturalCompare} from "./core.js";
import {columnKey} from "./table.js";

export function showColumnChooser(changed) {
  const columns = (state.fullPivot ? state.fullPivot.columns : []).slice()
    .sort((a, b) => naturalCompare(a.family, b.family) || naturalCompare(a.metric, b.metric));
  const shown = (c) => !state.columns || state.columns.has(columnKey(c));
  const filter = el("input", {id: "columns-filter", type: "search", placeholder: "filter columns…", "aria-label": "filter the columns"});
  const boxes = columns.map((c, i) => {
    const box = el("input", {type: "checkbox", id: `column-${i}`});
    box.checked = shown(c);
    const label = el("label", {for: `column-${i}`, class: "metric-choice"}, box, document.createTextNode(` ${c.family} / ${c.metric}`));
    return {c, box, label, text: `${c.family}/${c.metric}`.toLowerCase()};
  });
  const apply = () => {
    const picked = boxes.filter((b) => b.box.checked);
    // Every column of the family ticked: no choice (a column logged later shows up too).
    state.columns = picked.length === boxes.length ? null : new Set(picked.map((b) => columnKey(b.c)));
    changed();
  };
  for (const b of boxes) b.box.addEventListener("change", apply);
  filter.addEventListener("input", () => {
    const needle = filter.value.toLowerCase();
    for (const b of boxes) b.label.hidden = Boolean(needle) && !b.text.includes(needle);
  });
  const all = el("button", {id: "columns-all", text: "All"});
  const none = el("button", {id: "columns-none", text: "None"});
  all.addEventListener("click", () => { for (const b of boxes) b.box.checked = true; apply(); });
  none.addEventListener("click", () => { for (const b of boxes) if (!b.label.hidden) b.box.checked = false; apply(); });
  openModal("Columns", el("p", {class: "hint", text: "The metric columns the table shows (of the tab open now)."}),
    el("div", {class: "edit-actions"}, filter, all, none), el("div", {class: "metric-picker"}, ...boxes.map((b) => b.label)));
}
