// The form as a request body (what POST /v1/validate receives) and as URL state (what a shared link restores).
import { $, form } from "./dom.js";
import { sizeDefault, vocabulary } from "./fields.js";
import { state } from "./state.js";

/** "world" (a world size) or "nodes" (nodes × GPUs per node). */
export const mode = () => form.elements.world_mode.value;
const intOrString = (text) => (/^-?\d+$/.test(text) ? Number(text) : text);

/** A field's number; its text when not a number (the service names the field); null when blank. */
export const numberValue = (name) => {
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
  for (const name of vocabulary.sizeFields) {
    const value = numberValue(name);
    if (value !== null) sizes[name] = value;
  }
  body.sizes = sizes;
  const nvlink = numberValue("nvlink_domain");
  if (gpn !== null) body.cluster = { gpus_per_node: gpn, nvlink_domain: nvlink };
  const model = {};
  for (const name of vocabulary.modelFields) {
    const value = numberValue(`model.${name}`);
    if (value !== null) model[name] = value;
  }
  if (Object.keys(model).length) body.model = model;
  return body;
}

export function setField(name, value) {
  const el = form.elements.namedItem(name);
  if (el) el.value = value === null || value === undefined ? "" : String(value);
}

export function setMode(value) {
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
  for (const name of vocabulary.sizeFields) setField(name, body.sizes?.[name] ?? sizeDefault(name));
  for (const name of vocabulary.modelFields) setField(`model.${name}`, body.model?.[name]);
  if (body.model && Object.values(body.model).some((v) => v !== null)) $("#model-shape").open = true;
}

// ------------------------------------------------------------------ URL state: the form, the axis and the selection
export function writeUrl() {
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

/** Restore the form, axis and selection from the URL's fragment; false when it holds none. */
export function readUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (![...params.keys()].length) return false;
  form.reset();
  setMode(params.get("mode") === "nodes" ? "nodes" : "world");
  for (const name of ["world_size", "nnodes", "gpus_per_node", "nvlink_domain"]) setField(name, params.get(name) ?? "");
  for (const name of vocabulary.sizeFields) setField(name, params.get(name) ?? sizeDefault(name));
  if (params.has("strategy")) setField("strategy", params.get("strategy"));
  for (const name of vocabulary.modelFields) setField(`model.${name}`, params.get(`model.${name}`));
  if (vocabulary.modelFields.some((n) => params.get(`model.${n}`))) $("#model-shape").open = true;
  state.axis = params.get("axis");
  const rank = params.get("rank");
  state.selected = rank !== null && /^\d+$/.test(rank) ? Number(rank) : null;
  return true;
}
