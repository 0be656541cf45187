// Display settings: how the table shows what it shows (decimals, percent, colour scale, row
// density, the frozen model column, compact names, the run tag, family colours). Kept in this
// browser's storage (they are one reader's taste, not the registry's data), read once at start.
import {$, el, openModal, own, state, STRONG_COLORS} from "./core.js";

const STORAGE_KEY = "lightml.display";
const DEFAULTS = {
  decimals: 4,          // 0..8
  percent: false,       // values of 0..1 columns as percentages
  scale: "absolute",    // "absolute": best and worst per column; "parent" / "baseline": each value against that model's
  baseline: null,       // the baseline model's id (scale "baseline")
  density: "normal",    // "compact" | "normal" | "comfortable"
  frozen: true,         // the select and Model columns stay in view when the table scrolls sideways
  compactNames: false,  // "org/model-name" shown as "model-name" (the full name on hover)
  runTag: false,        // the run after each model's name
  familyColors: {},     // family -> "#rrggbb" chosen here (else the palette's)
};
export const ROW_HEIGHTS = {compact: 22, normal: 26, comfortable: 34};
// Family colours, for the header bands of the overview and the tabs (a tab names its family).
const FAMILY_PALETTE = STRONG_COLORS;

export const display = {...DEFAULTS};

