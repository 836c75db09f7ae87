// The planner's suggestions as buttons: each applies its sizes to the form.
import { $ } from "./dom.js";

/** Show `suggestions`; a click calls `apply(sizes)`. */
export function showSuggestions(suggestions, apply) {
  const box = $("#suggestions .buttons");
  box.replaceChildren();
  $("#suggestions").hidden = !suggestions.length;
  for (const suggestion of suggestions) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "suggestion";
    const sizes = Object.entries(suggestion.sizes)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k.replace(/_size$/, "")} ${v}`)
      .join(", ");
    button.textContent = `Apply: ${suggestion.reason}`;
    button.title = sizes;
    button.setAttribute("aria-label", `Apply suggestion ${suggestion.reason} (${sizes})`);
    button.addEventListener("click", () => apply(suggestion.sizes));
    box.append(button);
  }
}
