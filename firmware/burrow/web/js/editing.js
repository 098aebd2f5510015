// What the editing screens (local records, zones, conditional forwarding) share: a select, a
// text area and a check box with their own error line (the shape of forms.field), lists typed
// as text ("a, b c"), errors on list items (upstreams[1]) marked at their field, and a delete
// button that asks in the page itself (the page never opens a dialog).

import {h, replace} from "./dom.js";
import {markFieldErrors} from "./forms.js";

function describedBy(id, help) {
  return [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(" ");
}

function wrapField(id, label, control, help) {
  const error = h("small", {id: `${id}-error`, class: "field-error"});
  const wrap = h("div", {class: "field"}, h("label", {for: id}, label), control,
    help ? h("small", {id: `${id}-help`}, help) : null, error);
  return {wrap, error};
}

/** A labelled <select>; options are [value, text] pairs or plain values. Returns {wrap, input, error, name, label}. */
export function selectField(id, label, name, options, attrs = {}, help = "") {
  const input = h("select", {id, name, "aria-describedby": describedBy(id, help), ...attrs},
    options.map((o) => (Array.isArray(o) ? h("option", {value: o[0]}, o[1]) : h("option", {value: o}, o))));
  return {input, name, label, ...wrapField(id, label, input, help)};
}

/** A labelled <textarea> with its error line. */
export function areaField(id, label, name, attrs = {}, help = "") {
  const input = h("textarea", {id, name, "aria-describedby": describedBy(id, help), ...attrs});
  return {input, name, label, ...wrapField(id, label, input, help)};
}

/** A check box with its label beside it (the whole row is the tap target). */
export function checkField(id, label, name, attrs = {}) {
  const input = h("input", {id, name, type: "checkbox", "aria-describedby": `${id}-error`, ...attrs});
  const error = h("small", {id: `${id}-error`, class: "field-error"});
  const wrap = h("div", {class: "field check"}, h("label", {for: id}, input, h("span", label)), error);
  return {wrap, input, error, name, label};
}

/** "a, b  c" → ["a", "b", "c"]: a list typed into one text field. */
export function splitList(text) {
  return String(text || "").split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

/**
 * markFieldErrors for an API error that may name list items ("upstreams[1]"): each is marked
 * at its list's field, saying which item ("item 2 (x): must be an IP address"). `values` maps
 * a list field's name to the list that was sent, so the item can be quoted.
 */
export function markErrors(err, fields, values = {}) {
  const details = ((err && err.details) || []).map((d) => {
    const m = /^([a-z_]+)\[(\d+)\]$/.exec(d.field || "");
    if (!m) return d;
    const sent = (values[m[1]] || [])[Number(m[2])];
    const which = `item ${Number(m[2]) + 1}${sent !== undefined ? ` (${sent})` : ""}`;
    return {field: m[1], message: `${which}: ${d.message}`};
  });
  return markFieldErrors({details}, fields);
}

/** The same error with list items named by their field (for the banner's labels). */
export function listless(err) {
  if (!err || !Array.isArray(err.details)) return err;
  const copy = Object.create(Object.getPrototypeOf(err));
  Object.assign(copy, err, {details: err.details.map((d) => {
    const m = /^([a-z_]+)\[(\d+)\]$/.exec(d.field || "");
    return m ? {field: m[1], message: `item ${Number(m[2]) + 1}: ${d.message}`} : d;
  })});
  copy.message = err.message;
  return copy;
}

/**
 * A "Delete" button that, tapped, is replaced by the question and two buttons: the deletion
 * happens only on the second tap. `run` is async; its failure is shown by the caller.
 */
export function deleteButton(label, question, run, attrs = {}) {
  const box = h("span", {class: "confirm"});
  const ask = h("button", {type: "button", class: "danger", ...attrs}, label);
  function reset() {
    replace(box, ask);
  }
  ask.addEventListener("click", () => {
    const yes = h("button", {type: "button", class: "danger"}, "Yes, delete");
    const no = h("button", {type: "button"}, "Keep");
    yes.addEventListener("click", async () => {
      yes.disabled = no.disabled = true;
      try {
        await run();
      } finally {
        if (box.isConnected) reset();
      }
    });
    no.addEventListener("click", () => { reset(); ask.focus(); });
    replace(box, h("span", {class: "question", role: "status"}, question), yes, no);
    no.focus();
  });
  reset();
  return box;
}

/** A notice's text with one final full stop ("… → nas.home.lan." not "nas.home.lan.."). */
export function said(text) {
  const s = String(text);
  return s.endsWith(".") ? s : `${s}.`;
}
