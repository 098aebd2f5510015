// System: GET /api/system (the live store's "system" resource, refreshed every 15 s and on
// system events): version, board, the status LED and why, uptime, memory, disk, temperature,
// the addresses Burrow has and listens on, the upstreams and the services.

import {count, h, replace} from "../dom.js";

// What each status (board/status.py STATES) means for the owner; the board's light shows it.
const LED_MEANING = {
  ready: "resolving and blocking",
  booting: "starting up",
  link_down: "no network link or address: devices cannot reach Burrow",
  no_upstream: "no upstream server answers: only blocked and cached names work",
  upstream_degraded: "some upstream servers are down; the others answer",
  paused: "blocking is paused on purpose",
  fault: "something needs a look (the reasons are below)",
  reset_armed: "a factory reset waits for the button to confirm it",
};

let cleanup = [];

export function mount(el, ctx) {
  ctx.notice(""); // a message from another screen is not about this one
  ctx.clearError();
  const body = h("div", {id: "system-body"}, h("p", {class: "loading"}, "Loading…"));
  el.append(h("h2", {class: "screen-title"}, "System"), body);
  cleanup = [
    ctx.live.want("system"),
    ctx.live.subscribe("system", (s, error) => {
      if (s) render(body, s, !!error);
      else if (error) replace(body, h("p", {class: "error", role: "alert"}, ctx.api.humanMessage(error)));
    }),
  ];
}

export function unmount() {
  cleanup.forEach((fn) => fn());
  cleanup = [];
}

function bytes(n) {
  const v = Number(n) || 0;
  if (v >= 1024 ** 3) return `${(v / 1024 ** 3).toFixed(1)} GB`;
  if (v >= 1024 ** 2) return `${(v / 1024 ** 2).toFixed(0)} MB`;
  return `${count(Math.round(v / 1024))} KB`;
}

function pair(label, value, id) {
  return h("div", h("dt", label), h("dd", id ? {id} : null, value));
}

function render(body, s, stale) {
  const status = s.status || {};
  const led = String(status.led || status.state || "");
  const mem = s.memory || {};
  const disk = s.disk || {};
  const net = s.network || {};
  const listen = s.listen_addresses || {};
  // The addresses a device can use: the box's own, where DNS listens (all of them on 0.0.0.0 / [::]).
  const dnsOn = (listen.dns || []).map(String);
  const listens = (a) => dnsOn.some((d) => d.startsWith(a.family === 6 ? "[::]:" : "0.0.0.0:")
    || d.startsWith(a.family === 6 ? `[${a.address}]:` : `${a.address}:`));
  const addresses = [];
  for (const iface of net.interfaces || []) {
    if (iface.loopback || !iface.up) continue;
    for (const a of iface.addresses || []) {
      if (a.scope === "link" || a.temporary || a.deprecated || !listens(a)) continue;
      addresses.push(h("li", h("code", String(a.address)), ` on ${iface.name}`));
    }
  }
  const reasons = (status.reasons || []).map((r) => h("li", typeof r === "string" ? r : JSON.stringify(r)));
  replace(body,
    stale ? h("p", {class: "notice"}, "Burrow is not answering: these figures are from before.") : null,
    h("section", {class: "card", id: "system-status", "aria-labelledby": "sys-status-title"},
      h("h3", {id: "sys-status-title", class: "card-title"}, "Status"),
      h("p", {class: "led-row", id: "system-state"}, // the dashboard's LED dot (app.css .led[data-led])
        h("span", {class: "led", "data-led": led, "aria-hidden": "true"}),
        ` ${String(status.state || "unknown").replace(/_/g, " ")}`,
        LED_MEANING[led] ? ` — ${LED_MEANING[led]}. The status light on the board shows the same.` : ""),
      reasons.length ? h("ul", {class: "problems"}, reasons) : null),
    h("section", {class: "card", id: "system-box", "aria-labelledby": "sys-box-title"},
      h("h3", {id: "sys-box-title", class: "card-title"}, "This Burrow"),
      h("dl", {class: "kv"},
        pair("Version", String(s.version || ""), "system-version"),
        pair("Board", String(s.board || "unknown"), "system-board"),
        pair("Up for", String(s.uptime || "")),
        pair("Memory used", mem.total ? `${bytes(mem.used)} of ${bytes(mem.total)} (${mem.percent}%)` : "unknown"),
        pair("Disk used", disk.total ? `${bytes(disk.used)} of ${bytes(disk.total)} (${disk.percent}%)` : "unknown"),
        pair("Temperature", typeof s.temperature === "number" ? `${s.temperature.toFixed(1)} °C` : "no sensor"),
        pair("Processor", s.cpu ? `${s.cpu.percent}% busy, ${s.cpu.count} cores` : "unknown"))),
    h("section", {class: "card", id: "system-network", "aria-labelledby": "sys-net-title"},
      h("h3", {id: "sys-net-title", class: "card-title"}, "Network"),
      h("p", "Set the router's DNS server to one of these addresses:"),
      addresses.length ? h("ul", {id: "system-addresses"}, addresses)
        : h("p", {class: "small", id: "system-no-address"}, "None yet: Burrow's DNS does not listen on a network " +
          "address of this box (see \"DNS listens on\" below and server.listen_address in burrow.toml)."),
      h("dl", {class: "kv"},
        pair("DNS listens on", (listen.dns || []).join(", ") || "nothing"),
        pair("This page", String(listen.web || "")),
        pair("Default gateway", net.default_v4 ? String(net.default_v4.gateway) : "none"))),
    h("section", {class: "card", id: "system-upstreams", "aria-labelledby": "sys-up-title"},
      h("h3", {id: "sys-up-title", class: "card-title"}, "Upstream servers"),
      h("ul", (s.upstreams || []).map((u) => h("li", h("code", String(u.address)),
        u.healthy ? ` answering (${Math.round(u.srtt_ms || 0)} ms)` : ` failing${u.last_error ? `: ${u.last_error}` : ""}`)))),
    h("section", {class: "card", id: "system-services", "aria-labelledby": "sys-svc-title"},
      h("h3", {id: "sys-svc-title", class: "card-title"}, "Services"),
      h("ul", ((s.services || {}).services || []).map((v) => h("li", `${v.name}: ${v.state}`)))));
}
