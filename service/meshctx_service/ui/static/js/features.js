// The optional panels, shown when the service's OpenAPI document offers their routes: launch settings (render)
// and registered jobs.
import { fetchOpenapi } from "./api.js";
import { $ } from "./dom.js";
import { setupLaunch } from "./launch.js";
import { state } from "./state.js";

const DEFAULT_TARGETS = ["torchrun", "slurm", "trainjob"];

export async function detectFeatures() {
  const spec = await fetchOpenapi();
  if (!spec) return;
  const paths = spec.paths || {};
  const renderPath = Object.keys(paths).find((p) => /^\/v1\/render\/\{[^}]+\}$/.test(p));
  if (renderPath) {
    const param = (paths[renderPath].post?.parameters || []).find((x) => x.in === "path");
    const schema = param?.schema || {};
    const targets = schema.enum || schema.anyOf?.flatMap((s) => s.enum || []) || DEFAULT_TARGETS;
    state.features.render = { path: renderPath, targets: targets.length ? targets : DEFAULT_TARGETS };
    setupLaunch();
  }
  if (paths["/v1/jobs"]?.get) {
    state.features.jobs = true;
    $("#jobs").hidden = false;
  }
  document.body.dataset.features = [renderPath ? "render" : "", state.features.jobs ? "jobs" : ""].filter(Boolean).join(" ");
}
