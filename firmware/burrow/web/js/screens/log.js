// The query log: GET /api/queries for what was asked before, then the live stream /ws/queries
// (its own socket, open only while this screen is shown; the session cookie authenticates it),
// with pause, filters, each row's decision trace, "why?" (the explain dry run,
// GET /api/blocklists/check) and, for admins, one tap to allow or block a name for everyone or
// one group (/api/whitelist, /api/denylist with "groups"), with undo.
//
// Filters are the API's (GET /api/queries: domain, client, blocked, type, stage, rule,
// since/until) and a row arriving live is shown only when it passes the same test
// (matches(), written after storage/queryfilter.py). At most MAX_ROWS rows are kept.

import {h, replace, show, text} from "../dom.js";

export const MAX_ROWS = 500;
const PAGE = 100; // rows asked of the API per load
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const TYPES = ["A", "AAAA", "HTTPS", "SVCB", "CNAME", "MX", "TXT", "PTR", "SRV", "NS", "SOA", "CAA", "ANY"];
const STAGES = [["blocklist", "block lists"], ["whitelist", "allow list"], ["denylist", "deny list"],
  ["policy", "policy rules"], ["local", "local records and zones"], ["private", "private names"],
  ["conditional", "conditional forwarding"], ["filter", "blocking paused"], ["guard", "guards"],
  ["cache", "cache"], ["forward", "upstream"], ["rate_limit", "rate limit"]];
