// meshctx topology viewer: a form validated live by POST /v1/validate and the planned mesh drawn on a canvas.
// Native ES modules, no build step; this one wires them together once the form's fields are built from the
// library's tables (/ui/meta.json).
import { fetchMeta } from "./api.js";
import { clearPatterns, redraw, styleOf } from "./canvas.js";
import { rankView, showDetails } from "./details.js";
import { $, canvas, form } from "./dom.js";
import { detectFeatures } from "./features.js";
import { buildFields } from "./fields.js";
import { loadBody, mode, readUrl, setMode } from "./form.js";
import { cellRect, layoutGrid } from "./grid.js";
import { loadJobs, useToken } from "./jobs.js";
import { allGroups } from "./layout.js";
import { setPlan } from "./mesh.js";
import { axisPartition, exists, positionOf, rankAt } from "./plan.js";
import { addMessageBoxes } from "./problems.js";
import { setupPhysical } from "./physical.js";
import { onKey, pointerRank, select } from "./selection.js";
import { state } from "./state.js";
import { scheduleValidate, setVerdict, validateNow } from "./validate.js";

/** A registered job's request, opened in the form. */
function openJob(request) {
  loadBody(request);
  state.selected = null;
  validateNow();
}

function wire() {
  form.addEventListener("input", (event) => {
    if (event.target.id === "f-token") return;
    if (event.target.name === "world_mode") setMode(mode());
    scheduleValidate();
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); validateNow(); });
  canvas.addEventListener("mousemove", (event) => {
    const rank = pointerRank(event);
    if (rank === state.hover) return;
    state.hover = rank;
    redraw();
    if (state.selected === null) showDetails(rank);
  });
  canvas.addEventListener("mouseleave", () => {
    state.hover = null;
    redraw();
    if (state.selected === null) showDetails(null);
  });
  canvas.addEventListener("click", (event) => {
    const rank = pointerRank(event);
    select(rank === state.selected ? null : rank);
    canvas.focus();
  });
  canvas.addEventListener("keydown", onKey);
  $("#blocks").addEventListener("pick", (event) => select(event.detail));
  $("#f-goto").addEventListener("change", (event) => {
    const rank = Number(event.target.value);
    if (state.plan && Number.isInteger(rank) && exists(rank) !== null) select(rank);
  });
  $("#jobs [data-action=load-jobs]").addEventListener("click", () => loadJobs(openJob));
  $("#jobs [data-action=save-token]").addEventListener("click", () => useToken(openJob));
  window.addEventListener("resize", () => { if (state.plan) { layoutGrid(); redraw(); } });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { clearPatterns(); redraw(); });
  window.addEventListener("hashchange", () => {
    // The URL now names another topology: the mesh on screen no longer matches the form until it is checked.
    if (readUrl()) {
      setVerdict("pending", "Checking…");
      setPlan(null, undefined, "Checking the topology named in the URL…");
    }
    validateNow();
  });
}

async function init() {
  detectFeatures(); // concurrently: the optional panels appear when the OpenAPI document arrives
  let meta;
  try {
    meta = await fetchMeta();
  } catch (error) {
    setVerdict("error", `Could not load the form's fields: ${error.message}`);
    return;
  }
  buildFields(meta);
  addMessageBoxes();
  readUrl();
  wire();
  setupPhysical();
  validateNow();
}

// A small read-only window onto the viewer for tests and the browser console.
window.meshViewer = {
  get plan() { return state.plan; },
  get axis() { return state.axis; },
  get selected() { return state.selected; },
  get view() { return state.view && { ...state.view }; },
  /** Every group of `axis` as global ranks (MeshPlan.groups). */
  groups(axis = state.axis) {
    const plan = state.plan;
    return allGroups(plan.layouts[axis], plan.world_size).map((group) => group.map((p) => rankAt(plan, p)));
  },
  groupOf(rank, axis = state.axis) { return axisPartition(axis).ord[positionOf(state.plan, rank)]; },
  styleOf,
  cellRect,
  rankView,
  select: (rank) => select(rank),
};

init();
