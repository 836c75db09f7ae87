// The form's strategy choices, size fields and model-shape fields, built from the library's tables
// (GET /ui/meta.json, service/meshctx_service/ui/meta.py): the page keeps no list of its own.
import { $, form } from "./dom.js";

/** What the library offers, as the other modules read it once buildFields has run. */
export const vocabulary = {
  strategies: [], // names, in the library's order
  sizes: [], // {field, axis, default, blank}
  sizeFields: [], // "tp_size", ...
  modelFields: [], // "num_attention_heads", ...
};

// Wording only: a model field the library adds later is shown under its own name.
const MODEL_LABELS = {
  num_attention_heads: "Attention heads",
  num_key_value_heads: "KV heads",
  num_experts: "Experts",
  num_hidden_layers: "Layers",
  seq_length: "Sequence length",
  global_batch_size: "Global batch",
  micro_batch_size: "Micro batch",
};

/** The value a size field falls back to when a request or URL leaves it out ("" for a blank field). */
export function sizeDefault(field) {
  return vocabulary.sizes.find((s) => s.field === field)?.default ?? "";
}

function numberField(id, name, labelText, value) {
  const box = document.createElement("div");
  box.className = "field";
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = labelText;
  const input = document.createElement("input");
  input.id = id;
  input.name = name;
  input.type = "number";
  input.min = "1";
  if (value !== null && value !== undefined) input.defaultValue = String(value); // what form.reset() restores
  box.append(label, input);
  return box;
}

/** Fill the form from the vocabulary; the size fieldset's data-initial holds the opening topology's sizes. */
export function buildFields(meta) {
  vocabulary.strategies = meta.strategies.map((s) => s.name);
  vocabulary.sizes = meta.sizes;
  vocabulary.sizeFields = meta.sizes.map((s) => s.field);
  vocabulary.modelFields = meta.model_fields;

  const select = form.elements.strategy;
  select.replaceChildren(...vocabulary.strategies.map((name) => new Option(name, name)));

  const sizes = $('[data-fields="sizes"]');
  const initial = new URLSearchParams(sizes.dataset.initial ?? "");
  for (const { field, axis, default: value, blank } of meta.sizes) {
    const label = blank ? `${axis} (blank: ${blank})` : axis;
    sizes.append(numberField(`f-${field}`, field, label, initial.get(field) ?? value));
  }
  const model = $('[data-fields="model"]');
  for (const name of meta.model_fields) model.append(numberField(`f-${name}`, `model.${name}`, MODEL_LABELS[name] ?? name));
}
