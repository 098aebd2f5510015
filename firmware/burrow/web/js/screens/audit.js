// Audit events: GET /api/events, newest first, with filters (type or its prefix, actor,
// severity, since) and paging; the first page follows new events on /ws/events. Every field —
// the actor, a summary naming a domain or a list — is text; `data` is shown as JSON text.

import {count, h, replace, text} from "../dom.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";

const PAGE = 25;
const FOLLOW_DELAY_MS = 500; // new events in a burst make one reload

let stopped = false;
let cleanup = [];

export function mount(el, ctx) {
  ctx.notice(""); // a message from another screen is not about this one
  ctx.clearError();
  stopped = false;
  const type = field("audit-type", "Type", "type", {placeholder: "e.g. auth or config.changed", autocomplete: "off"});
  const actor = field("audit-actor", "Who", "actor", {autocomplete: "off"});
  const severity = h("select", {id: "audit-severity", name: "severity"},
    h("option", {value: ""}, "Any"), ["debug", "info", "warning", "error", "critical"].map((s) => h("option", {value: s}, s)));
  const sevField = {wrap: h("div", {class: "field"}, h("label", {for: "audit-severity"}, "Severity"), severity),
    input: severity, error: h("small", {class: "field-error"}), name: "severity", label: "Severity"};
  sevField.wrap.append(sevField.error);
  const since = field("audit-since", "Since", "since", {placeholder: "e.g. 24h", autocomplete: "off"},
    "A time back from now (30m, 24h, 7d) or a date.");
  const fields = [type, actor, sevField, since];
  const apply = h("button", {type: "submit", id: "audit-apply"}, "Show");
  const form = h("form", {novalidate: true, id: "audit-filters", class: "filters", "aria-label": "Filter the events"},
    type.wrap, actor.wrap, sevField.wrap, since.wrap, apply);
  const summary = h("p", {class: "small", id: "audit-summary", role: "status"}, "Loading…");
  const list = h("ol", {class: "rows events", id: "audit-list"});
  const prev = h("button", {type: "button", class: "secondary", id: "audit-prev"}, "Newer");
  const next = h("button", {type: "button", class: "secondary", id: "audit-next"}, "Older");
  el.append(h("h2", {class: "screen-title"}, "Audit events"),
    h("section", {class: "card", "aria-label": "Filters"}, form),
    h("section", {class: "card", "aria-label": "Events"}, summary, list, h("div", {class: "actions"}, prev, next)));

  let offset = 0;
  let filters = {};
  let seq = 0;

  async function load() {
    const mine = ++seq;
    const q = new URLSearchParams({limit: String(PAGE), offset: String(offset)});
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    try {
      const answer = await ctx.api.get(`/api/events?${q}`);
      if (stopped || mine !== seq) return;
      clearFieldErrors(fields);
      const events = answer.events || [];
      const total = answer.total || 0;
      text(summary, total ? `Events ${count(offset + 1)}–${count(offset + events.length)} of ${count(total)}.`
        : "No events match.");
      replace(list, events.map(row));
      prev.disabled = offset === 0;
      next.disabled = offset + events.length >= total;
    } catch (e) {
      if (stopped || mine !== seq) return;
      text(summary, "The events could not be read.");
      markFieldErrors(e, fields);
      ctx.showError(e, labels(fields));
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    ctx.clearError();
    filters = {type: type.input.value.trim(), actor: actor.input.value.trim(), severity: severity.value,
               since: since.input.value.trim()};
    offset = 0;
    load();
  });
  prev.addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  next.addEventListener("click", () => { offset += PAGE; load(); });

  let timer = null;
  cleanup = [ctx.live.on("", (event) => { // a stored event: the first page shows it
    if (offset !== 0 || timer || event.type.startsWith("lists.")) return; // list progress is live-only
    timer = setTimeout(() => { timer = null; load(); }, FOLLOW_DELAY_MS);
  }), () => clearTimeout(timer)];
  load();
}

export function unmount() {
  stopped = true;
  cleanup.forEach((fn) => fn());
  cleanup = [];
}

function row(e) {
  const sev = String(e.severity || "info");
  const data = e.data && typeof e.data === "object" && Object.keys(e.data).length
    ? h("details", h("summary", "Details"), h("pre", {class: "json"}, JSON.stringify(e.data, null, 2))) : null;
  return h("li", {"data-event": e.id, class: `sev-${sev.replace(/[^a-z]/g, "")}`},
    h("p", {class: "event-head"}, h("strong", String(e.type || "")), " ", h("span", {class: "pill"}, sev), " ",
      h("time", {datetime: String(e.timestamp || "")}, e.ts ? new Date(e.ts * 1000).toLocaleString() : "")),
    h("p", {class: "event-summary"}, String(e.summary || "")),
    h("p", {class: "small"}, `By ${e.actor || "Burrow"}${e.client_ip ? ` from ${e.client_ip}` : ""}`),
    data);
}
