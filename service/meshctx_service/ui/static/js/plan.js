// Reading the plan: global ranks ↔ mesh positions, and groups computed from its compact layouts (layout.js), so a
// 131072-GPU plan costs the same small payload as an 8-GPU one (docs/problem-codes.md "Layouts").
import { numberValue } from "./form.js";
import { groupPositions, partition } from "./layout.js";
import { state } from "./state.js";

/** The global rank at mesh position p (a rank subset maps positions to its own ranks). */
export const rankAt = (plan, p) => (plan.ranks ? plan.ranks[p] : p);

/** The mesh position of a global rank, or -1 when the plan does not hold it. */
export function positionOf(plan, rank) {
  if (!plan.ranks) return rank >= 0 && rank < plan.world_size ? rank : -1;
  if (!plan._pos) plan._pos = new Map(plan.ranks.map((r, p) => [r, p]));
  return plan._pos.has(rank) ? plan._pos.get(rank) : -1;
}

/** `rank` when the current plan holds it, else null. */
export const exists = (rank) => (state.plan && positionOf(state.plan, rank) >= 0 ? rank : null);

/** Global ranks of the `axis` group holding position p (MeshPlan.group). */
export function groupMembers(plan, axis, p) {
  return groupPositions(plan.layouts[axis], p).map((q) => rankAt(plan, q));
}

/** Every position's group ordinal and index along `axis` for the current plan, computed once per plan. */
export function axisPartition(axis) {
  if (!state.groupCache.has(axis)) state.groupCache.set(axis, partition(state.plan.layouts[axis], state.plan.world_size));
  return state.groupCache.get(axis);
}

export function gpusPerNode(plan) {
  return plan.cluster?.gpus_per_node ?? (numberValue("gpus_per_node") > 0 ? numberValue("gpus_per_node") : 8);
}
