// Upstream DNS servers (health, smoothed answer time, queries and failures) and the answer
// cache, from GET /api/dashboard (live: loaded again when the stream says counts changed, and
// the board's status.changed arrives when an upstream starts or stops failing).

import {count, h, replace, text} from "../dom.js";
import {millis} from "./status.js";

export function bytes(n) {
  const v = Number(n);
  if (!Number.isFinite(v)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let x = v;
  while (x >= 1000 && i < units.length - 1) { x /= 1000; i += 1; }
  return `${i ? x.toFixed(x >= 100 ? 0 : 1) : x} ${units[i]}`;
}

export function create(ctx) {
  const rows = h("ul", {id: "upstream-list", class: "plain-list"});
  const cache = h("p", {id: "cache-line", class: "small"});
  const el = h("section", {id: "upstreams", class: "card", "aria-labelledby": "upstreams-title"},
    h("h2", {id: "upstreams-title"}, "Upstream servers"), rows, cache);

  function render(d, error) {
    if (!d) {
      if (error) replace(rows, h("li", "The upstream servers could not be read."));
      return;
    }
    const ups = d.upstreams || [];
    replace(rows, ups.length ? ups.map((u) => h("li", {class: u.healthy === false ? "bad" : "good"},
      h("strong", u.address), " ",
      h("span", {class: "upstream-state"}, u.healthy === false ? "failing" : "working"), " · ",
      `answers in ${millis(u.srtt_ms)}`, " · ",
      `${count(u.queries)} queries, ${count((u.errors || 0) + (u.timeouts || 0))} failed`,
      u.healthy === false && u.last_error ? h("span", {class: "small"}, ` (${u.last_error})`) : null))
      : h("li", "No upstream server is set up: only blocked, cached and local names are answered."));
    const c = d.cache || {};
    text(cache, c.enabled === false ? "The answer cache is off."
      : `Answer cache: ${count(c.entries)} answers kept (${bytes(c.bytes)}), ` +
        `${count(c.hits)} hits and ${count(c.misses)} misses since start.`);
  }

  const release = ctx.live.want("dashboard");
  const unsubscribe = ctx.live.subscribe("dashboard", render);
  return {el, destroy() { unsubscribe(); release(); }};
}
