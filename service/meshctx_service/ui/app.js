// meshctx topology viewer: a form validated live by POST /v1/validate and the planned mesh drawn on a canvas.
// Groups are computed here from the plan's compact (sizes, strides) layouts (docs/problem-codes.md "Layouts"),
// so a 131072-GPU plan costs the same small payload as an 8-GPU one.

const DEBOUNCE_MS = 180;
const MAX_GPU_CELLS = 4096; // above this, one cell per node
const MAX_NODE_CELLS = 16384; // above this, nothing is drawn; single ranks can still be inspected
const MAX_LISTED = 64; // members / groups listed in text before "… more"
// Okabe–Ito, black swapped for grey so it reads on both themes; groups past 8 add a pattern.
const PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"];
const PATTERNS = ["solid", "stripes", "dots", "cross"];
const SIZE_FIELDS = ["tp_size", "pp_size", "cp_size", "ep_size", "dp_size", "dp_replicate_size"];
const MODEL_FIELDS = [
  "num_attention_heads", "num_key_value_heads", "num_experts", "num_hidden_layers",
  "seq_length", "global_batch_size", "micro_batch_size",
];
const TOKEN_KEY = "meshctx.token";

const $ = (selector, root = document) => root.querySelector(selector);
const form = $("#topology");
const canvas = $("#grid");
const api = (path) => new URL(`../${path}`, document.baseURI).toString();

const state = {
  report: null, // last validation report
  plan: null,
  axis: null,
  selected: null, // sticky selection (global rank)
  hover: null,
  view: null, // geometry of the drawing
  groupCache: new Map(), // axis -> {ord, index, count}
  inflight: null,
  rangeText: "",
  timer: null,
  features: { render: null, jobs: false },
};

// ------------------------------------------------------------------ layouts → groups (pure functions)
/** Coordinate of position p along a digit-aligned layout, and the first position of its group. */
export function locate(layout, p) {
  let base = p;
  let index = 0;
  for (let i = 0; i < layout.sizes.length; i++) {
    const c = Math.floor(p / layout.strides[i]) % layout.sizes[i];
    base -= c * layout.strides[i];
    index = index * layout.sizes[i] + c;
  }
  return { base, index };
}

/** Offsets of the group holding position 0, in group order. */
export function offsets(layout) {
  let out = [0];
  for (let i = 0; i < layout.sizes.length; i++) {
    const next = [];
    for (const o of out) for (let c = 0; c < layout.sizes[i]; c++) next.push(o + c * layout.strides[i]);
    out = next;
  }
  return out;
}

/** For every position: the ordinal of its group (groups numbered by their first position) and its index in it. */
export function partition(layout, world) {
  const ord = new Int32Array(world);
  const index = new Int32Array(world);
  const { sizes, strides } = layout;
  let count = 0;
  for (let p = 0; p < world; p++) {
    let base = p;
    let idx = 0;
    for (let i = 0; i < sizes.length; i++) {
      const c = Math.floor(p / strides[i]) % sizes[i];
      base -= c * strides[i];
      idx = idx * sizes[i] + c;
    }
    ord[p] = base === p ? count++ : ord[base];
    index[p] = idx;
  }
  return { ord, index, count };
}

const rankAt = (plan, p) => (plan.ranks ? plan.ranks[p] : p);
function positionOf(plan, rank) {
  if (!plan.ranks) return rank >= 0 && rank < plan.world_size ? rank : -1;
  if (!plan._pos) plan._pos = new Map(plan.ranks.map((r, p) => [r, p]));
  return plan._pos.has(rank) ? plan._pos.get(rank) : -1;
}
function groupMembers(plan, axis, p) {
  const layout = plan.layouts[axis];
  const { base } = locate(layout, p);
  return offsets(layout).map((o) => rankAt(plan, base + o));
}
function axisPartition(axis) {
  if (!state.groupCache.has(axis)) state.groupCache.set(axis, partition(state.plan.layouts[axis], state.plan.world_size));
  return state.groupCache.get(axis);
}

// ------------------------------------------------------------------ form ↔ request ↔ URL
const mode = () => form.elements.world_mode.value;
const intOrString = (text) => (/^-?\d+$/.test(text) ? Number(text) : text);
const numberValue = (name) => {
  const el = form.elements.namedItem(name);
  const text = el.value.trim();
  if (text === "") return el.validity && el.validity.badInput ? "" : null;
  return Number.isFinite(Number(text)) ? Number(text) : text;
};

