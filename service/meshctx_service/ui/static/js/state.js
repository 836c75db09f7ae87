// The viewer's one mutable state, shared by its modules; main.js exposes a read-only window onto it (meshViewer).

export const state = {
  report: null, // last validation report
  plan: null,
  axis: null,
  selected: null, // sticky selection (global rank)
  hover: null,
  view: null, // geometry of the drawing (grid.js)
  groupCache: new Map(), // axis -> {ord, index, count}
  inflight: null,
  rangeText: "",
  timer: null,
  features: { render: null, jobs: false },
};
