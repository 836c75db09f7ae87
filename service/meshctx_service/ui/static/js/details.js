// One GPU's details (node, local rank, its coordinate and group along every axis) and the chosen axis's group list.
import { styleOf } from "./canvas.js";
import { $ } from "./dom.js";
import { localIndex, offsets } from "./layout.js";
import { gpusPerNode, groupMembers, positionOf, rankAt } from "./plan.js";
import { spanOf, spanText } from "./spans.js";
import { state } from "./state.js";

const MAX_LISTED = 64; // members / groups listed in text before "… more"

export function listText(ranks) {
  const shown = ranks.slice(0, MAX_LISTED).join(", ");
  return ranks.length > MAX_LISTED ? `${shown}, … (${ranks.length - MAX_LISTED} more)` : shown;
}

/** What the details panel shows for global rank r, computed from the compact layouts (MeshPlan.rank_view). */
export function rankView(rank) {
  const plan = state.plan;
  const p = plan ? positionOf(plan, rank) : -1;
  if (p < 0) return null;
  const gpn = gpusPerNode(plan);
  const out = { rank, node: Math.floor(rank / gpn), local_rank: rank % gpn, coordinates: {}, groups: {} };
  if (plan.cluster?.nvlink_domain) out.nvlink_domain = Math.floor(rank / plan.cluster.nvlink_domain);
  for (const axis of Object.keys(plan.layouts)) {
    out.coordinates[axis] = localIndex(plan.layouts[axis], p);
    out.groups[axis] = groupMembers(plan, axis, p);
  }
  return out;
}

export function showDetails(rank) {
  const panel = $("#details");
  panel.replaceChildren();
  if (!state.plan || rank === null || rank === undefined) return;
  const view = rankView(rank);
  if (!view) return;
  panel.dataset.rank = String(rank);
  const head = document.createElement("h2");
  head.textContent = `Rank ${rank}${state.selected === rank ? " (selected)" : ""}`;
  const facts = document.createElement("p");
  facts.className = "facts";
  facts.textContent = `node ${view.node} · local rank ${view.local_rank}${view.nvlink_domain !== undefined ? ` · NVLink domain ${view.nvlink_domain}` : ""}`;
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th scope=col>axis</th><th scope=col>size</th><th scope=col>coordinate</th><th scope=col>group members</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const axis of Object.keys(view.groups)) {
    const row = document.createElement("tr");
    row.dataset.axis = axis;
    if (axis === state.axis) row.className = "current";
    const span = spanText(spanOf(state.plan, axis));
    for (const text of [axis + (span ? ` (${span})` : ""), String(state.plan.layouts[axis].size), String(view.coordinates[axis]), listText(view.groups[axis])]) {
      const td = document.createElement("td");
      td.textContent = text;
      row.append(td);
    }
    row.lastChild.className = "members";
    body.append(row);
  }
  table.append(body);
  panel.append(head, facts, table);
}

export function showGroupList() {
  const list = $("#group-list ol");
  list.replaceChildren();
  const plan = state.plan;
  if (!plan) return;
  const layout = plan.layouts[state.axis];
  const count = plan.world_size / layout.size;
  const offs = offsets(layout);
  $("#group-list summary").textContent = `Groups of ${state.axis}: ${count} group${count === 1 ? "" : "s"} of ${layout.size}`;
  // Groups are numbered by their first position, so the first MAX_LISTED need no pass over the world.
  let shown = 0;
  for (let p = 0; p < plan.world_size && shown < MAX_LISTED; p++) {
    if (localIndex(layout, p) !== 0) continue;
    const g = shown;
    const item = document.createElement("li");
    item.dataset.group = String(g);
    const swatch = document.createElement("span");
    swatch.className = `swatch ${styleOf(g).pattern}`;
    swatch.style.backgroundColor = styleOf(g).colour;
    swatch.setAttribute("aria-hidden", "true");
    item.append(swatch, ` group ${g}: ${listText(offs.map((o) => rankAt(plan, p + o)))}`);
    list.append(item);
    shown++;
  }
  if (count > shown) {
    const more = document.createElement("li");
    more.textContent = `… ${count - shown} more groups`;
    list.append(more);
  }
}
