// Painting the grid: every GPU (or node) in its group's colour and pattern along the chosen axis, NVLink domains
// outlined, and the hovered or selected GPU's group highlighted.
import { drawBlocks } from "./blocks.js";
import { canvas } from "./dom.js";
import { MAX_GPU_CELLS, cellRect, nodeBox } from "./grid.js";
import { axisPartition, groupMembers, positionOf, rankAt } from "./plan.js";
import { state } from "./state.js";

// Okabe–Ito, black swapped for grey so it reads on both themes; groups past 8 add a pattern.
const PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"];
const PATTERNS = ["solid", "stripes", "dots", "cross"];

/** Colour and pattern of group ordinal g. */
export function styleOf(g) {
  return { colour: PALETTE[g % PALETTE.length], pattern: PATTERNS[Math.floor(g / PALETTE.length) % PATTERNS.length] };
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const patternCache = new Map();
/** Forget the pattern tiles (their ink follows the colour scheme). */
export const clearPatterns = () => patternCache.clear();

function patternFor(ctx, kind, ink) {
  const key = `${kind}${ink}`;
  if (!patternCache.has(key)) {
    const tile = document.createElement("canvas");
    tile.width = tile.height = 8;
    const t = tile.getContext("2d");
    t.strokeStyle = t.fillStyle = ink;
    t.lineWidth = 1.5;
    if (kind === "stripes") { t.beginPath(); t.moveTo(0, 8); t.lineTo(8, 0); t.stroke(); }
    if (kind === "dots") { t.beginPath(); t.arc(4, 4, 1.6, 0, 2 * Math.PI); t.fill(); }
    if (kind === "cross") { t.beginPath(); t.moveTo(0, 4); t.lineTo(8, 4); t.moveTo(4, 0); t.lineTo(4, 8); t.stroke(); }
    patternCache.set(key, ctx.createPattern(tile, "repeat"));
  }
  return patternCache.get(key);
}

export function draw() {
  const plan = state.plan;
  const v = state.view;
  if (!plan || !v) return;
  const t0 = performance.now();
  canvas.dataset.axis = state.axis;
  if (v.blocks) {
    drawBlocks();
    return;
  }
  const ctx = canvas.getContext("2d");
  const ratio = canvas.width / (parseFloat(canvas.style.width) || 1);
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = cssVar("--canvas-bg");
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const ink = cssVar("--ink");
  const muted = cssVar("--muted");
  const part = axisPartition(state.axis);
  // NVLink domains: an outline around each run of nodes that shares one.
  if (v.nodesPerDomain > 1) {
    ctx.strokeStyle = muted;
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 1.5;
    for (let first = 0; first < v.nodes; first += v.nodesPerDomain) {
      const a = nodeBox(first);
      const b = nodeBox(Math.min(v.nodes, first + v.nodesPerDomain) - 1);
      const w = v.boxW;
      const h = v.boxH;
      ctx.strokeRect(Math.min(a.x, b.x) - v.gap / 2 + 0.5, a.y - v.gap / 2 + 0.5, Math.max(a.x, b.x) - Math.min(a.x, b.x) + w + v.gap - 1, b.y - a.y + h + v.gap - 1);
    }
    ctx.setLineDash([]);
  }
  drawGpus(ctx, part, muted);
  drawHighlights(ctx, ink);
  canvas.dataset.renderMs = (performance.now() - t0).toFixed(2);
  canvas.dataset.version = String(Number(canvas.dataset.version || 0) + 1);
}

let frame = 0;
/** Draw on the next animation frame (pointer moves come faster than frames). */
export function redraw() {
  cancelAnimationFrame(frame);
  frame = requestAnimationFrame(draw);
}

function drawGpus(ctx, part, muted) {
  const plan = state.plan;
  const v = state.view;
  ctx.lineWidth = 1;
  for (let node = 0; node < v.nodes; node++) {
    const box = nodeBox(node);
    ctx.strokeStyle = muted;
    ctx.strokeRect(box.x + 0.5, box.y + 0.5, v.boxW - 1, v.boxH - 1);
    if (v.labelH) {
      ctx.fillStyle = muted;
      ctx.font = "11px system-ui, sans-serif";
      ctx.textBaseline = "top";
      ctx.fillText(`node ${node}`, box.x + v.pad, box.y + 2, v.boxW - 2 * v.pad);
    }
  }
  const label = v.cell >= 22;
  ctx.font = `${v.cell >= 40 ? 12 : 9}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (let p = 0; p < plan.world_size; p++) {
    const rank = rankAt(plan, p);
    const r = cellRect(rank);
    const { colour, pattern } = styleOf(part.ord[p]);
    ctx.fillStyle = colour;
    ctx.fillRect(r.x + 1, r.y + 1, r.w - 2, r.h - 2);
    if (pattern !== "solid") {
      ctx.fillStyle = patternFor(ctx, pattern, "rgba(0,0,0,0.55)");
      ctx.fillRect(r.x + 1, r.y + 1, r.w - 2, r.h - 2);
    }
    if (label) {
      if (pattern !== "solid") {
        ctx.fillStyle = "rgba(255,255,255,0.85)";
        ctx.fillRect(r.x + r.w / 2 - 9, r.y + r.h / 2 - 6, 18, 12);
      }
      ctx.fillStyle = "#000";
      ctx.fillText(String(rank), r.x + r.w / 2, r.y + r.h / 2);
    }
  }
  ctx.textAlign = "start";
}

function drawHighlights(ctx, ink) {
  const focus = state.selected ?? state.hover;
  if (focus === null || positionOf(state.plan, focus) < 0) return;
  const mates = groupMembers(state.plan, state.axis, positionOf(state.plan, focus));
  ctx.strokeStyle = ink;
  ctx.lineWidth = 2;
  if (mates.length <= MAX_GPU_CELLS) {
    for (const rank of mates) {
      const r = cellRect(rank);
      if (r) ctx.strokeRect(r.x + 1, r.y + 1, r.w - 2, r.h - 2);
    }
  }
  const r = cellRect(focus);
  if (r) {
    ctx.lineWidth = 3;
    ctx.strokeStyle = cssVar("--focus");
    ctx.strokeRect(r.x - 1, r.y - 1, r.w + 2, r.h + 2);
  }
}
