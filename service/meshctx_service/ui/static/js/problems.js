// Problems next to the fields they name (with a pointer from every other field they name); the rest in a summary.
import { $, form } from "./dom.js";
import { mode } from "./form.js";

// Request paths the service names that are entered under another field of the form.
const FIELD_ALIASES = {
  nproc_per_node: "gpus_per_node",
  "cluster.gpus_per_node": "gpus_per_node",
  "cluster.nvlink_domain": "nvlink_domain",
  "cluster": "gpus_per_node",
};

/** The visible input a problem's field path refers to, or null. */
function inputFor(field) {
  let name = field.replace(/^(sizes|body)\./, "");
  if (mode() === "nodes" && name === "world_size") name = "nnodes";
  if (mode() === "world" && name === "nnodes") name = "world_size";
  name = FIELD_ALIASES[name] ?? name;
  const el = form.elements.namedItem(name);
  return el && el.id && !el.closest("[hidden]") ? el : null;
}

const labelOf = (input) => form.querySelector(`label[for="${input.id}"]`)?.textContent ?? input.name;

/** Give every field a box for its messages (once the form's fields exist). */
export function addMessageBoxes() {
  for (const field of form.querySelectorAll(".field")) {
    if (!field.querySelector(".msgs")) {
      const box = document.createElement("div");
      box.className = "msgs";
      field.append(box);
    }
  }
}

export function clearMessages() {
  for (const box of form.querySelectorAll(".msgs")) box.replaceChildren();
  for (const el of form.querySelectorAll("[aria-invalid], [aria-describedby]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-describedby");
  }
  for (const field of form.querySelectorAll(".field[data-severity]")) field.removeAttribute("data-severity");
  $("#summary ul").replaceChildren();
  $("#summary").hidden = true;
}

let messageId = 0;
export function placeMessage(problem) {
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
