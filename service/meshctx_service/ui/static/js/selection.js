// Choosing a GPU: hover, click, the keyboard (arrows move between GPUs as drawn) and "Inspect rank".
import { redraw } from "./canvas.js";
import { listText, rankView, showDetails } from "./details.js";
import { $, canvas } from "./dom.js";
import { writeUrl } from "./form.js";
import { cellRect, hitTest } from "./grid.js";
import { exists } from "./plan.js";
import { state } from "./state.js";

const KEYS = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"];

/** The rank under the pointer, or null. */
export function pointerRank(event) {
  const rect = canvas.getBoundingClientRect();
  return hitTest(event.clientX - rect.left, event.clientY - rect.top);
}

/** Make `rank` the sticky selection (null: none) and announce it to screen readers. */
export function select(rank, announce = true) {
  state.selected = rank;
  writeUrl();
  redraw();
  showDetails(rank);
  const view = announce && rank !== null ? rankView(rank) : null;
  if (view) {
    $("#grid-announce").textContent = `Rank ${rank}, node ${view.node}, local rank ${view.local_rank}, ${state.axis} group: ${listText(view.groups[state.axis])}`;
  }
}

function neighbour(rank, key) {
  const v = state.view;
  const total = v.slots;
  if (key === "ArrowLeft") return Math.max(0, rank - 1);
  if (key === "ArrowRight") return Math.min(total - 1, rank + 1);
  if (key === "Home") return 0;
  if (key === "End") return total - 1;
  if (key === "PageUp") return Math.max(0, rank - v.gpn);
  if (key === "PageDown") return Math.min(total - 1, rank + v.gpn);
  // Up/Down: the GPU drawn directly above/below, found by walking the picture.
  const r = cellRect(rank);
  const dir = key === "ArrowUp" ? -1 : 1;
  const step = Math.max(2, Math.floor(v.cell / 2));
  for (let dy = v.cell; dy < (v.boxH + v.gap) * 2; dy += step) {
    const hit = hitTest(r.x + r.w / 2, r.y + r.h / 2 + dir * dy);
    if (hit !== null && hit !== rank) return hit;
  }
  return rank;
}

export function onKey(event) {
  if (!state.plan || !state.view || state.view.blocks) return;
  const current = state.selected ?? state.hover;
  if (KEYS.includes(event.key)) {
    event.preventDefault();
    const next = current === null ? 0 : neighbour(current, event.key);
    if (exists(next) !== null) select(next);
  } else if (event.key === "Escape") {
    select(null, false);
    showDetails(state.hover);
  } else if ((event.key === "Enter" || event.key === " ") && current === null) {
    event.preventDefault();
    select(0);
  }
}
