// The modals: compare two models, the flips of a metric, a value's history, editing a model.
import {$, el, api, post, fmt, openModal, closeModal, withSpread, state} from "./core.js";
import {modelOf} from "./table.js";
import {refresh} from "./main.js";

export async function showCompare() {
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
// The first 100 are listed; "list up to 1,000" asks for more (the CLI's --json gives them all).
export async function showFlips(a, b, family, metric, limit = 100) {
  const params = new URLSearchParams({a: a.model, b: b.model, family, metric, limit: String(limit)});
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
  const more = result.flips.length < result.flipped && limit < 1000
    ? el("button", {id: "more-flips", text: `List up to 1,000`}) : null;
  if (more) more.addEventListener("click", () => showFlips(a, b, family, metric, 1000));
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
  openModal(title, back, summary, more, table, ...[...notes].map((note) => el("p", {class: "note", text: `Texts: ${note}`})));
  document.body.dataset.flipsShown = String(result.flips.length);  // (for the benchmark: drawn)
}

export async function showHistory(row, column) {
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

export function editButton(row) {
  const title = row.notes ? `notes: ${row.notes}` : "edit notes, hide";
  const button = el("button", {class: "edit", text: "✎", title});
  button.addEventListener("click", () => showEdit(row));
  return button;
}

// The model's editor: notes, hide, rename, parent, delete. Each change is one event with
// origin "web" (undone by the opposite edit; a delete by a restore). A refusal (a name taken,
// a cycle, a locked or read-only registry) is shown here and the modal stays open.
export function showEdit(given) {
  // (the lineage's panel gives the model's name, run, notes and hidden flag: its table row has the rest)
  const row = (state.fullPivot ? state.fullPivot.rows : []).find((r) => r.step == null && r.model === given.model
    && r.run === given.run) || given;
  const problem = el("p", {id: "edit-error", class: "error", role: "alert"});
  const done = el("p", {id: "edit-done", class: "hint", role: "status"});
  const change = async (path, body, after) => {
    let answer;
    try {
      answer = await post(path, {model: row.model, run: row.run, ...body});
    } catch (error) {
      problem.textContent = error.message;
      return null;
    }
    if (after) after(answer); else closeModal();
    await refresh();
    return answer;
  };
  const notes = el("textarea", {id: "edit-notes", rows: "5", cols: "60"});
  notes.value = row.notes ?? "";
  const save = el("button", {id: "save-notes", text: "Save notes"});
  const toggle = el("button", {id: "toggle-hidden", text: row.hidden ? "Unhide" : "Hide"});
  save.addEventListener("click", () => change("/api/notes", {notes: notes.value}));
  toggle.addEventListener("click", () => change("/api/hidden", {hidden: !row.hidden}));
  const hint = row.hidden ? "Hidden: left out of listings, export and the dashboard unless asked for."
    : "Hiding leaves the model out of listings, export and the dashboard (tick \"hidden\" to see it again).";

  const name = el("input", {id: "edit-name", type: "text", value: row.model});
  const rename = el("button", {id: "rename-model", text: "Rename"});
  rename.addEventListener("click", () => change("/api/rename", {name: name.value}));

  // The parent, from a list of the models (natural order); the lineage panel can pick one in the graph.
  const parent = el("select", {id: "edit-parent"}, el("option", {value: "", text: "(no parent)"}));
  const models = (state.fullPivot ? state.fullPivot.rows : []).filter((r) => r.step == null && r.id !== row.id);
  for (const m of models) parent.append(el("option", {value: String(m.id), text: m.run ? `${m.model} (${m.run})` : m.model}));
  parent.value = row.parent_id == null ? "" : String(row.parent_id);
  const setParent = el("button", {id: "set-parent", text: "Set parent"});
  setParent.addEventListener("click", () => {
    const chosen = models.find((m) => String(m.id) === parent.value);
    change("/api/parent", chosen ? {parent: chosen.model, parent_run: chosen.run} : {parent: null});
  });

  // A delete asks for the name typed again (the CLI asks y/N); the answer says how to undo it.
  const confirm = el("input", {id: "delete-confirm", type: "text", placeholder: row.model, "aria-label": "type the model's name to delete it"});
  const remove = el("button", {id: "delete-model", class: "danger", text: "Delete"});
  remove.disabled = true;
  confirm.addEventListener("input", () => { remove.disabled = confirm.value !== row.model; });
  remove.addEventListener("click", () => change("/api/delete", {confirm: confirm.value}, (answer) => {
    const undo = el("button", {id: "undo-delete", text: "Undo (restore it)"});
    undo.addEventListener("click", () => change("/api/restore", {}));
    $("modal-body").replaceChildren(el("p", {text: answer.deleted}), el("p", {class: "hint", text: answer.restore}), undo, problem);
  }));

  openModal(`Edit ${row.model}${row.run ? ` (${row.run})` : ""}`,
    el("label", {for: "edit-notes", text: "Notes"}), notes,
    el("div", {class: "edit-actions"}, save, toggle), el("p", {class: "hint", text: hint}),
    el("h3", {text: "Name"}), el("div", {class: "edit-actions"}, el("label", {for: "edit-name", class: "sr-only", text: "New name"}), name, rename),
    el("h3", {text: "Parent"}), el("div", {class: "edit-actions"}, el("label", {for: "edit-parent", class: "sr-only", text: "Parent"}), parent, setParent),
    el("h3", {text: "Delete"}),
    el("p", {class: "hint", text: "Removes the model with its checkpoints and metrics from the tables; the log keeps " +
      "everything and a restore brings it back. Type its name to delete it."}),
    el("div", {class: "edit-actions"}, confirm, remove), done, problem);
  notes.focus();
}

// The deleted models (not restored since), each with a Restore button.
export async function showDeleted() {
  const problem = el("p", {class: "error", role: "alert"});
  let deleted;
  try { deleted = await api("/api/deleted"); } catch (error) { openModal("Deleted models", el("p", {text: error.message})); return; }
  const list = el("table", {class: "deleted"}, el("tr", {}, ...["model", "run", "deleted (UTC)", ""].map((h) => el("th", {text: h}))));
  for (const d of deleted) {
    const restore = el("button", {text: "Restore", "aria-label": `restore ${d.model}`});
    restore.addEventListener("click", async () => {
      try { await post("/api/restore", {model: d.model, run: d.run}); } catch (error) { problem.textContent = error.message; return; }
      await refresh();
      await showDeleted();
    });
    list.append(el("tr", {}, el("td", {text: d.model}), el("td", {text: d.run ?? ""}),
      el("td", {text: d.at.replace("T", " ").replace("Z", "")}), el("td", {}, restore)));
  }
  openModal("Deleted models", deleted.length ? list : el("p", {text: "No deleted model to restore."}), problem);
}
