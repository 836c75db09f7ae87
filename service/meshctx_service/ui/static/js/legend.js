// The legend under the axis picker: what colours, patterns, outlines and flags mean in the GPU grid, or how to read
// the nested blocks; always for the chosen axis, with its counts.
import { styleOf } from "./canvas.js";
import { $ } from "./dom.js";
import { spanOf } from "./spans.js";
import { state } from "./state.js";

const PATTERN_WORDS = { solid: "solid", stripes: "striped", dots: "dotted", cross: "cross-hatched" };

function item(key, ...parts) {
  const li = document.createElement("li");
  li.dataset.key = key;
  li.append(...parts);
  return li;
}

function swatch(g) {
  const s = document.createElement("span");
  s.className = `swatch ${styleOf(g).pattern}`;
  s.style.backgroundColor = styleOf(g).colour;
  s.setAttribute("aria-hidden", "true");
  return s;
}

/** Fill #legend for the current plan, axis and view. */
export function showLegend() {
  const list = $("#legend ul");
  list.replaceChildren();
  const plan = state.plan;
  const v = state.view;
  if (!plan || !v) return;
  const axis = state.axis;
  const size = plan.layouts[axis].size;
  const count = plan.world_size / size;
  const span = spanOf(plan, axis);
  const reach = span ? ` · one group spans ${span.nodes} node${span.nodes === 1 ? "" : "s"}` : "";
  if (v.blocks) {
    list.append(
      item("blocks", "Each box is one coordinate along a mesh axis (outermost first); the boxes inside it are the next axis."),
      item("node", "Thick border: one node."),
      item("axis", `Shaded levels: where ${axis} runs. One ${axis} group = one block at each shaded level, the rest fixed: ${count} groups of ${size} GPUs${reach}.`),
      item("gpus", `Highlighted GPUs: the open GPU's ${axis} group, as far as it lies in the open node.`),
    );
  } else {
    const colours = item("colour", swatch(0), swatch(1), swatch(2), ` Colour: one ${axis} group (${count} group${count === 1 ? "" : "s"} of ${size} GPUs${reach}).`);
    list.append(colours);
    if (count > 8) {
      const kinds = Math.min(4, Math.ceil(count / 8));
      const parts = [];
      for (let k = 0; k < kinds; k++) parts.push(k ? ", " : "", swatch(k * 8), ` groups ${k * 8}–${Math.min(count, k * 8 + 8) - 1} ${PATTERN_WORDS[styleOf(k * 8).pattern]}`);
      const patterns = item("patterns", "Eight colours, then the same colours with a pattern: ", ...parts);
      if (count > 32) patterns.append(`; from group 32 the styles repeat, so hover a GPU to outline exactly its group.`);
      list.append(patterns);
    }
    list.append(item("outline", "Dark outline: the hovered or selected GPU's group; blue: that GPU."));
    if (v.nvl && v.nodesPerDomain > 1) list.append(item("nvlink", `Dashed line: one NVLink domain of ${v.nvl} GPUs.`));
  }
  list.append(
    item("flags", "⚠ on an axis: the service warns that its groups leave a node (or, when an NVLink domain is given, the domain); only tp and ep are warned about, since they talk on every layer. Other axes span nodes by design (shown as a node count)."),
  );
}
