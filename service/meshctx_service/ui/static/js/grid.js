// Where each GPU is drawn: node boxes in rows (NVLink domains kept on one row where they fit), one cell per GPU,
// or one cell per node above MAX_GPU_CELLS GPUs. Geometry only; canvas.js paints it.
import { $, canvas } from "./dom.js";
import { exists, gpusPerNode } from "./plan.js";
import { state } from "./state.js";

export const MAX_GPU_CELLS = 4096; // above this, one cell per node
const MAX_NODE_CELLS = 16384; // above this, nothing is drawn; single ranks can still be inspected

/** Size the canvas for the current plan and record the geometry in state.view. */
export function layoutGrid() {
  const plan = state.plan;
  const t0 = performance.now();
  const gpn = gpusPerNode(plan);
  const slots = plan.ranks ? Math.max(...plan.ranks) + 1 : plan.world_size;
  const nodes = Math.ceil(slots / gpn);
  const aggregate = plan.world_size > MAX_GPU_CELLS;
  const tooBig = aggregate && nodes > MAX_NODE_CELLS;
  const nvl = plan.cluster?.nvlink_domain;
  const nodesPerDomain = nvl && nvl % gpn === 0 ? nvl / gpn : 1;
  const width = Math.max(320, $("#grid-wrap").clientWidth - 2);
  let cell, cols, rows, pad, gap, labelH;
  if (aggregate) {
    cell = nodes <= 1024 ? 14 : nodes <= 4096 ? 8 : 5;
    cols = 1; rows = 1; pad = 0; gap = nodes <= 4096 ? 2 : 1; labelH = 0;
  } else {
    const n = plan.world_size;
    cell = n <= 64 ? 40 : n <= 512 ? 22 : n <= 1024 ? 16 : 10;
    cols = Math.min(gpn, gpn <= 16 ? 8 : Math.ceil(Math.sqrt(gpn)));
    rows = Math.ceil(gpn / cols);
    pad = cell >= 22 ? 4 : 2;
    gap = cell >= 22 ? 10 : 6;
    labelH = cell >= 22 ? 14 : 0;
  }
  const boxW = cols * cell + 2 * pad;
  const boxH = rows * cell + 2 * pad + labelH;
  const fit = Math.max(1, Math.floor((width + gap) / (boxW + gap)));
  let perRow = fit;
  if (nodesPerDomain > 1) {
    if (nodesPerDomain <= fit) perRow = Math.floor(fit / nodesPerDomain) * nodesPerDomain;
    else for (perRow = fit; nodesPerDomain % perRow; perRow--);
  }
  perRow = Math.min(perRow, nodes);
  const nodeRows = Math.ceil(nodes / perRow);
  state.view = { gpn, slots, nodes, aggregate, tooBig, cell, cols, rows, pad, gap, labelH, boxW, boxH, perRow, nodesPerDomain, nvl };
  const cssW = perRow * (boxW + gap) + gap;
  const cssH = tooBig ? 0 : nodeRows * (boxH + gap) + gap;
  const ratio = window.devicePixelRatio || 1;
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  canvas.width = Math.round(cssW * ratio);
  canvas.height = Math.round(cssH * ratio);
  canvas.dataset.mode = tooBig ? "too-big" : aggregate ? "nodes" : "gpus";
  canvas.dataset.cells = String(tooBig ? 0 : aggregate ? nodes : plan.world_size);
  const what = tooBig
    ? `${plan.world_size} GPUs on ${nodes} nodes: too many to draw; type a rank in “Inspect rank” to see its groups.`
    : aggregate
      ? `${plan.world_size} GPUs: one cell per node of ${gpn} GPUs (a striped node holds several ${state.axis} groups).`
      : `${plan.world_size} GPUs, ${nodes} node${nodes === 1 ? "" : "s"} of ${gpn}${plan.cluster ? "" : " (assumed)"}${nvl ? `, NVLink domains of ${nvl}` : ""}.`;
  $("#mesh-info").textContent = state.rangeText + what;
  canvas.dataset.layoutMs = (performance.now() - t0).toFixed(2);
}

/** CSS-pixel top-left corner of a node's box. */
export function nodeBox(node) {
  const v = state.view;
  const col = node % v.perRow;
  const row = Math.floor(node / v.perRow);
  return { x: v.gap + col * (v.boxW + v.gap), y: v.gap + row * (v.boxH + v.gap) };
}

/** CSS-pixel rectangle of the cell that draws global rank r (its node in aggregate mode). */
export function cellRect(rank) {
  const v = state.view;
  if (!v || v.tooBig) return null;
  const node = Math.floor(rank / v.gpn);
  const box = nodeBox(node);
  if (v.aggregate) return { x: box.x, y: box.y, w: v.cell, h: v.cell, node };
  const local = rank % v.gpn;
  return {
    x: box.x + v.pad + (local % v.cols) * v.cell,
    y: box.y + v.labelH + v.pad + Math.floor(local / v.cols) * v.cell,
    w: v.cell,
    h: v.cell,
    node,
  };
}

/** Global rank drawn at CSS pixel (x, y) (the node's first rank in aggregate mode), or null. */
export function hitTest(x, y) {
  const v = state.view;
  if (!v || v.tooBig) return null;
  const col = Math.floor((x - v.gap) / (v.boxW + v.gap));
  const row = Math.floor((y - v.gap) / (v.boxH + v.gap));
  if (col < 0 || col >= v.perRow || row < 0) return null;
  const node = row * v.perRow + col;
  if (node >= v.nodes) return null;
  const box = nodeBox(node);
  if (v.aggregate) {
    return x - box.x < v.cell && y - box.y < v.cell ? exists(node * v.gpn) : null;
  }
  const gx = Math.floor((x - box.x - v.pad) / v.cell);
  const gy = Math.floor((y - box.y - v.labelH - v.pad) / v.cell);
  if (gx < 0 || gx >= v.cols || gy < 0 || gy >= v.rows) return null;
  const local = gy * v.cols + gx;
  return local < v.gpn ? exists(node * v.gpn + local) : null;
}
