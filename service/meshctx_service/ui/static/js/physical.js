// The physical view: the form's topology placed on a cluster by POST /v1/place. Nodes are drawn grouped by leaf
// switch and NVLink domain, each GPU in the colour of its group along the chosen axis, next to the crossings per
// axis of meshctx's order against hostname order (c10d) and natural order (Slurm) and the lower bound.
import { api, authHeader } from "./api.js";
import { styleOf } from "./canvas.js";
import { $ } from "./dom.js";
import { requestBody } from "./form.js";
import { partition } from "./layout.js";
import { state } from "./state.js";

const TIERS = ["node", "nvlink_domain", "leaf", "spine"];
const TIER_LABELS = { node: "node", nvlink_domain: "NVLink", leaf: "leaf", spine: "spine" };
//: Above this many GPUs a node is one swatch (its first GPU's group), not one per GPU.
const MAX_GPU_SWATCHES = 8192;

const view = { result: null, plan: null, topology: null, axis: null };

const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
};

/** The form's world in GPUs, or null. */
function worldOf(body) {
  if (Number.isInteger(body.world_size)) return body.world_size;
  if (Number.isInteger(body.nnodes) && Number.isInteger(body.nproc_per_node)) return body.nnodes * body.nproc_per_node;
  return null;
}

/** A uniform cluster for the form's world: nodes of gpus_per_node GPUs, NVLink domains of nvlink_domain GPUs,
 * `perLeaf` nodes per leaf switch, one spine; hosts named node1, node2, … (so c10d's string order differs). */
export function uniformTopology(body, perLeaf) {
  const gpn = body.cluster?.gpus_per_node;
  const world = worldOf(body);
  if (!Number.isInteger(gpn) || gpn < 1 || world === null || world % gpn !== 0) {
    throw new Error("a uniform cluster needs a world size that is a multiple of GPUs per node");
  }
  const nvl = body.cluster.nvlink_domain;
  const perDomain = Number.isInteger(nvl) && nvl >= gpn ? Math.floor(nvl / gpn) : null;
  const nodes = [];
  for (let i = 0; i < world / gpn; i++) {
    nodes.push({
      name: `node${i + 1}`,
      gpus: gpn,
      nvlink_domain: perDomain ? `nvl${Math.floor(i / perDomain)}` : null,
      leaf: `leaf${Math.floor(i / perLeaf)}`,
      spine: "spine0",
    });
  }
  return { nodes };
}

function sourceTopology(body) {
  if ($("#physical [name=phys_source]:checked").value === "uniform") {
    const perLeaf = Number($("#p-leaf").value);
    if (!Number.isInteger(perLeaf) || perLeaf < 1) throw new Error("nodes per leaf: a whole number ≥ 1");
    return uniformTopology(body, perLeaf);
  }
  const text = $("#p-topology").value.trim();
  if (!text) throw new Error('paste a topology: {"nodes": [{"name", "gpus", "nvlink_domain", "leaf", "spine"}]}');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`the pasted topology is not JSON: ${error.message}`);
  }
}

function setStatus(text, kind = "") {
  const status = $("#p-status");
  status.textContent = text;
  status.dataset.state = kind;
}

async function placeNow() {
  const body = requestBody();
  let topology;
  try {
    topology = sourceTopology(body);
  } catch (error) {
    setStatus(error.message, "error");
    return;
  }
  const nodes = $("#p-nodes").value.trim();
  const request = { ...body, topology, ...(nodes ? { nodes } : {}) };
  const plan = state.plan;
  setStatus("Placing…", "pending");
  let data;
  let response;
  try {
    response = await fetch(api("v1/place"), {
      method: "POST",
      headers: { "content-type": "application/json", ...authHeader() },
      body: JSON.stringify(request),
    });
    data = await response.json();
  } catch (error) {
    setStatus(`The service did not answer: ${error.message}`, "error");
    show(null);
    return;
  }
  if (!response.ok) {
    const errors = data.errors ? data.errors.map((e) => `${e.field}: ${e.detail}`).join("; ") : data.detail;
    setStatus(`Not placed (${response.status}): ${errors}`, "error");
    show(null);
    return;
  }
  if (data.valid === false) {
    setStatus(`Not placed: ${data.problems.map((p) => `${p.message} ${p.hint}`).join(" ")}`, "error");
    show(null);
    return;
  }
  view.plan = plan && plan.world_size === data.order.length * data.gpus_per_node ? plan : null;
  view.topology = topology;
  const first = Object.keys(data.axes)[0];
  const summary = first
    ? `; ${first} groups crossing an NVLink domain: ${data.axes[first].crossing.nvlink_domain} ` +
      `(hostname order: ${data.baselines.lexicographic[first].crossing.nvlink_domain})`
    : "";
  setStatus(`Placed ${data.order.length} nodes × ${data.gpus_per_node} GPUs${summary}.`, "valid");
  show(data);
}

function show(data) {
  view.result = data;
  $("#p-result").hidden = !data;
  if (!data) return;
  const axes = Object.keys(data.axes);
  if (!axes.includes(view.axis)) view.axis = axes[0] ?? null;
  drawAxisPicker(axes);
  drawTable(data);
  drawRacks(data);
}

