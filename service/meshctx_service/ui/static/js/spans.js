// Which axes are flagged (⚠) for leaving a node or an NVLink domain: exactly those the service's answer warns about
// (a warning that names `<axis>_size`, from the planner's one rule, meshctx.plan.cluster.cluster_warnings), so the
// viewer, the CLI and the registry agree. The spans themselves are shown for every axis; they are never re-judged here.
import { state } from "./state.js";

const SPAN_CODES = { axis_spans_nodes: "nodes", axis_spans_nvlink_domain: "nvlink_domains" };

/** The service's warning that groups of `axis` leave their node or NVLink domain, or undefined. */
export function spanWarning(axis, warnings = state.report?.warnings ?? []) {
  return warnings.find((w) => w.code in SPAN_CODES && (w.fields || []).includes(`${axis}_size`));
}

/** How far one group of `axis` reaches: {nodes, nvlink_domains, warn}, or null when the plan has no cluster; `warn` is
 * the unit the service warned about ("nodes" or "nvlink_domains"), or null. */
export function spanOf(plan, axis) {
  const spans = plan.cluster?.spans?.[axis];
  if (!spans) return null;
  const warning = spanWarning(axis);
  return { nodes: spans.nodes, nvlink_domains: spans.nvlink_domains, warn: warning ? SPAN_CODES[warning.code] : null };
}

/** Short text for the axis picker and the details table: "⚠ spans 2 nodes" (warned) or "4 nodes" (shown only). */
export function spanText(span) {
  if (!span) return "";
  if (span.warn === "nvlink_domains") return `⚠ spans ${span.nvlink_domains} NVLink domains`;
  if (span.warn) return `⚠ spans ${span.nodes} nodes`;
  return span.nodes > 1 ? `${span.nodes} nodes` : "";
}
