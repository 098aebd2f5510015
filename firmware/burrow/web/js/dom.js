// A tiny element builder that only ever sets text and attributes.
//
//   h("p", {class: "state", id: "blocking-state"}, "Blocking is ", strong)
//
// Children are strings or numbers (made text nodes: never parsed as markup), elements, arrays
// of those, or null/false/undefined (skipped); anything else throws. Attributes are set with
// setAttribute; event handlers only through `on: {click: fn}` (functions, never strings). The
// builder refuses what would run or inject code: on* attributes, style (the CSP forbids it
// anyway), srcdoc, and a javascript: or data: URL in href/src/action. No module of the page
// parses markup from a string at all (tests/unit/api/test_web_ui.py checks for every such sink).

const FORBIDDEN = new Set(["style", "srcdoc", "innerhtml", "outerhtml"]);
const URL_ATTRS = new Set(["href", "src", "action", "formaction", "xlink:href"]);
const SAFE_URL = /^(#|\/(?!\/)|\.\/|https?:)/i;

function setAttr(el, name, value) {
  const lower = name.toLowerCase();
  if (lower.startsWith("on") || FORBIDDEN.has(lower)) {
    throw new TypeError(`dom.h: attribute ${name} is not allowed (handlers: on: {event: fn})`);
  }
  if (value === false || value === null || value === undefined) return;
  const text = value === true ? "" : String(value);
  if (URL_ATTRS.has(lower) && !SAFE_URL.test(text)) {
    throw new TypeError(`dom.h: ${name} must be a relative or http(s) URL`);
  }
  el.setAttribute(name, text);
}

function append(el, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    child.forEach((c) => append(el, c));
  } else if (typeof child === "string" || typeof child === "number") {
    el.append(document.createTextNode(String(child)));
  } else if (child instanceof Node) {
    el.append(child);
  } else {
    throw new TypeError("dom.h: a child must be text, a number, an element or null");
  }
}

/** A new element: h(tag, attributes?, ...children). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs !== null && attrs !== undefined) {
    if (typeof attrs !== "object" || Array.isArray(attrs) || attrs instanceof Node) {
      children.unshift(attrs); // h("p", "text") and h("div", child)
    } else {
      for (const [name, value] of Object.entries(attrs)) {
        if (name === "on") {
          for (const [type, fn] of Object.entries(value || {})) {
            if (typeof fn !== "function") throw new TypeError(`dom.h: on.${type} must be a function`);
            el.addEventListener(type, fn);
          }
        } else {
          setAttr(el, name, value);
        }
      }
    }
  }
  append(el, children);
  return el;
}

/** Set an element's text (only when it changed, so screen readers and observers see real changes). */
export function text(el, value) {
  const s = value === null || value === undefined ? "" : String(value);
  if (el.textContent !== s) el.textContent = s;
  return el;
}

/** Set or remove one attribute (the same rules as h). */
export function attr(el, name, value) {
  if (value === false || value === null || value === undefined) el.removeAttribute(name);
  else setAttr(el, name, value);
  return el;
}

/** Replace an element's children (same child rules as h). */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function show(el, visible) {
  el.hidden = !visible;
  return el;
}

export function byId(id) {
  return document.getElementById(id);
}

/** "1,234" in the phone's own way of writing numbers. */
export function count(n) {
  return Number(n || 0).toLocaleString();
}

/** "1 block list" / "2 block lists". */
export function plural(n, one, many) {
  return `${count(n)} ${Number(n) === 1 ? one : many}`;
}
