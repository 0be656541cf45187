// The page's entry point: live updates, switching views, wiring the controls.
import {$, api, closeModal, state} from "./core.js";
import {loadFamilies, loadRuns, loadPivot, showPivot, applyFilter, syncSelection, renderWindow} from "./table.js";
import {showCompare, showDeleted} from "./details.js";
import {loadDisplay, showDisplaySettings} from "./display.js";
import {showColumnChooser} from "./columns.js";
import {hooks as viewHooks, loadSavedViews, openSavedView, remember, showManageViews, showSaveView, specFromUrl,
        syncControls, takeSpec, viewFromUrl} from "./views.js";
import {hooks as summaryHooks, loadSummary, loadSummarySets, showManageSummaries} from "./summary.js";
import {loadLineage, renderGraph, highlightGraph, setupPanZoom} from "./graph.js";
import {loadCurveMetrics, loadCurves} from "./curves.js";
import {loadCharts} from "./charts.js";

export async function poll() {
  try {
    const feed = await api(`/api/events?after=${state.lastSeq}`);
    $("live").classList.remove("stale");
    $("live").textContent = "● live";
    if (feed.last > state.lastSeq) {
      const first = state.lastSeq === 0;
      state.lastSeq = feed.last;
      if (!first) await refresh();
    }
  } catch (error) {
    $("live").classList.add("stale");
    $("live").textContent = "● offline";  // (said in words too: not by colour alone)
  }
  setTimeout(poll, 1000);
}

export async function refresh() {
  // Reload the data under the current view; sort, filters and selection are kept in `state`.
  await Promise.all([loadFamilies(), loadRuns(), loadSavedViews(), loadSummarySets().then(loadSummary), loadPivot()]);
  showPivot();  // (with the summary column as now reloaded)
  if (state.view === "graph") await loadLineage();
  if (state.view === "curves") await loadCurves();
  if (state.view === "charts") await loadCharts();
}

// The table again for the state as it now is (a saved view applied, back or forward).
async function reloadTable() {
  await Promise.all([loadFamilies(), loadSummary(), loadPivot()]);
  if ($("summary-set").value !== (state.summary ? String(state.summary.id) : "")) {
    $("summary-set").value = state.summary ? String(state.summary.id) : "";
  }
}

// ---------------------------------------------------------------- wiring

export function showView(view, {push = true} = {}) {
  state.view = view;
  document.querySelectorAll(".view-tab").forEach((b) => {
    b.classList.toggle("active", b.dataset.view === view);
    b.setAttribute("aria-pressed", String(b.dataset.view === view));
  });
  for (const name of ["table", "graph", "curves", "charts"]) $(`view-${name}`).hidden = name !== view;
  if (push) remember();
  if (view === "graph") loadLineage();
  if (view === "curves") loadCurveMetrics();
  if (view === "charts") loadCharts();
}

// A change of the table's state by the user: remembered in the URL, then the table updated.
function changed(update, {replace = false} = {}) {
  return (event) => {
    const then = update(event);
    remember({replace});
    return then;
  };
}

export function wire() {
  document.querySelectorAll(".view-tab").forEach((b) => b.addEventListener("click", () => showView(b.dataset.view)));
  // Typing: the first key of a burst is a new history entry, the rest replace it (back returns
  // to before the search, not to each letter); a pause of a second, or leaving the field, ends it.
  let typing = null;
  $("search").addEventListener("input", (e) => {
    state.search = e.target.value;
    applyFilter();
    remember({replace: typing !== null});
    clearTimeout(typing);
    typing = setTimeout(() => { typing = null; }, 1000);
  });
  $("search").addEventListener("blur", () => { clearTimeout(typing); typing = null; });
  $("where").addEventListener("keydown", (e) => {
    if (e.key === "Enter") changed(() => { state.where = e.target.value.trim(); return loadPivot(); })();
  });
  $("where").addEventListener("search", (e) => {  // (the clear button of a search field)
    if (!e.target.value) changed(() => { state.where = ""; return loadPivot(); })();
  });
  document.querySelector(".table-wrap").addEventListener("scroll", () => requestAnimationFrame(renderWindow));
  $("run-filter").addEventListener("change", changed((e) => { state.run = e.target.value; return loadPivot(); }));
  $("show-checkpoints").addEventListener("change", changed((e) => { state.checkpoints = e.target.checked; return loadPivot(); }));
  $("show-hidden").addEventListener("change", changed((e) => {
    state.includeHidden = e.target.checked;
    return Promise.all([loadSummary(), loadPivot()]);
  }));
  $("show-empty").addEventListener("change", changed((e) => { state.showEmpty = e.target.checked; applyFilter(); }));
  $("group-by").addEventListener("change", changed((e) => { state.groupBy = e.target.value; showPivot(); }));
  $("summary-set").addEventListener("change", changed(async (e) => {
    state.summary = e.target.value ? {id: Number(e.target.value), name: "", byId: null} : null;
    await loadSummary();
    showPivot();
  }));
  $("summary-sets").addEventListener("click", showManageSummaries);
  $("saved-views").addEventListener("change", (e) => { if (e.target.value) openSavedView(Number(e.target.value)); });
  $("save-view-button").addEventListener("click", showSaveView);
  $("manage-views").addEventListener("click", showManageViews);
  $("choose-columns").addEventListener("click", () => showColumnChooser(changed(() => showPivot())));
  $("display-settings").addEventListener("click", () => showDisplaySettings(() => showPivot()));
  $("show-deleted").addEventListener("click", showDeleted);
  $("graph-search").addEventListener("input", highlightGraph);
  $("graph-checkpoints").addEventListener("change", (e) => { state.graph.showCheckpoints = e.target.checked; renderGraph(); });
  $("curve-family").addEventListener("change", loadCurveMetrics);
  $("curve-metric").addEventListener("change", loadCurves);
  $("filter-selected").addEventListener("click", () => { state.onlySelected = !state.onlySelected; syncSelection(); });
  $("compare-selected").addEventListener("click", showCompare);
  $("clear-selected").addEventListener("click", () => { state.selected.clear(); state.onlySelected = false; syncSelection(); });
  $("modal-close").addEventListener("click", () => { closeModal(); });
  $("modal").addEventListener("click", (e) => { if (e.target === $("modal")) closeModal(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeModal(); });
  // Back and forward: the view the URL names, without a new history entry.
  window.addEventListener("popstate", async () => {
    takeSpec(specFromUrl());
    showView(viewFromUrl(), {push: false});
    await reloadTable();
  });
  viewHooks.reload = reloadTable;
  summaryHooks.reload = reloadTable;
  setupPanZoom();
}

export async function start() {
  loadDisplay();
  wire();
  takeSpec(specFromUrl());  // a shared link opens the view it names
  try {
    await Promise.all([loadFamilies(), loadRuns(), loadSavedViews(), loadSummarySets()]);
    syncControls();
    await loadSummary();
    await loadPivot();
    const view = viewFromUrl();
    if (view !== "table") showView(view, {push: false});
  } finally {
    // (whatever failed says so where it failed; the page stays live, and the next change reloads it)
    document.body.dataset.ready = "1";  // for tests and the benchmark: the page is interactive
    poll();
  }
}

start();
