// Live validation: the form debounced into POST /v1/validate, answered by the verdict, the problems next to their
// fields, the suggestions and the planned mesh.
import { postValidate } from "./api.js";
import { $ } from "./dom.js";
import { vocabulary } from "./fields.js";
import { requestBody, setField, writeUrl } from "./form.js";
import { setPlan } from "./mesh.js";
import { clearMessages, placeMessage } from "./problems.js";
import { state } from "./state.js";
import { showSuggestions } from "./suggestions.js";

const DEBOUNCE_MS = 180;

export function setVerdict(kind, text) {
  const verdict = $("#verdict");
  verdict.dataset.state = kind;
  verdict.textContent = text;
}

export function scheduleValidate() {
  clearTimeout(state.timer);
  setVerdict("pending", "Checking…");
  state.timer = setTimeout(validateNow, DEBOUNCE_MS);
}

export async function validateNow() {
  clearTimeout(state.timer);
  state.inflight?.abort();
  const controller = new AbortController();
  state.inflight = controller;
  writeUrl();
  let response;
  let data;
  try {
    response = await postValidate(requestBody(), controller.signal);
    data = await response.json();
  } catch (error) {
    if (error.name === "AbortError") return;
    if (state.inflight !== controller) return;
    setVerdict("error", `The service did not answer: ${error.message}`);
    setPlan(null, undefined, `No mesh: the service did not answer (${error.message}); edit the form to try again.`);
    return;
  }
  if (state.inflight !== controller) return; // a newer request was sent meanwhile
  state.inflight = null;
  if (response.ok) showReport(data);
  else showRefusal(response.status, data);
}

function applySuggestion(sizes) {
  for (const name of vocabulary.sizeFields) setField(name, sizes[name]);
  validateNow();
}

function showRefusal(status, data) {
  clearMessages();
  showSuggestions([], applySuggestion);
  const errors = data.errors || [{ field: "body", detail: data.detail || `HTTP ${status}` }];
  for (const e of errors) placeMessage({ severity: "error", code: "invalid_request", fields: [e.field], message: `${e.field}: ${e.detail}`, hint: "" });
  const fields = `${errors.length} field${errors.length === 1 ? "" : "s"} to fix`;
  setVerdict("invalid", `Request not accepted (${status}): ${fields}.`);
  setPlan(null, undefined, `No mesh: the request was not accepted (${status}, ${fields}; marked in the form).`);
}

function showReport(report) {
  state.report = report;
  clearMessages();
  for (const problem of [...report.problems, ...report.warnings]) placeMessage(problem);
  showSuggestions(report.suggestions || [], applySuggestion);
  const plan = report.plan;
  if (report.valid && plan) {
    const shape = plan.device_mesh
      ? plan.device_mesh.axes.map((a, i) => `${a} ${plan.device_mesh.shape[i]}`).join(" × ")
      : `dp ${plan.sizes.dp} (no device mesh)`;
    const warn = report.warnings.length ? `, ${report.warnings.length} warning${report.warnings.length === 1 ? "" : "s"}` : "";
    setVerdict("valid", `Valid: ${plan.strategy} on ${plan.world_size} GPUs — ${shape}${warn}.`);
  } else {
    const n = report.problems.length;
    setVerdict("invalid", `Invalid: ${n} problem${n === 1 ? "" : "s"}${report.suggestions?.length ? "; see the suggestions" : ""}.`);
  }
  setPlan(report.valid ? plan : null, report.world_sizes, report.valid ? "" : whyInvalid(report));
}

/** The empty mesh pane's explanation: the first problem, how many more, and where the fixes are. */
function whyInvalid(report) {
  const [first, ...rest] = report.problems;
  const more = rest.length ? ` (and ${rest.length} more problem${rest.length === 1 ? "" : "s"})` : "";
  const fix = report.suggestions?.length ? "Apply a suggestion, or fix the fields marked in the form." : "Fix the fields marked in the form.";
  return `No mesh: this topology is invalid. ${first ? first.message : "The planner refused it."}${more} ${fix}`;
}
