// CuTe-style layouts: the browser twin of src/meshctx/plan/layout.py (AxisLayout), same algebra, same names in
// camelCase, so the viewer computes any rank's group from the plan's compact layouts without a request per rank.
//
// A layout is the plan's wire form {size, sizes, strides}: modes (size, stride) listed outermost first. The group
// holding mesh position 0 is every Σ c_i·stride_i; every other group of the axis is a translate of it. Layouts built
// by the planner are digit-aligned: the coordinate of position p in mode i is ⌊p / stride_i⌋ mod size_i.
// They arrive already normalized (AxisLayout.to_dict), so building layouts and from_dict stay in Python.

/** A normalized layout: size-1 modes dropped, adjacent contiguous modes merged (AxisLayout.of). */
export function of(sizes, strides) {
  if (sizes.length !== strides.length) throw new Error(`layout sizes [${sizes}] and strides [${strides}] differ in length`);
  const modes = [];
  for (let i = 0; i < sizes.length; i++) {
    if (sizes[i] === 1) continue;
    const last = modes[modes.length - 1];
    if (last && last[1] === sizes[i] * strides[i]) modes[modes.length - 1] = [last[0] * sizes[i], strides[i]];
    else modes.push([sizes[i], strides[i]]);
  }
  const out = { sizes: modes.map((m) => m[0]), strides: modes.map((m) => m[1]) };
  return { size: size(out), ...out };
}

/** Members of one group (AxisLayout.size). */
export function size(layout) {
  return layout.sizes.reduce((a, b) => a * b, 1);
}

/** Positions of the group that contains position 0, in the group's own (row-major) order (AxisLayout.offsets). */
export function offsets(layout) {
  let out = [0];
  for (let i = 0; i < layout.sizes.length; i++) {
    const next = [];
    for (const o of out) for (let c = 0; c < layout.sizes[i]; c++) next.push(o + c * layout.strides[i]);
    out = next;
  }
  return out;
}

/** Index of `position` inside its group, its coordinate along this axis (AxisLayout.local_index). */
export function localIndex(layout, position) {
  let index = 0;
  for (let i = 0; i < layout.sizes.length; i++) {
    index = index * layout.sizes[i] + (Math.floor(position / layout.strides[i]) % layout.sizes[i]);
  }
  return index;
}

/** The position at index 0 of the group that contains `position` (AxisLayout.base). */
export function base(layout, position) {
  let out = position;
  for (let i = 0; i < layout.sizes.length; i++) {
    out -= (Math.floor(position / layout.strides[i]) % layout.sizes[i]) * layout.strides[i];
  }
  return out;
}

/** Positions of the group that contains `position`, in group order (AxisLayout.group_positions). */
export function groupPositions(layout, position) {
  const first = base(layout, position);
  return offsets(layout).map((o) => first + o);
}

/** The layout whose offsets are the bases of all groups in a space of `total` positions (AxisLayout.complement). */
export function complement(layout, total) {
  const modes = layout.sizes.map((s, i) => [layout.strides[i], s]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 1;
  const gaps = [];
  for (const [stride, s] of modes) {
    if (stride % covered) throw new Error(`layout (${layout.sizes}):(${layout.strides}) is not digit-aligned`);
    if (stride > covered) gaps.push([stride / covered, covered]);
    covered = s * stride;
  }
  if (total % covered) throw new Error(`layout (${layout.sizes}):(${layout.strides}) does not tile ${total} positions`);
  if (total > covered) gaps.push([total / covered, covered]);
  gaps.reverse();
  return of(gaps.map((g) => g[0]), gaps.map((g) => g[1]));
}

/** Every group over `total` positions, ordered by their first position (AxisLayout.all_groups). */
export function allGroups(layout, total) {
  const offs = offsets(layout);
  const bases = offsets(complement(layout, total)).sort((a, b) => a - b);
  return bases.map((b) => offs.map((o) => b + o));
}

/**
 * Browser only (the canvas colours every GPU on each redraw): for every position, the ordinal of its group (groups
 * numbered by their first position, as allGroups orders them) and its index in it, in one pass without allocation.
 */
export function partition(layout, total) {
  const ord = new Int32Array(total);
  const index = new Int32Array(total);
  const { sizes, strides } = layout;
  let count = 0;
  for (let p = 0; p < total; p++) {
    let first = p;
    let idx = 0;
    for (let i = 0; i < sizes.length; i++) {
      const c = Math.floor(p / strides[i]) % sizes[i];
      first -= c * strides[i];
      idx = idx * sizes[i] + c;
    }
    ord[p] = first === p ? count++ : ord[first];
    index[p] = idx;
  }
  return { ord, index, count };
}
