// Which axes deserve a warning when one of their groups leaves a node or an NVLink domain: the ones that talk on
// every layer (tp, cp) or every MoE layer (ep). dp-like axes and pp span nodes by design; that is shown, not flagged.
export const LOCAL_AXES = new Set(["tp", "cp", "ep"]);

/** How far one group of `axis` reaches: {nodes, nvlink_domains, warn}, or null when the plan has no cluster. */
export function spanOf(plan, axis) {
  const spans = plan.cluster?.spans?.[axis];
  if (!spans) return null;
  const leaves = spans.nodes > 1 || spans.nvlink_domains > 1;
  return { nodes: spans.nodes, nvlink_domains: spans.nvlink_domains, warn: leaves && LOCAL_AXES.has(axis) };
}

/** Short text for the axis picker and the details table: "⚠ spans 2 nodes" (warned) or "4 nodes" (by design). */
export function spanText(span) {
  if (!span) return "";
  if (span.warn) return span.nodes > 1 ? `⚠ spans ${span.nodes} nodes` : `⚠ spans ${span.nvlink_domains} NVLink domains`;
  return span.nodes > 1 ? `${span.nodes} nodes` : "";
}
