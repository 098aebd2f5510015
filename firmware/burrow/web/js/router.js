// The hash router: #/dashboard, #/lists, ... Each screen is a module under ./screens/, loaded
// when first shown (dynamic import, so a phone fetches only the screens it opens), exporting
//
//   mount(el, ctx)   build the screen into `el` (an empty <section>); may be async
//   unmount()        stop its timers and subscriptions (its element is removed by the router)
//
// A route that has no screen yet shows screens/missing.js, which says so. Navigating away while
// a screen is still loading keeps only the newest navigation.

import {h, replace} from "./dom.js";

/** The screens, by the first part of the hash. Add a screen here and in ./screens/. */
export const ROUTES = {
  dashboard: {title: "Dashboard", load: () => import("./screens/dashboard.js")},
  groups: {title: "Groups and clients", load: () => import("./screens/groups.js")},
  rules: {title: "Rules", load: () => import("./screens/rules.js")},
  records: {title: "Local records", load: () => import("./screens/records.js")},
  zones: {title: "Zones", load: () => import("./screens/zones.js")},
  forwarding: {title: "Conditional forwarding", load: () => import("./screens/forwarding.js")},
  log: {title: "Query log", load: () => import("./screens/log.js")},
  settings: {title: "Settings", load: () => import("./screens/settings.js")},
  users: {title: "Users and tokens", load: () => import("./screens/users.js")},
  audit: {title: "Audit", load: () => import("./screens/audit.js")},
  backup: {title: "Backup", load: () => import("./screens/backup.js")},
  system: {title: "System", load: () => import("./screens/system.js")},
  lists: {title: "Lists", load: () => import("./screens/lists.js")},
  welcome: {title: "Setup guide", load: () => import("./screens/welcome.js")},
};
export const DEFAULT_ROUTE = "dashboard";

export function parseHash(hash) {
  const path = String(hash || "").replace(/^#\/?/, "");
  const [name, ...rest] = path.split("/");
  return {name: name || DEFAULT_ROUTE, params: rest.map((p) => decodeURIComponent(p))};
}

export class Router {
  /** outlet: the element screens go into; ctx: what every screen's mount gets. */
  constructor(outlet, ctx, routes = ROUTES) {
    this.outlet = outlet;
    this.ctx = ctx;
    this.routes = routes;
    this.current = null; // {module, el}
    this.seq = 0;
    this.onHash = () => this.show();
  }

  start() {
    window.addEventListener("hashchange", this.onHash);
    if (!location.hash) history.replaceState(null, "", "#/" + DEFAULT_ROUTE);
    return this.show();
  }

  stop() {
    window.removeEventListener("hashchange", this.onHash);
    this.seq += 1;
    this.unmountCurrent();
    this.outlet.replaceChildren();
  }

  unmountCurrent() {
    if (!this.current) return;
    const {module, el} = this.current;
    this.current = null;
    try {
      module.unmount();
    } finally {
      el.remove();
    }
  }

  async show() {
    const seq = ++this.seq;
    const {name, params} = parseHash(location.hash);
    // A banner belongs to the screen that raised it: a new screen starts without one.
    if (this.ctx.clearError) this.ctx.clearError();
    if (this.ctx.notice) this.ctx.notice("");
    const route = this.routes[name];
    const loading = h("p", {class: "loading"}, "Loading…");
    let module;
    try {
      const pending = route ? route.load() : import("./screens/missing.js");
      this.unmountCurrent();
      replace(this.outlet, loading);
      module = await pending;
    } catch {
      if (seq !== this.seq) return;
      replace(this.outlet, h("section", {class: "card", role: "alert"},
        h("p", "This part of the page did not load. Check the connection to Burrow, then "),
        h("button", {type: "button", on: {click: () => this.show()}}, "Try again")));
      return;
    }
    if (seq !== this.seq) return; // a newer navigation won
    const el = h("section", {class: "screen", "data-screen": route ? name : "missing"});
    replace(this.outlet, el);
    this.current = {module, el};
    document.title = `${route ? route.title : "Not here yet"} · Burrow`;
    for (const link of document.querySelectorAll("nav a[data-route]")) {
      if (link.dataset.route === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    try {
      await module.mount(el, {...this.ctx, route: name, params});
    } catch (e) {
      if (seq !== this.seq) return;
      replace(el, h("div", {class: "card", role: "alert"}, h("p", `This screen failed to start: ${e && e.message}`)));
    }
  }
}
