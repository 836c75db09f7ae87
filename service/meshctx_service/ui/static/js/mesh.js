// The planned mesh on the page: the axis picker (flagging axes whose groups span nodes or NVLink domains), and
// everything redrawn when the plan or the chosen axis changes.
import { draw } from "./canvas.js";
import { showDetails, showGroupList } from "./details.js";
import { $, canvas } from "./dom.js";
import { writeUrl } from "./form.js";
import { layoutGrid } from "./grid.js";
import { positionOf } from "./plan.js";
import { state } from "./state.js";

/** Show `plan` (null: none) and, for an elastic range, which world sizes in it are valid. */
export function setPlan(plan, worldSizes) {
  state.plan = plan;
  state.groupCache.clear();
  state.hover = null;
  const picker = $("#axis-picker");
  picker.replaceChildren();
  state.rangeText = worldSizes
    ? `Node range: ${worldSizes.map((w) => `${w.world_size} ${w.valid ? "✓" : "✗"}`).join(", ")}. `
    : "";
  $("#mesh-info").textContent = state.rangeText;
  if (!plan) {
    canvas.hidden = true;
    $("#details").replaceChildren();
    $("#group-list ol").replaceChildren();
    return;
  }
  canvas.hidden = false;
  const axes = Object.keys(plan.layouts);
  if (!axes.includes(state.axis)) state.axis = axes.find((a) => a === "tp" && plan.layouts.tp.size > 1) ?? axes.find((a) => plan.layouts[a].size > 1) ?? axes[0];
  for (const axis of axes) {
    const label = document.createElement("label");
    label.className = "axis";
    const radio = document.createElement("input");
    radio.type = "radio";
    radio.name = "axis";
    radio.value = axis;
    radio.checked = axis === state.axis;
    radio.addEventListener("change", () => selectAxis(axis));
    const spans = plan.cluster?.spans?.[axis];
    label.append(radio, ` ${axis} ×${plan.layouts[axis].size}`);
    if (spans && spans.nodes > 1) {
      label.dataset.spans = String(spans.nodes);
      const flag = document.createElement("span");
      flag.className = "spans";
      flag.textContent = ` ⚠ spans ${spans.nodes} nodes`;
      label.append(flag);
    } else if (spans && spans.nvlink_domains > 1) {
      label.dataset.spans = "nvlink";
      const flag = document.createElement("span");
      flag.className = "spans";
      flag.textContent = ` ⚠ spans ${spans.nvlink_domains} NVLink domains`;
      label.append(flag);
    }
    picker.append(label);
  }
  if (state.selected !== null && positionOf(plan, state.selected) < 0) state.selected = null;
  selectAxis(state.axis);
}

export function selectAxis(axis) {
  state.axis = axis;
  for (const radio of document.querySelectorAll('#axis-picker input[name="axis"]')) radio.checked = radio.value === axis;
  writeUrl();
  layoutGrid();
  draw();
  showGroupList();
  showDetails(state.selected ?? state.hover);
}