export function requestBody() {
  const body = { strategy: form.elements.strategy.value };
  const gpn = numberValue("gpus_per_node");
  if (mode() === "nodes") {
    const nnodes = form.elements.nnodes.value.trim();
    if (nnodes !== "") body.nnodes = intOrString(nnodes);
    if (gpn !== null) body.nproc_per_node = gpn;
  } else {
    const world = numberValue("world_size");
    if (world !== null) body.world_size = world;
  }
  const sizes = {};
  for (const name of SIZE_FIELDS) {
    const value = numberValue(name);
    if (value !== null) sizes[name] = value;
  }
  body.sizes = sizes;
  const nvlink = numberValue("nvlink_domain");
  if (gpn !== null) body.cluster = { gpus_per_node: gpn, nvlink_domain: nvlink };
  const model = {};
  for (const name of MODEL_FIELDS) {
    const value = numberValue(`model.${name}`);
    if (value !== null) model[name] = value;
  }
  if (Object.keys(model).length) body.model = model;
  return body;
}

function setField(name, value) {
  const el = form.elements.namedItem(name);
  if (el) el.value = value === null || value === undefined ? "" : String(value);
}

function setMode(value) {
  for (const radio of form.querySelectorAll('input[name="world_mode"]')) radio.checked = radio.value === value;
  for (const el of form.querySelectorAll("[data-mode]")) el.hidden = el.dataset.mode !== value;
}

/** Fill the form from a request body (a registered job's request). */
export function loadBody(body) {
  form.reset();
  setField("strategy", body.strategy);
  if (body.nnodes !== undefined && body.nnodes !== null) {
    setMode("nodes");
    setField("nnodes", body.nnodes);
    setField("gpus_per_node", body.nproc_per_node ?? body.cluster?.gpus_per_node);
  } else {
    setMode("world");
    setField("world_size", body.world_size ?? (body.ranks ? body.ranks.length : ""));
    setField("gpus_per_node", body.cluster?.gpus_per_node ?? "");
  }
  setField("nvlink_domain", body.cluster?.nvlink_domain);
  for (const name of SIZE_FIELDS) setField(name, body.sizes?.[name] ?? (name.startsWith("dp") ? "" : 1));
  for (const name of MODEL_FIELDS) setField(`model.${name}`, body.model?.[name]);
  if (body.model && Object.values(body.model).some((v) => v !== null)) $("#model-shape").open = true;
}

