// Asking "are you sure?" inside the page: the row's buttons make way for the question, a button
// that does it and Cancel. (The page never opens a browser dialog: a test treats any dialog as a
// sign that an injected script ran.)

import {h} from "./dom.js";

/**
 * In `box` (an element holding a row's buttons), ask `question`; `yes` is the label of the
 * button that goes ahead and runs `onYes()` (may be async; the buttons come back when it
 * fails). Cancel puts the buttons back and focuses the one that asked.
 */
export function confirmInline(box, question, yes, onYes) {
  const before = [...box.childNodes];
  const asker = document.activeElement;
  const restore = () => {
    box.replaceChildren(...before);
    if (asker && box.contains(asker)) asker.focus();
  };
  const go = h("button", {type: "button", class: "danger", on: {click: async () => {
    go.disabled = true;
    try {
      await onYes();
    } catch {
      restore(); // the caller has shown the error
    }
  }}}, yes);
  const cancel = h("button", {type: "button", on: {click: restore}}, "Cancel");
  box.replaceChildren(h("p", {class: "confirm", role: "alert"}, question), go, cancel);
  cancel.focus();
}