const RANGES = [["", "Any time"], ["15m", "Last 15 minutes"], ["1h", "Last hour"], ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"], ["custom", "From … to …"]];
const BLOCKED = new Set(["blocked", "threat", "dropped", "refused"]); // explain decisions that give no real answer
const RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"};
// A name a list entry can hold (the API refuses others; a row's name may be anything a client sent).
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/i;

// ---- the filter: one definition for the API's parameters and for the rows that arrive live ----

/** "15m", "1h", "24h", "7d" → seconds. */
function seconds(duration) {
  const m = /^(\d+)([smhd])$/.exec(duration || "");
  return m ? Number(m[1]) * {s: 1, m: 60, h: 3600, d: 86400}[m[2]] : 0;
}

/** The query-string parameters of GET /api/queries for a filter. */
export function params(f) {
  const p = new URLSearchParams();
  if (f.domain) p.set("domain", f.domain);
  if (f.client) p.set("client", f.client);
  if (f.blocked) p.set("blocked", f.blocked);
  if (f.type) p.set("type", f.type);
  if (f.stage) p.set("stage", f.stage);
  if (f.rule) p.set("rule", f.rule);
  if (f.since) p.set("since", f.since);
  // An end still to come leaves out no row the log has now (the API takes only past times);
  // matches() keeps it for the rows that arrive live.
  if (f.until && !(Date.parse(f.until) > Date.now())) p.set("until", f.until);
  return p;
}

/** Whether a row passes the filter: the test storage/queryfilter.py makes (domain: the name or a
 * name below it; client exact; stage and rule on the SAME trace entry; since inclusive, until
 * exclusive). */
export function matches(f, row, now = Date.now()) {
  if (f.domain) {
    const name = f.domain.toLowerCase().replace(/\.+$/, "");
    const d = String(row.domain || "");
    if (name && d !== name && !d.endsWith("." + name)) return false;
  }
  if (f.client && row.client_ip !== f.client) return false;
  if (f.blocked && Boolean(row.blocked) !== (f.blocked === "true")) return false;
  if (f.type && String(row.query_type || "").toUpperCase() !== f.type.toUpperCase()) return false;
  const terms = [["stage", f.stage], ["rule", f.rule]].filter(([, v]) => v);
  if (terms.length) {
    const trace = Array.isArray(row.block_trace) ? row.block_trace : [];
    if (!trace.some((e) => e && terms.every(([k, v]) => e[k] === v))) return false;
  }
  const at = Date.parse(row.timestamp);
  if (f.since) {
    const start = seconds(f.since) ? now - seconds(f.since) * 1000 : Date.parse(f.since);
    if (!(at >= start)) return false;
  }
  if (f.until && !(at < Date.parse(f.until))) return false;
  return true;
}

function filtered(f) {
  return Object.values(f).some(Boolean);
}

// ---- allow and block: what one tap does, and its exact inverse ----------------------------------

const LISTS = {allow: "whitelist", block: "denylist"};

/** The groups an exact entry is limited to (null: every group), or undefined when absent. */
function entryScope(summary, name) {
  if (!summary || !(summary.exact || []).includes(name)) return undefined;
  const g = summary.groups && summary.groups[name];
  return Array.isArray(g) && g.length ? g : null;
}

function add(list, domain, groups) { return {op: "add", list, domain, groups}; }
function remove(list, domain, groups) { return {op: "remove", list, domain, groups}; }

/**
 * The list changes that allow (or block) `domain` for `group` (null: everyone), from the two
 * lists as they are: {ops} (empty: nothing to do, `already` says why) or {refuse: sentence}.
 * The other list's entry for the same name is taken off for the same clients, so the tap
 * decides (an allow entry beats a deny entry; a block for one group under an allow for
 * everyone cannot work and is refused with the reason).
 */
export function plan(action, domain, group, allowList, denyList) {
  const mine = LISTS[action];
  const otherName = action === "allow" ? "denylist" : "whitelist";
  const own = entryScope(action === "allow" ? allowList : denyList, domain);
  const other = entryScope(action === "allow" ? denyList : allowList, domain);
  const ops = [];
  if (other !== undefined) {
    if (group === null) {
      ops.push(remove(otherName, domain, other));
    } else if (other === null) {
      if (action === "block") {
        return {refuse: `${domain} is on the allow list for everyone, and that beats a block for one group. ` +
          "Block it for everyone, or change the allow list on the Lists screen."};
      }
    } else if (other.includes(group)) {
      ops.push(remove(otherName, domain, other));
      const rest = other.filter((g) => g !== group);
      if (rest.length) ops.push(add(otherName, domain, rest));
    }
  }
  if (own === undefined) {
    ops.push(add(mine, domain, group === null ? null : [group]));
  } else if (own !== null && group === null) {
    ops.push(remove(mine, domain, own), add(mine, domain, null));
  } else if (own !== null && !own.includes(group)) {
    ops.push(remove(mine, domain, own), add(mine, domain, [...own, group]));
  }
  const done = ops.some((o) => o.list === mine);
  return {ops, already: !done};
}

/** The changes that take back `ops` (applied in order): each inverted, last first. */
export function inverse(ops) {
  return ops.slice().reverse().map((o) => ({...o, op: o.op === "add" ? "remove" : "add"}));
}

function send(api, o) {
  if (o.op === "add") return api.post(`/api/${o.list}`, o.groups ? {domain: o.domain, groups: o.groups} : {domain: o.domain});
  return api.del(`/api/${o.list}/${encodeURIComponent(o.domain)}`);
}

async function apply(api, ops) {
  const done = [];
  try {
    for (const o of ops) {
      await send(api, o);
      done.push(o);
    }
  } catch (err) {
    // Half a change is worse than none: take back what went through, then report.
    for (const o of inverse(done)) {
      try { await send(api, o); } catch { /* the error below is what the owner reads */ }
    }
    throw err;
  }
}

// ---- the screen ---------------------------------------------------------------------------------

let state = null;

function time(ts) {
  const d = new Date(ts);
  return isNaN(d) ? String(ts || "") : d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
}

function who(group) {
  return group === null ? "for everyone" : `for group ${group}`;
}

function pill(row) {
  const d = row.decision || (row.blocked ? "blocked" : "resolved");
  return h("span", {class: `pill decision ${row.blocked ? "is-blocked" : "is-allowed"}`}, d.replace(/_/g, " "));
}

export function mount(el, ctx) {
  const s = {
    ctx, el, rows: [], byId: new Map(), held: [], paused: false, socket: null, attempts: 0,
    reconnect: null, filter: {}, seq: 0, pending: [], loaded: false, open: new Set(), groups: [], undo: null,
    releaseGroups: null, unsubGroups: null, closed: false,
  };
  state = s;

  // -- the toolbar: live state, pause, and (admins) for whom a tap allows or blocks
  const status = h("span", {id: "log-live", class: "log-live", role: "status"}, "Connecting…");
  const pause = h("button", {type: "button", id: "log-pause", "aria-pressed": "false"}, "Pause");
  const heldNote = h("span", {id: "log-held", class: "small", hidden: true});
  const scope = h("select", {id: "log-scope"}, h("option", {value: ""}, "Everyone"));
  const scopeField = ctx.canWrite
    ? h("div", {class: "field log-scope"}, h("label", {for: "log-scope"}, "Allow and block for"), scope)
    : null;

  // -- the filters
  const inputs = {};
  const textField = (name, label, attrs = {}) => {
    inputs[name] = h("input", {id: `log-f-${name}`, name, autocomplete: "off", ...attrs});
    return h("div", {class: "field"}, h("label", {for: `log-f-${name}`}, label), inputs[name],
      h("small", {id: `log-f-${name}-error`, class: "field-error"}));
  };
  const selectField = (name, label, options) => {
    inputs[name] = h("select", {id: `log-f-${name}`, name},
      options.map(([value, words]) => h("option", {value}, words)));
    return h("div", {class: "field"}, h("label", {for: `log-f-${name}`}, label), inputs[name],
      h("small", {id: `log-f-${name}-error`, class: "field-error"}));
  };
  const custom = h("div", {class: "log-custom", hidden: true},
    textField("from", "From", {type: "datetime-local", step: "1"}),
    textField("to", "To", {type: "datetime-local", step: "1"}));
  const form = h("form", {id: "log-filters", class: "log-filters", novalidate: true},
    textField("domain", "Domain (and names below it)", {inputmode: "url", spellcheck: "false", placeholder: "example.com"}),
    textField("client", "Client address", {inputmode: "text", spellcheck: "false", placeholder: "192.168.1.20"}),
    selectField("blocked", "Outcome", [["", "Allowed and blocked"], ["true", "Blocked only"], ["false", "Not blocked"]]),
    selectField("type", "Query type", [["", "Any type"], ...TYPES.map((t) => [t, t])]),
    selectField("stage", "Decided at", [["", "Any stage"], ...STAGES.map(([v, words]) => [v, `${v} (${words})`])]),
    textField("rule", "Rule or list name", {spellcheck: "false"}),
    selectField("range", "Time", RANGES),
    custom,
    h("div", {class: "actions"},
      h("button", {type: "submit", id: "log-apply"}, "Apply filters"),
      h("button", {type: "button", id: "log-clear", on: {click: clearFilters}}, "Clear")));
  inputs.range.addEventListener("change", () => show(custom, inputs.range.value === "custom"));
  form.addEventListener("submit", (e) => { e.preventDefault(); applyFilters(); });
  const filters = h("details", {class: "card log-filters-box"},
    h("summary", {id: "log-filters-summary"}, "Filters"), form);

  const toast = h("div", {id: "log-toast", class: "notice log-toast", role: "status", hidden: true});
  const message = h("div", {id: "log-message", class: "log-message"});
  const list = h("ol", {id: "log-rows", class: "log-rows", "aria-label": "Queries, newest first"});
  const count = h("p", {id: "log-count", class: "small"});
  el.append(h("section", {class: "card log-head", "aria-labelledby": "log-title"},
    h("h2", {id: "log-title"}, "Query log"),
    h("div", {class: "log-toolbar"}, status, pause, heldNote), scopeField),
  filters, toast, h("section", {class: "card", "aria-label": "Queries"}, message, count, list));

  pause.addEventListener("click", () => setPaused(!s.paused));

  if (ctx.canWrite) {
    s.releaseGroups = ctx.live.want("groups");
    s.unsubGroups = ctx.live.subscribe("groups", (value) => {
      const names = ((value && value.groups) || []).map((g) => g.name).filter((n) => typeof n === "string");
      const chosen = scope.value;
      replace(scope, h("option", {value: ""}, "Everyone"),
        names.map((n) => h("option", {value: `g:${n}`}, `Group ${n}`)));
      scope.value = names.includes(chosen.slice(2)) ? chosen : "";
      s.groups = names;
    });
  }

  function scopeGroup() {
    return scope.value.startsWith("g:") ? scope.value.slice(2) : null;
  }

  // -- live state line
  function showLive() {
    if (s.closed) return;
    const open = s.socket && s.socket.readyState === WebSocket.OPEN;
    text(status, !open ? "Reconnecting…" : s.paused ? "Paused" : "Live");
    status.dataset.state = !open ? "offline" : s.paused ? "paused" : "live";
    text(pause, s.paused ? "Resume" : "Pause");
    pause.setAttribute("aria-pressed", String(s.paused));
    text(heldNote, s.held.length ? `${s.held.length} new ${s.held.length === 1 ? "query" : "queries"} waiting` : "");
    show(heldNote, s.held.length > 0);
  }

  function setPaused(paused) {
    s.paused = paused;
    if (!paused && s.held.length) {
      const held = s.held;
      s.held = [];
      addRows(held);
    }
    showLive();
  }

  // -- the rows
  function addRows(rows) {
    let changed = false;
    for (const row of rows) {
      if (!row || typeof row.id !== "number" || s.byId.has(row.id) || !matches(s.filter, row)) continue;
      s.byId.set(row.id, {row, li: null});
      s.rows.push(row);
      changed = true;
    }
    if (!changed) return;
    s.rows.sort((a, b) => b.id - a.id);
    while (s.rows.length > MAX_ROWS) {
      const gone = s.rows.pop();
      const entry = s.byId.get(gone.id);
      if (entry && entry.li) entry.li.remove();
      s.byId.delete(gone.id);
      s.open.delete(gone.id);
    }
    // Put every row's element in place (new ones built once; kept ones only moved if needed).
    let before = list.firstChild;
    for (const row of s.rows) {
      const entry = s.byId.get(row.id);
      if (!entry.li) entry.li = rowElement(row);
      if (entry.li !== before) list.insertBefore(entry.li, before);
      else before = before.nextSibling;
      before = entry.li.nextSibling;
    }
    renderMessage();
  }

  function clearRows() {
    s.rows = [];
    s.byId.clear();
    s.open.clear();
    s.held = [];
    list.replaceChildren();
  }

  function renderMessage() {
    if (!s.loaded) return;
    text(count, s.rows.length ? `${s.rows.length} ${s.rows.length === 1 ? "query" : "queries"} shown` +
      (s.rows.length >= MAX_ROWS ? ` (the newest ${MAX_ROWS})` : "") : "");
    if (s.rows.length) {
      replace(message);
    } else if (filtered(s.filter)) {
      replace(message, h("p", {class: "empty", id: "log-empty"}, "No query matches these filters."));
    } else {
      replace(message, h("div", {class: "empty", id: "log-empty"},
        h("p", "No queries yet — point your router's DNS at Burrow."),
        h("p", {class: "small"}, "Queries show up here the moment a device asks Burrow for a name.")));
    }
  }

  function rowElement(row) {
    const detailId = `log-detail-${row.id}`;
    const toggle = h("button", {type: "button", class: "log-row-toggle", "aria-expanded": "false",
      "aria-controls": detailId},
    h("span", {class: "log-domain"}, String(row.domain)),
    h("span", {class: "log-meta"}, h("span", {class: "log-time"}, time(row.timestamp)),
      ` · ${row.query_type} · ${row.client_ip} `, pill(row)));
    const detail = h("div", {id: detailId, class: "log-detail", hidden: true});
    const quick = ctx.canWrite && HOSTNAME.test(row.domain)
      ? h("button", {type: "button", class: "log-quick", "data-action": row.blocked ? "allow" : "block",
        "aria-label": `${row.blocked ? "Allow" : "Block"} ${row.domain}`,
        on: {click: () => tap(row.blocked ? "allow" : "block", row)}}, row.blocked ? "Allow" : "Block")
      : null;
    const li = h("li", {class: `log-row${row.blocked ? " blocked" : ""}`, "data-id": String(row.id)},
      h("div", {class: "log-line"}, toggle, quick), detail);
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      if (open && !detail.firstChild) fillDetail(detail, row);
      show(detail, open);
      if (open) s.open.add(row.id); else s.open.delete(row.id);
    });
    return li;
  }

  function fillDetail(detail, row) {
    const facts = [
      ["Time", new Date(row.timestamp).toLocaleString()],
      ["Client", row.client_ip],
      ["Type", row.query_type],
      ["Decision", row.decision || ""],
      ["Answer code", RCODES[row.response_code] || String(row.response_code)],
      ["From cache", row.cached ? "yes" : "no"],
      ["Response time", `${row.response_time_ms} ms`],
      ["Upstream", row.upstream || "none"],
    ];
    const trace = Array.isArray(row.block_trace) ? row.block_trace : [];
    const why = h("div", {class: "log-why", "aria-live": "polite"});
    const whyButton = h("button", {type: "button", class: "log-why-button", on: {click: () => explain(row, why, whyButton)}},
      "Why?");
    const actions = [];
    if (ctx.canWrite && HOSTNAME.test(row.domain)) {
      actions.push(
        h("button", {type: "button", "data-action": "allow", "aria-label": `Allow ${row.domain}`,
          on: {click: () => tap("allow", row)}}, "Allow"),
        h("button", {type: "button", "data-action": "block", "aria-label": `Block ${row.domain}`,
          on: {click: () => tap("block", row)}}, "Block"));
    } else if (ctx.canWrite) {
      actions.push(h("p", {class: "small"}, "This name has characters a list entry cannot hold, so it cannot be allowed or blocked from here."));
    }
    replace(detail,
      h("p", {class: "log-full-domain"}, String(row.domain)),
      h("dl", {class: "log-facts"}, facts.map(([k, v]) => h("div", h("dt", k), h("dd", String(v))))),
      h("h3", "Decision trace"),
      trace.length
        ? h("ol", {class: "log-trace"}, trace.map((e) => h("li",
          h("strong", String(e.stage || "?")), " ", String(e.action || ""),
          e.rule ? [" · rule ", h("span", {class: "log-rule"}, String(e.rule))] : null,
          e.source ? ` · ${e.source}` : null,
          e.detail ? [" · ", h("span", {class: "log-trace-detail"}, String(e.detail))] : null)))
        : h("p", {class: "small"}, "No trace was recorded for this query (decision traces may be off in the settings)."),
      h("div", {class: "actions"}, whyButton, actions),
      why);
  }

  async function explain(row, box, button) {
    button.disabled = true;
    replace(box, h("p", {class: "loading"}, "Asking Burrow…"));
    const p = new URLSearchParams({domain: row.domain, client: row.client_ip, type: row.query_type});
    try {
      const r = await ctx.api.get(`/api/blocklists/check?${p}`);
      if (s.closed) return;
      const matches = Array.isArray(r.matches) ? r.matches : [];
      const said = [`Now Burrow would answer ${r.domain} (${r.type}) for ${r.client}: `,
        h("strong", {class: "log-why-decision"}, String(r.decision))];
      if (r.stage) said.push(` at ${r.stage}`);
      if (r.rule) said.push(" by ", h("span", {class: "log-rule"}, String(r.rule)));
      if (r.detail) said.push(` (${r.detail})`);
      said.push(".");
      replace(box, h("div", {class: "log-why-answer"},
        h("p", said),
        r.answer ? h("p", "Answer: ", String(r.answer)) : null,
        r.upstream ? h("p", `Asked of the upstream servers (${r.upstream.route || "default"} route).`) : null,
        Array.isArray(r.groups) && r.groups.length ? h("p", `Client groups: ${r.groups.join(", ")}`) : null,
        matches.length
          ? [h("p", "What matches this name:"), h("ul", matches.map((m) => h("li",
            `${m.list || m.kind || "entry"} (${m.kind || m.action || ""}): `,
            h("span", {class: "log-rule"}, String(m.entry || m.rule || m.name || "")))))]
          : h("p", {class: "small"}, "No list, allow/deny entry or rule mentions this name.")));
    } catch (err) {
      if (s.closed) return;
      replace(box, h("p", {class: "error"}, err.human || String(err.message || err)));
    } finally {
      button.disabled = false;
    }
  }

  // -- allow / block with undo
  // What the row's client gets now (the explain dry run), said after a tap for everyone: a
  // policy rule decides before the allow and deny lists, and the owner should know.
  async function outcome(action, row) {
    try {
      const p = new URLSearchParams({domain: row.domain, client: row.client_ip, type: row.query_type});
      const r = await ctx.api.get(`/api/blocklists/check?${p}`);
      const blocked = BLOCKED.has(r.decision);
      const by = `${r.stage || "an earlier step"}${r.rule ? ` (${r.rule})` : ""}`;
      if (action === "allow") {
        return blocked ? ` It is still blocked for ${row.client_ip}: ${by} decides before the allow list.`
          : ` ${row.client_ip} now gets an answer (${r.decision}).`;
      }
      return blocked ? ` ${row.client_ip} now gets the block answer.`
        : ` ${row.client_ip} still gets an answer: ${by} lets it through before the deny list.`;
    } catch {
      return ""; // the change is made; only the check of its effect could not be read
    }
  }

  async function tap(action, row) {
    const domain = row.domain;
    const group = scopeGroup();
    ctx.clearError();
    try {
      const [allowList, denyList] = await Promise.all([ctx.api.get("/api/whitelist"), ctx.api.get("/api/denylist")]);
      const p = plan(action, domain, group, allowList, denyList);
      if (p.refuse) {
        showToast(p.refuse, null);
        return;
      }
      if (p.ops.length) await apply(ctx.api, p.ops);
      const words = p.already
        ? `${domain} is on the ${action === "allow" ? "allow" : "deny"} list ${who(group)} already.`
        : `${action === "allow" ? "Allowed" : "Blocked"} ${domain} ${who(group)}.`;
      const token = showToast(words, p.ops.length ? p.ops : null, domain);
      if (group === null) {
        const after = await outcome(action, row);
        if (after && s.toast === token && !s.closed) text(toast.querySelector(".log-toast-text"), words + after);
      }
    } catch (err) {
      ctx.showError(err);
    }
  }

  function showToast(words, ops, domain) {
    const undo = ops ? h("button", {type: "button", id: "log-undo", on: {click: async () => {
      undo.disabled = true;
      try {
        await apply(ctx.api, inverse(ops));
        if (s.toast === token) {
          s.toast = {}; // a late check of the change's effect no longer applies
          replace(toast, h("span", {class: "log-toast-text"}, `Undone: ${domain} is as it was before.`));
        }
      } catch (err) {
        undo.disabled = false;
        ctx.showError(err);
      }
    }}}, "Undo") : null;
    const token = {};
    s.toast = token;
    replace(toast, h("span", {class: "log-toast-text"}, words), undo);
    show(toast, true);
    return token;
  }

  // -- loading and the stream
  async function load() {
    const seq = ++s.seq;
    s.loaded = false;
    s.pending = [];
    clearRows();
    replace(message, h("p", {class: "loading", id: "log-loading"}, "Loading the query log…"));
    text(count, "");
    const p = params(s.filter);
    p.set("limit", String(PAGE));
    try {
      const answer = await ctx.api.get(`/api/queries?${p}`);
      if (seq !== s.seq || s.closed) return;
      s.loaded = true;
      const pending = s.pending;
      s.pending = [];
      addRows([...(answer.queries || []), ...pending]);
      renderMessage();
    } catch (err) {
      if (seq !== s.seq || s.closed) return;
      s.loaded = false;
      replace(message, h("div", {class: "error", id: "log-error", role: "alert"},
        h("p", `The query log could not be read. ${err.human || err.message || err}`),
        h("button", {type: "button", on: {click: () => load()}}, "Try again")));
      if (err.details && err.details.length) markFilterErrors(err.details);
    }
  }

  function markFilterErrors(details) {
    for (const d of details) {
      const name = d.field === "since" ? (inputs.range.value === "custom" ? "from" : "range")
        : d.field === "until" ? "to" : d.field;
      const input = inputs[name];
      if (!input) continue;
      input.setAttribute("aria-invalid", "true");
      const err = document.getElementById(`log-f-${name}-error`);
      if (err) text(err, d.message);
    }
  }

  function readFilters() {
    const f = {};
    for (const k of ["domain", "client", "rule"]) {
      const v = inputs[k].value.trim();
      if (v) f[k] = v;
    }
    for (const k of ["blocked", "type", "stage"]) if (inputs[k].value) f[k] = inputs[k].value;
    const range = inputs.range.value;
    if (range === "custom") {
      const iso = (v) => { const d = new Date(v); return isNaN(d) ? v : d.toISOString(); };
      if (inputs.from.value) f.since = iso(inputs.from.value);
      if (inputs.to.value) f.until = iso(inputs.to.value);
    } else if (range) {
      f.since = range;
    }
    return f;
  }

  function applyFilters() {
    for (const input of Object.values(inputs)) input.removeAttribute("aria-invalid");
    for (const small of form.querySelectorAll(".field-error")) text(small, "");
    s.filter = readFilters();
    const n = Object.keys(s.filter).length;
    text(document.getElementById("log-filters-summary"), n ? `Filters (${n} on)` : "Filters");
    load();
  }

  function clearFilters() {
    form.reset();
    show(custom, false);
    applyFilters();
  }

  function connect() {
    if (s.closed || s.socket || typeof WebSocket === "undefined") return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(`${scheme}${location.host}/ws/queries`);
    s.socket = ws;
    ws.onopen = () => {
      if (s.socket !== ws) return;
      const reopened = s.attempts > 0;
      s.attempts = 0;
      showLive();
      if (reopened) load(); // what was asked while the stream was down
    };
    ws.onmessage = (msg) => {
      if (s.socket !== ws) return;
      let m;
      try { m = JSON.parse(msg.data); } catch { return; }
      if (m && m.type === "query" && m.data) {
        if (!s.loaded) { // a load is in flight: keep it for after (rows are told apart by id)
          if (s.pending.length < MAX_ROWS) s.pending.push(m.data);
          return;
        }
        if (s.paused) {
          if (matches(s.filter, m.data) && !s.byId.has(m.data.id)) {
            s.held.push(m.data);
            if (s.held.length > MAX_ROWS) s.held.shift();
            showLive();
          }
        } else {
          addRows([m.data]);
        }
      } else if (m && m.type === "lost" && !s.paused) {
        load(); // the stream dropped rows for us: read them from the log
      }
    };
    ws.onclose = () => {
      if (s.socket !== ws) return;
      s.socket = null;
      showLive();
      if (s.closed) return;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** s.attempts);
      s.attempts += 1;
      s.reconnect = setTimeout(connect, delay * (0.75 + Math.random() / 2));
    };
  }

  connect();
  showLive();
  return load();
}

export function unmount() {
  const s = state;
  state = null;
  if (!s) return;
  s.closed = true;
  clearTimeout(s.reconnect);
  if (s.socket) {
    const ws = s.socket;
    s.socket = null;
    ws.close();
  }
  if (s.unsubGroups) s.unsubGroups();
  if (s.releaseGroups) s.releaseGroups();
}
