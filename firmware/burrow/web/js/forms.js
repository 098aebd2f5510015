// Form fields with their own error line, and marking every field an API error names.

import {h, text} from "./dom.js";

/**
 * A labelled input with an error line under it. `name` is the API's field name (details[].field);
 * `help` an optional hint. Returns {wrap, input, error}.
 */
export function field(id, label, name, attrs = {}, help = "") {
  const errorId = `${id}-error`;
  const helpId = help ? `${id}-help` : null;
  const input = h("input", {id, name, "aria-describedby": [helpId, errorId].filter(Boolean).join(" "), ...attrs});
  const error = h("small", {id: errorId, class: "field-error"});
  const wrap = h("div", {class: "field"}, h("label", {for: id}, label), input,
    help ? h("small", {id: helpId}, help) : null, error);
  return {wrap, input, error, name, label};
}

export function clearFieldErrors(fields) {
  for (const f of fields) {
    text(f.error, "");
    f.input.removeAttribute("aria-invalid");
  }
}

/**
 * Mark every field the error's details[] name (not only the first); returns how many were
 * marked. The first marked field gets the focus.
 */
export function markFieldErrors(err, fields) {
  clearFieldErrors(fields);
  const byName = new Map(fields.map((f) => [f.name, f]));
  let first = null;
  let marked = 0;
  for (const d of (err && err.details) || []) {
    const f = byName.get(d.field);
    if (!f) continue;
    const before = f.error.textContent;
    text(f.error, before ? `${before} ${d.message}` : d.message);
    f.input.setAttribute("aria-invalid", "true");
    first = first || f;
    marked += 1;
  }
  if (first) first.input.focus();
  return marked;
}

/** API field name → the label the owner sees, for the error banner. */
export function labels(fields) {
  return Object.fromEntries(fields.map((f) => [f.name, f.label]));
}