function writeUrl() {
  const params = new URLSearchParams();
  params.set("mode", mode());
  for (const el of form.elements) {
    if (!el.name || el.type === "radio" || el.type === "password" || el.closest("[hidden]")) continue;
    if (el.value.trim() !== "") params.set(el.name, el.value.trim());
  }
  if (state.axis) params.set("axis", state.axis);
  if (state.selected !== null) params.set("rank", String(state.selected));
  const hash = `#${params}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function readUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (![...params.keys()].length) return;
  form.reset();
  setMode(params.get("mode") === "nodes" ? "nodes" : "world");
  for (const name of ["world_size", "nnodes", "gpus_per_node", "nvlink_domain", ...SIZE_FIELDS]) {
    setField(name, params.get(name) ?? (SIZE_FIELDS.includes(name) && !name.startsWith("dp") ? 1 : ""));
  }
  if (params.has("strategy")) setField("strategy", params.get("strategy"));
  for (const name of MODEL_FIELDS) setField(`model.${name}`, params.get(`model.${name}`));
  if (MODEL_FIELDS.some((n) => params.get(`model.${n}`))) $("#model-shape").open = true;
  state.axis = params.get("axis");
  const rank = params.get("rank");
  state.selected = rank !== null && /^\d+$/.test(rank) ? Number(rank) : null;
}

// ------------------------------------------------------------------ live validation
function scheduleValidate() {
  clearTimeout(state.timer);
  setVerdict("pending", "Checking…");
  state.timer = setTimeout(validateNow, DEBOUNCE_MS);
}

async function validateNow() {
  clearTimeout(state.timer);
  state.inflight?.abort();
  const controller = new AbortController();
  state.inflight = controller;
  writeUrl();
  let response;
  let data;
  try {
    response = await fetch(api("v1/validate"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(requestBody()),
      signal: controller.signal,
    });
    data = await response.json();
  } catch (error) {
    if (error.name === "AbortError") return;
    if (state.inflight !== controller) return;
    setVerdict("error", `The service did not answer: ${error.message}`);
    return;
  }
  if (state.inflight !== controller) return; // a newer request was sent meanwhile
  state.inflight = null;
  if (response.ok) showReport(data);
  else showRefusal(response.status, data);
}

function setVerdict(kind, text) {
  const verdict = $("#verdict");
  verdict.dataset.state = kind;
  verdict.textContent = text;
}

// ------------------------------------------------------------------ problems next to their fields
function inputFor(field) {
  let name = field.replace(/^(sizes|body)\./, "");
  const aliases = {
    nproc_per_node: "gpus_per_node",
    "cluster.gpus_per_node": "gpus_per_node",
    "cluster.nvlink_domain": "nvlink_domain",
    "cluster": "gpus_per_node",
  };
  if (mode() === "nodes" && name === "world_size") name = "nnodes";
  if (mode() === "world" && name === "nnodes") name = "world_size";
  name = aliases[name] ?? name;
  const el = form.elements.namedItem(name);
  return el && el.id && !el.closest("[hidden]") ? el : null;
}

function clearMessages() {
  for (const box of form.querySelectorAll(".msgs")) box.replaceChildren();
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-describedby");
    el.closest(".field")?.removeAttribute("data-severity");
  }
  $("#summary ul").replaceChildren();
  $("#summary").hidden = true;
}

let messageId = 0;
function placeMessage(problem) {
  const inputs = [...new Set((problem.fields || []).map(inputFor).filter(Boolean))];
  const item = document.createElement(inputs.length ? "p" : "li");
  item.className = `problem ${problem.severity}`;
  item.id = `msg-${++messageId}`;
  item.dataset.code = problem.code || "";
  const message = document.createElement("span");
  message.className = "message";
  message.textContent = `${problem.severity === "warning" ? "Warning" : "Error"}: ${problem.message}`;
  item.append(message);
  if (problem.hint) {
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = ` Fix: ${problem.hint}`;
    item.append(hint);
  }
  if (!inputs.length) {
    $("#summary ul").append(item);
    $("#summary").hidden = false;
    return;
  }
  inputs[0].closest(".field").querySelector(".msgs").append(item);
  for (const input of inputs) {
    if (input.closest("#model-shape")) $("#model-shape").open = true;
    const field = input.closest(".field");
    if (problem.severity === "error" || !field.dataset.severity) field.dataset.severity = problem.severity;
    if (problem.severity === "error") input.setAttribute("aria-invalid", "true");
    const described = (input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    input.setAttribute("aria-describedby", [...described, item.id].join(" "));
    if (input !== inputs[0]) {
      const ref = document.createElement("p");
      ref.className = `problem-ref ${problem.severity}`;
      ref.textContent = `↑ see ${labelOf(inputs[0])}: ${problem.code}`;
      field.querySelector(".msgs").append(ref);
    }
  }
}
const labelOf = (input) => form.querySelector(`label[for="${input.id}"]`)?.textContent ?? input.name;

function showRefusal(status, data) {
  clearMessages();
  showSuggestions([]);
  const errors = data.errors || [{ field: "body", detail: data.detail || `HTTP ${status}` }];
  for (const e of errors) placeMessage({ severity: "error", code: "invalid_request", fields: [e.field], message: `${e.field}: ${e.detail}`, hint: "" });
  setVerdict("invalid", `Request not accepted (${status}): ${errors.length} field${errors.length === 1 ? "" : "s"} to fix.`);
  setPlan(null);
}

function showReport(report) {
  state.report = report;
  clearMessages();
  for (const problem of [...report.problems, ...report.warnings]) placeMessage(problem);
  showSuggestions(report.suggestions || []);
  const plan = report.plan;
  if (report.valid && plan) {
    const shape = plan.device_mesh
      ? plan.device_mesh.axes.map((a, i) => `${a} ${plan.device_mesh.shape[i]}`).join(" × ")
      : `dp ${plan.sizes.dp} (no device mesh)`;
    const warn = report.warnings.length ? `, ${report.warnings.length} warning${report.warnings.length === 1 ? "" : "s"}` : "";
    setVerdict("valid", `Valid: ${plan.strategy} on ${plan.world_size} GPUs — ${shape}${warn}.`);
  } else {
    const n = report.problems.length;
    setVerdict("invalid", `Invalid: ${n} problem${n === 1 ? "" : "s"}${report.suggestions?.length ? "; suggestions below" : ""}.`);
  }
  setPlan(report.valid ? plan : null, report.world_sizes);
}

function showSuggestions(suggestions) {
  const box = $("#suggestions .buttons");
  box.replaceChildren();
  $("#suggestions").hidden = !suggestions.length;
  for (const suggestion of suggestions) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "suggestion";
    const sizes = Object.entries(suggestion.sizes)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k.replace(/_size$/, "")} ${v}`)
      .join(", ");
    button.textContent = `Apply: ${suggestion.reason}`;
    button.title = sizes;
    button.setAttribute("aria-label", `Apply suggestion ${suggestion.reason} (${sizes})`);
    button.addEventListener("click", () => {
      for (const name of SIZE_FIELDS) setField(name, suggestion.sizes[name]);
      validateNow();
    });
    box.append(button);
  }
}

