// Launch settings: the current topology rendered by POST /v1/render/{target} and copied to the clipboard.
import { postRender } from "./api.js";
import { $ } from "./dom.js";
import { requestBody } from "./form.js";
import { state } from "./state.js";

const TARGET_LABELS = { torchrun: "torchrun", slurm: "Slurm", trainjob: "Kubernetes (TrainJob)", kueue: "Kueue", skypilot: "SkyPilot" };
// Multi-node torchrun needs a rendezvous endpoint; a placeholder the user replaces when pasting.
const RDZV_PLACEHOLDER = "head-node:29500";

/** One "Copy … settings" button per target the service renders (state.features.render). */
export function setupLaunch() {
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

/** The request for POST /v1/render/{target}: the topology as nodes × processes per node (launchers count nodes). */
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
  body.rdzv_endpoint = RDZV_PLACEHOLDER;
  return body;
}

async function copyLaunch(target) {
  const status = $("#launch .launch-status");
  const area = $("#launch textarea");
  status.textContent = `Rendering ${target}…`;
  let text;
  try {
    const response = await postRender(state.features.render.path, target, launchBody());
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