// What a stored setting may be: anything else (an older page's, or edited by hand) falls back
// to the default, so a bad entry in storage never breaks the page.
const VALID = {
  decimals: (v) => Number.isInteger(v) && v >= 0 && v <= 8,
  percent: (v) => typeof v === "boolean",
  scale: (v) => ["absolute", "parent", "baseline"].includes(v),
  baseline: (v) => v === null || Number.isInteger(v),
  density: (v) => Object.hasOwn(ROW_HEIGHTS, v),
  frozen: (v) => typeof v === "boolean",
  compactNames: (v) => typeof v === "boolean",
  runTag: (v) => typeof v === "boolean",
  familyColors: (v) => v !== null && typeof v === "object" && !Array.isArray(v)
    && Object.values(v).every((c) => typeof c === "string" && /^#[0-9a-f]{6}$/i.test(c)),
};

export function loadDisplay() {
  let stored = {};
  try { stored = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}") || {}; } catch { stored = {}; }
  for (const key of Object.keys(DEFAULTS)) {
    display[key] = Object.hasOwn(stored, key) && VALID[key](stored[key]) ? stored[key] : structuredClone(DEFAULTS[key]);
  }
  applyDisplayStyle();
}

function saveDisplay() {
  try { localStorage.setItem(STORAGE_KEY, JSON.stringify(display)); } catch { /* storage full or disabled: kept for this page */ }
}

export function rowHeight() {
  return ROW_HEIGHTS[display.density];
}

// What does not need the table rebuilt: row height and the frozen columns, as CSS.
function applyDisplayStyle() {
  document.documentElement.style.setProperty("--row-height", `${rowHeight()}px`);
  $("pivot").classList.toggle("unfrozen", !display.frozen);
  for (const density of Object.keys(ROW_HEIGHTS)) $("pivot").classList.toggle(`density-${density}`, display.density === density);
}

export function familyColor(family, families) {
  const chosen = own(display.familyColors, family);
  if (chosen) return chosen;
  const i = Math.max(0, families.indexOf(family));
  return FAMILY_PALETTE[i % FAMILY_PALETTE.length];
}

// A value as the table shows it: the decimals chosen, as a percentage in a 0..1 column if asked.
export function formatValue(value, fraction = false) {
  if (value == null) return "—";
  const number = Number(value);
  if (display.percent && fraction) return `${(number * 100).toFixed(Math.max(0, display.decimals - 2))}%`;
  return number.toFixed(display.decimals);
}

// A difference: in percentage points for a 0..1 column shown as %; else with at least 4
// decimals (a difference is often far smaller than the values it separates).
export function formatDelta(delta, fraction = false) {
  if (display.percent && fraction) return `${(delta * 100).toFixed(Math.max(1, display.decimals - 2))} points`;
  return delta.toFixed(Math.max(4, display.decimals));
}

// A model's name as the table shows it (compact: the part after the organisation).
export function shownName(name) {
  if (!display.compactNames) return name;
  const cut = name.lastIndexOf("/");
  return cut > 0 && cut < name.length - 1 ? name.slice(cut + 1) : name;
}

// The display settings' modal; `changed` redraws the table after a change.
export function showDisplaySettings(changed) {
  const families = state.familyNames || [];
  const field = (id, label, input) => el("div", {class: "setting"}, el("label", {for: id, text: label}), input);
  const decimals = el("input", {id: "set-decimals", type: "number", min: "0", max: "8", value: String(display.decimals)});
  const percent = checkbox("set-percent", display.percent);
  const scale = el("select", {id: "set-scale"},
    el("option", {value: "absolute", text: "absolute: best and worst of each column"}),
    el("option", {value: "parent", text: "relative to each model's parent"}),
    el("option", {value: "baseline", text: "relative to a baseline model"}));
  scale.value = display.scale;
  const baseline = el("select", {id: "set-baseline"}, el("option", {value: "", text: "(choose the baseline)"}),
    ...(state.fullPivot ? state.fullPivot.rows.filter((r) => r.step == null) : []).map((r) =>
      el("option", {value: String(r.id), text: r.run ? `${r.model} (${r.run})` : r.model})));
  baseline.value = display.baseline == null ? "" : String(display.baseline);
  const density = el("select", {id: "set-density"},
    ...Object.keys(ROW_HEIGHTS).map((d) => el("option", {value: d, text: d})));
  density.value = display.density;
  const frozen = checkbox("set-frozen", display.frozen);
  const compact = checkbox("set-compact", display.compactNames);
  const runTag = checkbox("set-run-tag", display.runTag);
  const colors = families.map((family, i) => {
    const input = el("input", {id: `set-family-${i}`, type: "color", value: familyColor(family, families),
      "data-family": family, "aria-label": `colour of family ${family}`});
    return el("div", {class: "setting"}, input, el("span", {text: family}));
  });
  const apply = () => {
    const d = Number(decimals.value);
    display.decimals = Number.isInteger(d) && d >= 0 && d <= 8 ? d : display.decimals;
    display.percent = percent.checked;
    display.scale = scale.value;
    display.baseline = baseline.value === "" ? null : Number(baseline.value);
    display.density = density.value;
    display.frozen = frozen.checked;
    display.compactNames = compact.checked;
    display.runTag = runTag.checked;
    display.familyColors = Object.fromEntries(colors.map((c) => [c.firstChild.dataset.family, c.firstChild.value]));
    saveDisplay();
    applyDisplayStyle();
    changed();
  };
  const reset = el("button", {id: "reset-display", text: "Reset to defaults"});
  reset.addEventListener("click", () => {
    Object.assign(display, structuredClone(DEFAULTS));
    saveDisplay();
    applyDisplayStyle();
    changed();
    showDisplaySettings(changed);
  });
  for (const input of [decimals, percent, scale, baseline, density, frozen, compact, runTag, ...colors.map((c) => c.firstChild)]) {
    input.addEventListener("change", apply);
  }
  openModal("Display settings",
    el("p", {class: "hint", text: "Kept in this browser; the registry is not changed."}),
    field("set-decimals", "Decimals", decimals),
    field("set-percent", "Show values of 0–1 columns as %", percent),
    field("set-scale", "Colour scale", scale),
    field("set-baseline", "Baseline model", baseline),
    field("set-density", "Row density", density),
    field("set-frozen", "Keep the model column in view", frozen),
    field("set-compact", "Compact names (without the organisation)", compact),
    field("set-run-tag", "Run tag after each name", runTag),
    ...(colors.length ? [el("h3", {text: "Family colours"}), ...colors] : []),
    reset);
}

function checkbox(id, checked) {
  const box = el("input", {id, type: "checkbox"});
  box.checked = checked;
  return box;
}