// ------------------------------------------------------------------ the mesh
function setPlan(plan, worldSizes) {
  state.plan = plan;
  state.groupCache.clear();
  state.hover = null;
  const picker = $("#axis-picker");
  picker.replaceChildren();
  state.rangeText = worldSizes
    ? `Node range: ${worldSizes.map((w) => `${w.world_size} ${w.valid ? "✓" : "✗"}`).join(", ")}. `
    : "";
  $("#mesh-info").textContent = state.rangeText;
  if (!plan) {
    canvas.hidden = true;
    $("#details").replaceChildren();
    $("#group-list ol").replaceChildren();
    return;
  }
  canvas.hidden = false;
  const axes = Object.keys(plan.layouts);
  if (!axes.includes(state.axis)) state.axis = axes.find((a) => a === "tp" && plan.layouts.tp.size > 1) ?? axes.find((a) => plan.layouts[a].size > 1) ?? axes[0];
  for (const axis of axes) {
    const label = document.createElement("label");
    label.className = "axis";
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "axis";
    radio.value = axis;
    radio.checked = axis === state.axis;
    radio.addEventListener("change", () => selectAxis(axis));
    const spans = plan.cluster?.spans?.[axis];
    label.append(radio, ` ${axis} ×${plan.layouts[axis].size}`);
    if (spans && spans.nodes > 1) {
      label.dataset.spans = String(spans.nodes);
      const flag = document.createElement("span");
      flag.className = "spans";
      flag.textContent = ` ⚠ spans ${spans.nodes} nodes`;
      label.append(flag);
    } else if (spans && spans.nvlink_domains > 1) {
      label.dataset.spans = "nvlink";
      const flag = document.createElement("span");
      flag.className = "spans";
      flag.textContent = ` ⚠ spans ${spans.nvlink_domains} NVLink domains`;
      label.append(flag);
    }
    picker.append(label);
  }
  if (state.selected !== null && positionOf(plan, state.selected) < 0) state.selected = null;
  selectAxis(state.axis);
}

function selectAxis(axis) {
  state.axis = axis;
  for (const radio of document.querySelectorAll('#axis-picker input[name="axis"]')) radio.checked = radio.value === axis;
  writeUrl();
  layoutGrid();
  draw();
  showGroupList();
  showDetails(state.selected ?? state.hover);
}

function gpusPerNode(plan) {
  return plan.cluster?.gpus_per_node ?? (numberValue("gpus_per_node") > 0 ? numberValue("gpus_per_node") : 8);
}

