// Registered jobs: GET /v1/jobs (asking for a bearer token when the registry wants one); a job opens in the form.
import { getJobs, saveToken } from "./api.js";
import { $ } from "./dom.js";

/** List the registry's jobs; clicking one calls `open(job.request)`. */
export async function loadJobs(open) {
  const status = $("#jobs .jobs-status");
  const list = $("#jobs .job-list");
  status.textContent = "Loading jobs…";
  let response;
  let data;
  try {
    response = await getJobs();
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
    button.textContent = `${job.job_id ?? job.id} · ${job.gpus ?? "?"} GPUs · ${job.state ?? ""}${heldNodes(job)}`;
    button.addEventListener("click", () => open(job.request));
    item.append(button);
    list.append(item);
  }
  status.textContent = `${jobs.length} job${jobs.length === 1 ? "" : "s"}${data.next_cursor ? " (first page)" : ""}.`;
}

/** " · holds gpu1, gpu2 … (N nodes) on CLUSTER" for a job holding nodes (the registry's occupancy), else "". */
function heldNodes(job) {
  const nodes = Array.isArray(job.nodes) ? job.nodes : [];
  const active = job.state === "registered" || job.state === "running";
  if (!nodes.length || !active) return "";
  const shown = nodes.slice(0, 4).join(", ") + (nodes.length > 4 ? ` … (${nodes.length} nodes)` : "");
  return ` · holds ${shown}${job.cluster ? ` on ${job.cluster}` : ""}`;
}

/** Keep the token typed in the jobs panel for this tab's session, then list again. */
export function useToken(open) {
  saveToken($("#f-token").value.trim());
  $("#f-token").value = "";
  $("#jobs .token").hidden = true;
  loadJobs(open);
}
