// The page's entry point: live updates, switching views, wiring the controls.
import {$, api, state} from "./core.js";
import {loadFamilies, loadRuns, loadPivot, showPivot, applyFilter, syncSelection, renderWindow} from "./table.js";
import {showCompare} from "./details.js";
import {loadLineage, renderGraph, highlightGraph, setupPanZoom} from "./graph.js";
import {loadCurveMetrics, loadCurves} from "./curves.js";

export async function poll() {
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

export async function refresh() {
  // Reload the data under the current view; sort, filters and selection are kept in `state`.
  await Promise.all([loadFamilies(), loadRuns(), loadPivot()]);
  if (state.view === "graph") await loadLineage();
  if (state.view === "curves") await loadCurves();
}

// ---------------------------------------------------------------- wiring

export function showView(view) {
  state.view = view;
  document.querySelectorAll(".view-tab").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  for (const name of ["table", "graph", "curves"]) $(`view-${name}`).hidden = name !== view;
  if (view === "graph") loadLineage();
  if (view === "curves") loadCurveMetrics();
}

export function wire() {
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

export async function start() {
  wire();
  await Promise.all([loadFamilies(), loadRuns()]);
  await loadPivot();
  document.body.dataset.ready = "1";  // for tests and the benchmark: the page is interactive
  poll();
}

start();
