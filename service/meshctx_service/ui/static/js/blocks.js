// The aggregated view for meshes too big to draw GPU by GPU: the mesh as nested blocks, one nesting level per mesh
// axis (outermost first), with nodes and NVLink domains marked where they fall and counts at every level. One path
// is open, down to single GPUs: the selected rank's (rank 0's until one is chosen); any block opens on a click.
import { $ } from "./dom.js";
import { gpusPerNode, positionOf, rankAt } from "./plan.js";
import { state } from "./state.js";

const SHOWN = 8; // a level with more blocks shows the first two, a count of the rest, and the last

const chain = (cuts) => cuts.every((c, i) => i === 0 || c % cuts[i - 1] === 0);

/**
 * The nesting levels, innermost first: {stride, size, axes, primary, node, nvlink}. Cuts between levels come from
 * the device mesh's axes (they always nest), then the node and the NVLink domain, then the MoE mesh's axes, each
 * kept only where it nests with the cuts already made.
 */
export function levelsOf(plan) {
  const world = plan.world_size;
  const layouts = plan.layouts;
  const primary = plan.device_mesh ? plan.device_mesh.axes : Object.keys(layouts).slice(0, 1);
  const modeCuts = (axis) => layouts[axis].sizes.flatMap((s, i) => [layouts[axis].strides[i], s * layouts[axis].strides[i]]);
  let cuts = [...new Set([1, world, ...primary.flatMap(modeCuts)])].sort((a, b) => a - b);
  const gpn = gpusPerNode(plan);
  const nvl = plan.cluster?.nvlink_domain;
  const extra = [gpn, nvl, ...Object.keys(layouts).filter((a) => !primary.includes(a)).flatMap(modeCuts)];
  for (const cut of extra) {
    if (!cut || cut >= world || cuts.includes(cut)) continue;
    const next = [...cuts, cut].sort((a, b) => a - b);
    if (chain(next)) cuts = next;
  }
  const covers = (axis, lo, hi) => layouts[axis].sizes.some((s, i) => layouts[axis].strides[i] <= lo && hi <= s * layouts[axis].strides[i]);
  const levels = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [lo, hi] = [cuts[i], cuts[i + 1]];
    const axes = Object.keys(layouts).filter((a) => covers(a, lo, hi));
    levels.push({
      stride: lo,
      size: hi / lo,
      axes,
      primary: primary.find((a) => axes.includes(a)) ?? axes[0] ?? "?",
      node: gpn > 1 && lo === gpn && cuts.includes(gpn), // this level's blocks are whole nodes
      nvlink: nvl > gpn && lo === nvl && cuts.includes(nvl),
    });
  }
  // An axis cut into several levels (a node boundary inside it) says which part each level is.
  for (const level of levels) {
    const parts = levels.filter((l) => l.primary === level.primary);
    level.part = parts.length > 1 ? `${level.primary} ×${layouts[level.primary].size}` : null;
  }
  return levels;
}

const rangeText = (plan, start, count) =>
  count === 1 ? `rank ${rankAt(plan, start)}` : `ranks ${rankAt(plan, start)}–${rankAt(plan, start + count - 1)}`;

/** A block's name: its coordinate along the level's axis, or, where a node or NVLink cut splits that axis, which
 * node or domain it is (a part's own index would read like the axis's coordinate). */
function blockName(plan, level, i, first, gpn) {
  if (!level.part) return `${level.primary} ${i}`;
  const rank = rankAt(plan, first);
  if (level.node) return `node ${Math.floor(rank / gpn)}`;
  if (level.nvlink) return `NVLink domain ${Math.floor(rank / level.stride)}`;
  return `${level.primary} part ${i}`;
}

function blockFacts(plan, start, count, gpn) {
  const nodes = Math.ceil(count / gpn);
  const node = Math.floor(rankAt(plan, start) / gpn);
  const where = count > gpn ? ` · ${nodes} nodes` : count === gpn ? ` · node ${node}` : "";
  return `${rangeText(plan, start, count)}${where}`;
}