function drawAxisPicker(axes) {
  const box = $("#p-axes");
  box.replaceChildren();
  for (const axis of axes) {
    const input = el("input", { type: "radio", name: "p_axis", value: axis, checked: axis === view.axis });
    input.addEventListener("change", () => { view.axis = axis; drawRacks(view.result); });
    box.append(el("label", {}, input, ` ${axis}`));
  }
}

const cells = (crossing) => TIERS.map((t) => crossing[t]).join(" / ");
const worse = (a, b) => {
  for (const t of TIERS) if (a[t] !== b[t]) return a[t] > b[t];
  return false;
};

function drawTable(data) {
  const head = el("tr", {}, ...["axis", "groups", "hostname (c10d)", "natural (Slurm)", "meshctx", "lower bound"].map(
    (h) => el("th", { scope: "col" }, h),
  ));
  const rows = Object.entries(data.axes).map(([axis, entry]) => {
    const lexi = data.baselines.lexicographic[axis].crossing;
    const natural = data.baselines.natural[axis].crossing;
    const ours = el("td", { className: "ours" }, cells(entry.crossing));
    if (worse(lexi, entry.crossing) || worse(natural, entry.crossing)) ours.classList.add("better");
    const row = el("tr", {}, el("th", { scope: "row" }, axis), el("td", {}, String(entry.groups)),
      el("td", {}, cells(lexi)), el("td", {}, cells(natural)), ours, el("td", {}, cells(entry.lower_bound)));
    row.dataset.axis = axis;
    return row;
  });
  $("#p-table").replaceChildren(
    el("caption", {}, `Groups crossing each tier (${TIERS.map((t) => TIER_LABELS[t]).join(" / ")})`),
    el("thead", {}, head),
    el("tbody", {}, ...rows),
  );
}

/** Leaves, then NVLink domains inside them, in the order the placement first uses them. */
function grouped(data) {
  const byName = new Map(view.topology.nodes.map((n) => [n.name, n]));
  const leaves = new Map();
  data.order.forEach((name, nodeRank) => {
    const node = byName.get(name) ?? { name };
    const leaf = node.leaf ?? `(no leaf: ${name})`;
    const domain = node.nvlink_domain ?? `(no NVLink domain: ${name})`;
    if (!leaves.has(leaf)) leaves.set(leaf, new Map());
    const domains = leaves.get(leaf);
    if (!domains.has(domain)) domains.set(domain, []);
    domains.get(domain).push({ name, nodeRank });
  });
  return leaves;
}

function drawRacks(data) {
  const box = $("#p-racks");
  box.replaceChildren();
  const g = data.gpus_per_node;
  const layout = view.plan?.layouts?.[view.axis];
  const part = layout ? partition(layout, view.plan.world_size) : null;
  const perGpu = data.order.length * g <= MAX_GPU_SWATCHES;
  $("#p-note").textContent = part
    ? `Each square is a GPU (rank = node rank × ${g} + local index), coloured by its ${view.axis} group.`
    : "Colours need the form's topology to be valid and to match the placement's world size.";
  for (const [leaf, domains] of grouped(data)) {
    const leafBox = el("div", { className: "p-leaf" }, el("p", { className: "p-head" }, `leaf ${leaf}`));
    leafBox.dataset.leaf = leaf;
    for (const [domain, nodes] of domains) {
      const domainBox = el("div", { className: "p-domain" }, el("p", { className: "p-head" }, `NVLink ${domain}`));
      domainBox.dataset.domain = domain;
      for (const { name, nodeRank } of nodes) {
        const nodeBox = el("div", { className: "p-node", title: `${name}: node rank ${nodeRank}` },
          el("span", { className: "p-name" }, `${nodeRank}: ${name}`));
        nodeBox.dataset.node = name;
        nodeBox.dataset.nodeRank = String(nodeRank);
        const gpus = el("span", { className: "p-gpus" });
        for (let j = 0; j < (perGpu ? g : 1); j++) {
          const rank = nodeRank * g + j;
          const swatch = el("span", { className: "p-gpu swatch" });
          if (part) {
            const group = part.ord[rank];
            const style = styleOf(group);
            swatch.style.backgroundColor = style.colour;
            if (style.pattern !== "solid") swatch.classList.add(style.pattern);
            swatch.dataset.group = String(group);
            swatch.title = `rank ${rank}: ${view.axis} group ${group}`;
          }
          swatch.dataset.rank = String(rank);
          gpus.append(swatch);
        }
        nodeBox.append(gpus);
        domainBox.append(nodeBox);
      }
      leafBox.append(domainBox);
    }
    box.append(leafBox);
  }
}

async function loadFile(event) {
  const file = event.target.files?.[0];
  if (!file) return;
  $("#p-topology").value = await file.text();
  $("#physical [name=phys_source][value=pasted]").checked = true;
  syncSource();
}

function syncSource() {
  const source = $("#physical [name=phys_source]:checked").value;
  for (const part of document.querySelectorAll("#physical [data-source]")) part.hidden = part.dataset.source !== source;
}

export function setupPhysical() {
  const panel = $("#physical");
  if (!panel) return;
  for (const radio of panel.querySelectorAll("[name=phys_source]")) radio.addEventListener("change", syncSource);
  $("#p-file").addEventListener("change", loadFile);
  $("#p-place").addEventListener("click", placeNow);
  syncSource();
}

// A read-only window for tests and the browser console.
window.meshPhysical = {
  get result() { return view.result; },
  get axis() { return view.axis; },
  uniformTopology,
};
