// The last 24 hours' top lists from GET /api/dashboard: domains allowed, domains blocked,
// clients, and queries by record type. Domain names come from whoever asked: they are text
// (dom.h makes text nodes), never markup.

import {count, h, replace, text} from "../dom.js";

function list(id, title) {
  const ol = h("ol", {id, class: "top-list"});
  const empty = h("p", {class: "small"}, "None yet.");
  const box = h("div", {class: "top"}, h("h3", title), ol, empty);
  return {box, ol, empty};
}

function fill(part, rows) {
  replace(part.ol, rows.map(([name, figure]) => h("li",
    h("span", {class: "top-name"}, name), " ", h("span", {class: "top-count"}, figure))));
  part.ol.hidden = rows.length === 0;
  part.empty.hidden = rows.length > 0;
}

export function create(ctx) {
  const allowed = list("top-allowed", "Domains allowed");
  const blocked = list("top-blocked", "Domains blocked");
  const clients = list("top-clients", "Clients");
  const types = list("query-types", "Query types");
  const status = h("p", {class: "small", id: "tops-status"});
  const el = h("section", {id: "tops", class: "card", "aria-labelledby": "tops-title"},
    h("h2", {id: "tops-title"}, "Top of the last 24 hours"), status,
    h("div", {class: "tops"}, allowed.box, blocked.box, clients.box, types.box));

  function render(d, error) {
    if (!d) {
      if (error) text(status, "The top lists could not be read.");
      return;
    }
    text(status, "");
    fill(allowed, (d.top_domains || []).map((t) => [t.domain, count(t.queries)]));
    fill(blocked, (d.top_blocked_domains || []).map((t) => [t.domain, count(t.queries)]));
    fill(clients, (d.top_clients || []).map((c) => [c.client_ip,
      `${count(c.queries)} (${count(c.blocked)} blocked)`]));
    const total = (d.query_types || []).reduce((n, t) => n + t.queries, 0);
    fill(types, (d.query_types || []).map((t) => [t.type,
      `${count(t.queries)} (${total ? ((100 * t.queries) / total).toFixed(1) : "0.0"} %)`]));
  }

  const release = ctx.live.want("dashboard");
  const unsubscribe = ctx.live.subscribe("dashboard", render);
  return {el, destroy() { unsubscribe(); release(); }};
}
