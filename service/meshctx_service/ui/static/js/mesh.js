// The planned mesh on the page: the axis picker (flagging the axes whose groups leave a node where that hurts),
// the legend, and everything redrawn when the plan or the chosen axis changes; with no plan, why there is none.
import { draw } from "./canvas.js";
import { showDetails, showGroupList } from "./details.js";
import { $, canvas } from "./dom.js";
import { writeUrl } from "./form.js";
import { layoutGrid } from "./grid.js";
import { showLegend } from "./legend.js";
import { positionOf } from "./plan.js";
import { spanOf, spanText } from "./spans.js";
import { state } from "./state.js";

/**
 * Show `plan` and, for an elastic range, which world sizes in it are valid. With no plan (null) the whole mesh pane
 * is cleared, so nothing from an earlier topology stays on screen, and `why` says what is missing.
 */
export function setPlan(plan, worldSizes, why = "") {
  state.plan = plan;
  state.groupCache.clear();
  state.hover = null;
  state.view = null;
  const picker = $("#axis-picker");
  picker.replaceChildren();
  state.rangeText = worldSizes
    ? `Node range: ${worldSizes.map((w) => `${w.world_size} ${w.valid ? "✓" : "✗"}`).join(", ")}. `
    : "";
  $("#mesh-info").textContent = state.rangeText;
  $("#mesh-view").hidden = !plan;
  $("#mesh-empty").hidden = !!plan;
  if (!plan) {
    canvas.hidden = true;
    $("#mesh-empty").textContent = `${state.rangeText}${why || "No mesh to show."}`;
    $("#details").replaceChildren();
    delete $("#details").dataset.rank;
    $("#group-list ol").replaceChildren();
    $("#group-list summary").textContent = "Groups of the selected axis";
    $("#blocks").replaceChildren();
    $("#legend ul").replaceChildren();
    return;
  }
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
    label.append(radio, ` ${axis} ×${plan.layouts[axis].size}`);
    const span = spanOf(plan, axis);
    const text = spanText(span);
    if (text) {
      label.dataset.spans = String(span.nodes);
      if (span.warn) label.dataset.warn = "";
      const flag = document.createElement("span");
      flag.className = span.warn ? "spans warn" : "spans";
      flag.textContent = ` ${span.warn ? text : `· ${text}`}`;
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
  showLegend();
  showGroupList();
  showDetails(state.selected ?? state.hover);
}
