// A route with no screen yet: say so, and what to do meanwhile, instead of a blank page.

import {h} from "../dom.js";

const MEANWHILE = {};

export function mount(el, ctx) {
  const meanwhile = MEANWHILE[ctx.route];
  el.append(h("section", {class: "card", "aria-labelledby": "missing-title"},
    h("h2", {id: "missing-title"}, "This screen is not here yet"),
    meanwhile ? h("p", meanwhile()) : h("p", "This part of the admin page has not been built yet."),
    h("p", h("a", {href: "#/dashboard", class: "button-link"}, "Back to the dashboard"))));
}

export function unmount() {}
