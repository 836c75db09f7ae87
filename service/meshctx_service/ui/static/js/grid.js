// Where each GPU is drawn: node boxes in rows (NVLink domains kept on one row where they fit), one cell per GPU.
// Above MAX_GPU_CELLS GPUs nothing is drawn per GPU: the mesh is shown as nested blocks (blocks.js). Geometry only;
// canvas.js paints it.
import { $, canvas } from "./dom.js";
import { exists, gpusPerNode } from "./plan.js";
import { state } from "./state.js";

export const MAX_GPU_CELLS = 4096; // above this, the nested-blocks view

/** Size the canvas for the current plan (or switch to the blocks view) and record the geometry in state.view. */
export function layoutGrid() {
  const plan = state.plan;
  const t0 = performance.now();
  const gpn = gpusPerNode(plan);
  const slots = plan.ranks ? Math.max(...plan.ranks) + 1 : plan.world_size;
  const nodes = Math.ceil(slots / gpn);
  const nvl = plan.cluster?.nvlink_domain;
  const blocks = plan.world_size > MAX_GPU_CELLS;
  canvas.hidden = blocks;
  $("#blocks").hidden = !blocks;
  canvas.dataset.mode = blocks ? "blocks" : "gpus";
  canvas.dataset.cells = String(blocks ? 0 : plan.world_size);
  if (blocks) {
    state.view = { blocks, gpn, slots, nodes, nvl };
    $("#mesh-info").textContent = `${state.rangeText}${plan.world_size} GPUs on ${nodes} nodes of ${gpn}${nvl ? `, NVLink domains of ${nvl}` : ""}: too many to draw one by one, so the mesh is shown as nested blocks, outermost axis first. One path is open down to single GPUs; click a block to open it, or type a rank in “Inspect rank”.`;
    return;
  }
  const nodesPerDomain = nvl && nvl % gpn === 0 ? nvl / gpn : 1;
  const width = Math.max(320, $("#grid-wrap").clientWidth - 2);
  const n = plan.world_size;
  const cell = n <= 64 ? 40 : n <= 512 ? 22 : n <= 1024 ? 16 : 10;
  const cols = Math.min(gpn, gpn <= 16 ? 8 : Math.ceil(Math.sqrt(gpn)));
  const rows = Math.ceil(gpn / cols);
  const pad = cell >= 22 ? 4 : 2;
  const gap = cell >= 22 ? 10 : 6;
  const labelH = cell >= 22 ? 14 : 0;
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
  state.view = { blocks, gpn, slots, nodes, cell, cols, rows, pad, gap, labelH, boxW, boxH, perRow, nodesPerDomain, nvl };
  const cssW = perRow * (boxW + gap) + gap;
  const cssH = nodeRows * (boxH + gap) + gap;
  const ratio = window.devicePixelRatio || 1;
  canvas.style.width = `${cssW}px`;
  canvas.style.height = `${cssH}px`;
  canvas.width = Math.round(cssW * ratio);
  canvas.height = Math.round(cssH * ratio);
  $("#mesh-info").textContent = `${state.rangeText}${plan.world_size} GPUs, ${nodes} node${nodes === 1 ? "" : "s"} of ${gpn}${plan.cluster ? "" : " (assumed)"}${nvl ? `, NVLink domains of ${nvl} (dashed outline)` : ""}.`;
  canvas.dataset.layoutMs = (performance.now() - t0).toFixed(2);
}

/** CSS-pixel top-left corner of a node's box. */
export function nodeBox(node) {
  const v = state.view;
  const col = node % v.perRow;
  const row = Math.floor(node / v.perRow);
  return { x: v.gap + col * (v.boxW + v.gap), y: v.gap + row * (v.boxH + v.gap) };
}

/** CSS-pixel rectangle of the cell that draws global rank r (null in the blocks view). */
export function cellRect(rank) {
  const v = state.view;
  if (!v || v.blocks) return null;
  const node = Math.floor(rank / v.gpn);
  const box = nodeBox(node);
  const local = rank % v.gpn;
  return {
    x: box.x + v.pad + (local % v.cols) * v.cell,
    y: box.y + v.labelH + v.pad + Math.floor(local / v.cols) * v.cell,
    w: v.cell,
    h: v.cell,
    node,
  };
}

/** Global rank drawn at CSS pixel (x, y), or null. */
export function hitTest(x, y) {
  const v = state.view;
  if (!v || v.blocks) return null;
  const col = Math.floor((x - v.gap) / (v.boxW + v.gap));
  const row = Math.floor((y - v.gap) / (v.boxH + v.gap));
  if (col < 0 || col >= v.perRow || row < 0) return null;
  const node = row * v.perRow + col;
  if (node >= v.nodes) return null;
  const box = nodeBox(node);
  const gx = Math.floor((x - box.x - v.pad) / v.cell);
  const gy = Math.floor((y - box.y - v.labelH - v.pad) / v.cell);
  if (gx < 0 || gx >= v.cols || gy < 0 || gy >= v.rows) return null;
  const local = gy * v.cols + gx;
  return local < v.gpn ? exists(node * v.gpn + local) : null;
}