function layoutGrid() {
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

function nodeBox(node) {
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
function hitTest(x, y) {
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
const exists = (rank) => (state.plan && positionOf(state.plan, rank) >= 0 ? rank : null);

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const patternCache = new Map();
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

/** Colour and pattern of group ordinal g. */
export function styleOf(g) {
  return { colour: PALETTE[g % PALETTE.length], pattern: PATTERNS[Math.floor(g / PALETTE.length) % PATTERNS.length] };
}

function draw() {
  const plan = state.plan;
  const v = state.view;
  if (!plan || !v) return;
  const t0 = performance.now();
  const ctx = canvas.getContext("2d");
  const ratio = canvas.width / (parseFloat(canvas.style.width) || 1);
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = cssVar("--canvas-bg");
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (v.tooBig) return;
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
      const w = v.aggregate ? v.cell : v.boxW;
      const h = v.aggregate ? v.cell : v.boxH;
      ctx.strokeRect(Math.min(a.x, b.x) - v.gap / 2 + 0.5, a.y - v.gap / 2 + 0.5, Math.max(a.x, b.x) - Math.min(a.x, b.x) + w + v.gap - 1, b.y - a.y + h + v.gap - 1);
    }
    ctx.setLineDash([]);
  }
  if (v.aggregate) drawNodes(ctx, part, ink);
  else drawGpus(ctx, part, ink, muted);
  drawHighlights(ctx, ink);
  canvas.dataset.renderMs = (performance.now() - t0).toFixed(2);
  canvas.dataset.axis = state.axis;
  canvas.dataset.version = String(Number(canvas.dataset.version || 0) + 1);
}

function drawGpus(ctx, part, ink, muted) {
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

function drawNodes(ctx, part, ink) {
  const plan = state.plan;
  const v = state.view;
  // Per node: the group of its first GPU, and whether it holds more than one group of the axis.
  const first = new Int32Array(v.nodes).fill(-1);
  const mixed = new Uint8Array(v.nodes);
  for (let p = 0; p < plan.world_size; p++) {
    const node = Math.floor(rankAt(plan, p) / v.gpn);
    if (first[node] < 0) first[node] = part.ord[p];
    else if (first[node] !== part.ord[p]) mixed[node] = 1;
  }
  v.mixed = mixed;
  for (let node = 0; node < v.nodes; node++) {
    if (first[node] < 0) continue;
    const box = nodeBox(node);
    const { colour, pattern } = styleOf(first[node]);
    ctx.fillStyle = colour;
    ctx.fillRect(box.x, box.y, v.cell, v.cell);
    if (pattern !== "solid" || mixed[node]) {
      ctx.fillStyle = patternFor(ctx, mixed[node] ? "stripes" : pattern, "rgba(0,0,0,0.55)");
      ctx.fillRect(box.x, box.y, v.cell, v.cell);
    }
  }
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

let frame = 0;
function redraw() {
  cancelAnimationFrame(frame);
  frame = requestAnimationFrame(draw);
}

// ------------------------------------------------------------------ details of one GPU
function listText(ranks) {
  const shown = ranks.slice(0, MAX_LISTED).join(", ");
  return ranks.length > MAX_LISTED ? `${shown}, … (${ranks.length - MAX_LISTED} more)` : shown;
}

/** What the details panel shows for global rank r, computed from the compact layouts. */
export function rankView(rank) {
  const plan = state.plan;
  const p = positionOf(plan, rank);
  if (p < 0) return null;
  const gpn = gpusPerNode(plan);
  const out = { rank, node: Math.floor(rank / gpn), local_rank: rank % gpn, coordinates: {}, groups: {} };
  if (plan.cluster?.nvlink_domain) out.nvlink_domain = Math.floor(rank / plan.cluster.nvlink_domain);
  for (const axis of Object.keys(plan.layouts)) {
    out.coordinates[axis] = locate(plan.layouts[axis], p).index;
    out.groups[axis] = groupMembers(plan, axis, p);
  }
  return out;
}

function showDetails(rank) {
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
  if (state.view?.aggregate) facts.textContent += ` · this node holds ${state.view.mixed?.[view.node] ? "several groups" : "one group"} of ${state.axis}`;
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th scope=col>axis</th><th scope=col>size</th><th scope=col>coordinate</th><th scope=col>group members</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const axis of Object.keys(view.groups)) {
    const row = document.createElement("tr");
    row.dataset.axis = axis;
    if (axis === state.axis) row.className = "current";
    const spans = state.plan.cluster?.spans?.[axis]?.nodes;
    for (const text of [axis + (spans > 1 ? ` ⚠${spans} nodes` : ""), String(state.plan.layouts[axis].size), String(view.coordinates[axis]), listText(view.groups[axis])]) {
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

function showGroupList() {
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
    if (locate(layout, p).index !== 0) continue;
    const g = shown;
    const item = document.createElement("li");
    item.dataset.group = String(g);
    const swatch = document.createElement("span");
    swatch.className = `swatch ${styleOf(g).pattern}`;
    swatch.style.background = styleOf(g).colour;
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

// ------------------------------------------------------------------ pointer and keyboard
function pointerRank(event) {
  const rect = canvas.getBoundingClientRect();
  return hitTest(event.clientX - rect.left, event.clientY - rect.top);
}

function select(rank, announce = true) {
  state.selected = rank;
  writeUrl();
  redraw();
  showDetails(rank);
  if (announce && rank !== null) {
    const view = rankView(rank);
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

function onKey(event) {
  if (!state.plan || !state.view || state.view.tooBig) return;
  const keys = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End", "PageUp", "PageDown"];
  const current = state.selected ?? state.hover;
  if (keys.includes(event.key)) {
    event.preventDefault();
    let next = current === null ? 0 : neighbour(current, event.key);
    if (state.view.aggregate && current !== null && ["ArrowLeft", "ArrowRight"].includes(event.key)) {
      next = Math.min(state.view.slots - 1, Math.max(0, current + (event.key === "ArrowLeft" ? -state.view.gpn : state.view.gpn)));
    }
    if (exists(next) !== null) select(next);
  } else if (event.key === "Escape") {
    select(null, false);
    showDetails(state.hover);
  } else if ((event.key === "Enter" || event.key === " ") && current === null) {
    event.preventDefault();
    select(0);
  }
}

// ------------------------------------------------------------------ launch settings and registered jobs
const TARGET_LABELS = { torchrun: "torchrun", slurm: "Slurm", trainjob: "Kubernetes (TrainJob)", kueue: "Kueue", skypilot: "SkyPilot" };

async function detectFeatures() {
  let spec;
  try {
    const response = await fetch(api("openapi.json"));
    if (!response.ok) return;
    spec = await response.json();
  } catch {
    return;
  }
  const paths = spec.paths || {};
  const renderPath = Object.keys(paths).find((p) => /^\/v1\/render\/\{[^}]+\}$/.test(p));
  if (renderPath) {
    const param = (paths[renderPath].post?.parameters || []).find((x) => x.in === "path");
    const schema = param?.schema || {};
    const targets = schema.enum || schema.anyOf?.flatMap((s) => s.enum || []) || ["torchrun", "slurm", "trainjob"];
    state.features.render = { path: renderPath, targets: targets.length ? targets : ["torchrun", "slurm", "trainjob"] };
    setupLaunch();
  }
  if (paths["/v1/jobs"]?.get) {
    state.features.jobs = true;
    $("#jobs").hidden = false;
  }
  document.body.dataset.features = [renderPath ? "render" : "", state.features.jobs ? "jobs" : ""].filter(Boolean).join(" ");
}

function setupLaunch() {
  const box = $("#launch .buttons");
  box.replaceChildren();
  for (const target of state.features.render.targets) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.target = target;
    button.textContent = `Copy ${TARGET_LABELS[target] ?? target} settings`;
    button.addEventListener("click", () => copyLaunch(target));
    box.append(button);
  }
  $("#launch").hidden = false;
}

/** The request for POST /v1/render/{target}: the topology as nodes × processes per node. */
// The render route takes nodes × processes per node (launchers count nodes), not a world size or cluster.
function launchBody() {
  const body = requestBody();
  if (body.nnodes === undefined) {
    const gpn = body.cluster?.gpus_per_node;
    const world = body.world_size;
    const perNode = gpn && world % gpn === 0 ? gpn : world;
    body.nnodes = perNode ? world / perNode : 1;
    body.nproc_per_node = perNode;
  }
  delete body.world_size;
  delete body.cluster;
  delete body.ranks;
  // Multi-node torchrun needs a rendezvous endpoint; a placeholder the user replaces when pasting.
  body.rdzv_endpoint = RDZV_PLACEHOLDER;
  return body;
}
const RDZV_PLACEHOLDER = "head-node:29500";

async function copyLaunch(target) {
  const status = $("#launch .launch-status");
  const area = $("#launch textarea");
  status.textContent = `Rendering ${target}…`;
  let text;
  try {
    const path = state.features.render.path.replace(/\{[^}]+\}/, encodeURIComponent(target));
    const response = await fetch(api(path.slice(1)), {
      method: "POST",
      headers: { "content-type": "application/json", ...authHeader() },
      body: JSON.stringify(launchBody()),
    });
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const errors = data.errors ? data.errors.map((e) => `${e.field}: ${e.detail}`).join("; ") : data.detail || data;
      status.textContent = `Could not render ${target} (${response.status}): ${errors}`;
      return;
    }
    text = typeof data === "string" ? data : data.text ?? data.rendering?.text ?? JSON.stringify(data, null, 2);
    if (typeof data === "object" && data.valid === false) {
      status.textContent = `Not rendered: the topology is invalid (${data.problems?.length ?? 0} problems).`;
      return;
    }
  } catch (error) {
    status.textContent = `Could not render ${target}: ${error.message}`;
    return;
  }
  area.value = text;
  area.hidden = false;
  try {
    await navigator.clipboard.writeText(text);
    const placeholder = text.includes(RDZV_PLACEHOLDER) ? ` Replace ${RDZV_PLACEHOLDER} with your rendezvous host.` : "";
    status.textContent = `Copied the ${TARGET_LABELS[target] ?? target} settings to the clipboard.${placeholder}`;
  } catch {
    area.select();
    status.textContent = `The ${TARGET_LABELS[target] ?? target} settings are below (the clipboard is not available here).`;
  }
}

function authHeader() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function loadJobs() {
  const status = $("#jobs .jobs-status");
  const list = $("#jobs .job-list");
  status.textContent = "Loading jobs…";
  let response;
  let data;
  try {
    response = await fetch(api("v1/jobs"), { headers: authHeader() });
    data = await response.json().catch(() => ({}));
  } catch (error) {
    status.textContent = `Could not load jobs: ${error.message}`;
    return;
  }
  if (response.status === 401 || response.status === 403) {
    $("#jobs .token").hidden = false;
    status.textContent = response.status === 401 ? "The registry needs a bearer token: enter it above." : "This token may not list jobs.";
    $("#f-token").focus();
    return;
  }
  if (!response.ok) {
    status.textContent = `Could not load jobs (${response.status}): ${data.detail ?? ""}`;
    return;
  }
  const jobs = Array.isArray(data) ? data : data.items ?? data.jobs ?? [];
  list.replaceChildren();
  for (const job of jobs) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${job.job_id ?? job.id} · ${job.gpus ?? "?"} GPUs · ${job.state ?? ""}`;
    button.addEventListener("click", () => {
      loadBody(job.request);
      state.selected = null;
      validateNow();
    });
    item.append(button);
    list.append(item);
  }
  status.textContent = `${jobs.length} job${jobs.length === 1 ? "" : "s"}${data.next_cursor ? " (first page)" : ""}.`;
}

// ------------------------------------------------------------------ wiring
function init() {
  for (const input of form.querySelectorAll(".field")) {
    if (!input.querySelector(".msgs")) {
      const box = document.createElement("div");
      box.className = "msgs";
      input.append(box);
    }
  }
  readUrl();
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
  $("#f-goto").addEventListener("change", (event) => {
    const rank = Number(event.target.value);
    if (state.plan && Number.isInteger(rank) && exists(rank) !== null) select(rank);
  });
  $("#jobs [data-action=load-jobs]").addEventListener("click", loadJobs);
  $("#jobs [data-action=save-token]").addEventListener("click", () => {
    sessionStorage.setItem(TOKEN_KEY, $("#f-token").value.trim());
    $("#f-token").value = "";
    $("#jobs .token").hidden = true;
    loadJobs();
  });
  window.addEventListener("resize", () => { if (state.plan) { layoutGrid(); redraw(); } });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => { patternCache.clear(); redraw(); });
  window.addEventListener("hashchange", () => { readUrl(); validateNow(); });
  detectFeatures();
  validateNow();
}

// A small read-only window onto the viewer for tests and the browser console.
window.meshViewer = {
  get plan() { return state.plan; },
  get axis() { return state.axis; },
  get selected() { return state.selected; },
  get view() { return state.view && { ...state.view, mixed: undefined }; },
  groups(axis = state.axis) {
    const plan = state.plan;
    const layout = plan.layouts[axis];
    const offs = offsets(layout);
    const part = axisPartition(axis);
    const out = [];
    for (let p = 0; p < plan.world_size; p++) if (part.index[p] === 0) out[part.ord[p]] = offs.map((o) => rankAt(plan, p + o));
    return out;
  },
  groupOf(rank, axis = state.axis) { return axisPartition(axis).ord[positionOf(state.plan, rank)]; },
  styleOf,
  cellRect,
  rankView,
  select: (rank) => select(rank),
};

init();