/** Draw the blocks into #blocks for the current plan, axis and selection. */
export function drawBlocks() {
  const plan = state.plan;
  const root = $("#blocks");
  root.replaceChildren();
  if (!plan) return;
  const t0 = performance.now();
  const levels = levelsOf(plan);
  const gpn = gpusPerNode(plan);
  const focus = state.selected !== null && positionOf(plan, state.selected) >= 0 ? positionOf(plan, state.selected) : 0;
  const layout = plan.layouts[state.axis];
  // Positions of the focused GPU's group along the chosen axis (only those drawn matter: the open node's).
  const groupBase = (p) => {
    let out = p;
    for (let i = 0; i < layout.sizes.length; i++) out -= (Math.floor(p / layout.strides[i]) % layout.sizes[i]) * layout.strides[i];
    return out;
  };
  const focusBase = groupBase(focus);
  root.dataset.axis = state.axis;
  root.append(openLevel(levels.length - 1, 0));
  root.dataset.renderMs = (performance.now() - t0).toFixed(2);

  function openLevel(j, start) {
    const level = levels[j];
    const box = document.createElement("div");
    box.className = "level";
    box.dataset.axis = level.primary;
    box.dataset.size = String(level.size);
    if (level.axes.includes(state.axis)) box.dataset.on = "";
    if (level.node) box.dataset.nodes = "";
    const head = document.createElement("p");
    head.className = "level-head";
    const each = level.stride === 1 ? "1 GPU" : `${level.stride} GPUs${level.stride > gpn ? ` on ${Math.ceil(level.stride / gpn)} nodes` : ""}`;
    const kind = level.node ? `, each a node of ${gpn}` : level.nvlink ? `, each an NVLink domain of ${level.stride} GPUs` : `, each ${each}`;
    head.textContent = `${level.primary} ×${level.size}${level.part ? ` (part of ${level.part})` : ""}${kind}`;
    if (level.axes.includes(state.axis)) {
      const runs = document.createElement("span");
      runs.className = "runs";
      runs.textContent = ` ← ${state.axis} runs along this`;
      head.append(runs);
    }
    if (level.axes.length > 1) head.title = `also along: ${level.axes.filter((a) => a !== level.primary).join(", ")}`;
    const row = document.createElement("div");
    row.className = "level-row";
    const open = Math.floor((focus - start) / level.stride);
    const shown = level.size <= SHOWN ? [...Array(level.size).keys()] : [...new Set([0, 1, open, level.size - 1])].sort((a, b) => a - b);
    let previous = -1;
    for (const i of shown) {
      if (i > previous + 1) {
        const more = document.createElement("span");
        more.className = "more";
        more.textContent = `… ${i - previous - 1} more`;
        row.append(more);
      }
      previous = i;
      const first = start + i * level.stride;
      if (j === 0) row.append(gpuChip(first, focusBase));
      else if (i === open) row.append(openBlock(j, i, first));
      else row.append(closedBlock(j, i, first));
    }
    box.append(head, row);
    return box;
  }

  function openBlock(j, i, first) {
    const level = levels[j];
    const block = document.createElement("div");
    block.className = `block open${level.node ? " node" : ""}`;
    const label = document.createElement("p");
    label.className = "block-head";
    label.textContent = `${blockName(plan, level, i, first, gpn)} · ${blockFacts(plan, first, level.stride, gpn)}`;
    block.append(label, openLevel(j - 1, first));
    return block;
  }

  function closedBlock(j, i, first) {
    const level = levels[j];
    const button = document.createElement("button");
    button.type = "button";
    button.className = `block closed${level.node ? " node" : ""}`;
    button.dataset.first = String(rankAt(plan, first));
    const name = blockName(plan, level, i, first, gpn);
    button.textContent = name;
    const facts = document.createElement("small");
    facts.textContent = blockFacts(plan, first, level.stride, gpn);
    button.append(facts);
    button.setAttribute("aria-label", `Open ${name}: ${facts.textContent}`);
    button.addEventListener("click", () => root.dispatchEvent(new CustomEvent("pick", { detail: rankAt(plan, first) })));
    return button;
  }

  function gpuChip(p, base) {
    const rank = rankAt(plan, p);
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "gpu";
    chip.dataset.rank = String(rank);
    chip.textContent = String(rank);
    if (groupBase(p) === base) chip.dataset.group = "";
    if (rank === state.selected) chip.dataset.selected = "";
    chip.setAttribute("aria-label", `GPU rank ${rank}${rank === state.selected ? " (selected)" : ""}`);
    chip.addEventListener("click", () => root.dispatchEvent(new CustomEvent("pick", { detail: rank })));
    return chip;
  }
}
