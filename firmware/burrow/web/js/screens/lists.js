// The lists screen: block (and allow) lists by URL, the owner's own allow and deny entries with
// a tester, "check a domain", threat feeds and RPZ zones.
//
//   block lists   GET/POST/PUT/DELETE /api/lists, POST /api/lists/{id}/update, and the whole set
//                 through the dashboard's lists card (POST /api/blocklist/reload, live progress
//                 from the lists.* events); per-list progress from the same events (data.id)
//   allow / deny  GET/POST/DELETE /api/whitelist and /api/denylist; the tester asks
//                 GET /api/userlists/test (the server's own rules: Python's regex dialect)
//   check         GET /api/blocklists/check?domain= (a dry run), "Allow it" → POST /api/whitelist
//   threat feeds  /api/threat-feeds (same rows as the lists), RPZ zones GET/DELETE /api/rpz
//
// A viewer gets every part read-only: the add forms, switches, update and remove buttons are
// not built at all (the tester and the check are reads, so they stay).

import {approx} from "../catalogue.js";
import * as listsCard from "../cards/lists.js";
import {count, h, plural, replace, show, text} from "../dom.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";

const TEST_DELAY_MS = 250; // the tester asks the server once typing pauses this long
const KINDS = [["exact", "Exact name"], ["wildcard", "Wildcard: every name below"], ["regex", "Regular expression"]];
const KIND_WORDS = {exact: "exact", wildcard: "wildcard", regex: "regex"};
const BLOCKED = new Set(["blocked", "threat", "dropped"]);
const DECISION_WORDS = {
  blocked: "Blocked", threat: "Blocked as a threat", dropped: "Blocked (no answer at all)", allowed: "Allowed",
  forwarded: "Allowed: asked of the upstream servers", cached: "Allowed: answered from the cache",
  local: "Answered by a local record or zone", redirected: "Redirected", refused: "Refused",
  forwarded_conditional: "Allowed: sent to a conditional forwarding rule's servers",
};
const STAGE_WORDS = {
  blocklist: "a block list", whitelist: "your allow list", denylist: "your deny list", policy: "a policy rule",
  local: "a local record", private: "private-name protection", conditional: "a forwarding rule",
  filter: "the blocking pause", guard: "the rate limit", cache: "the cache", forward: "the upstream servers",
};

let cleanups = [];
let timers = [];

function ago(epochSeconds) {
  if (!epochSeconds) return "";
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 90) return "just now";
  if (s < 5400) return `${Math.round(s / 60)} minutes ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} hours ago`;
  return new Date(epochSeconds * 1000).toLocaleDateString();
}

function select(id, label, name, options, value) {
  const input = h("select", {id, name, "aria-describedby": `${id}-error`},
    options.map(([v, words]) => h("option", {value: v, selected: v === value}, words)));
  const error = h("small", {id: `${id}-error`, class: "field-error"});
  return {wrap: h("div", {class: "field"}, h("label", {for: id}, label), input, error), input, error, name, label};
}

/** Two taps to remove: the first asks, the second removes; "Keep" undoes the first. */
function removeButton(what, onRemove) {
  const ask = h("button", {type: "button", class: "danger-quiet"}, "Remove");
  const confirm = h("button", {type: "button", class: "danger", hidden: true}, `Yes, remove ${what}`);
  const keep = h("button", {type: "button", hidden: true}, "Keep");
  const asking = (on) => { show(ask, !on); show(confirm, on); show(keep, on); (on ? keep : ask).focus(); };
  ask.addEventListener("click", () => asking(true));
  keep.addEventListener("click", () => asking(false));
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    try { await onRemove(); } finally { confirm.disabled = false; }
  });
  return [ask, confirm, keep];
}

/**
 * Rows by id, rebuilt only when what they show changed (keyOf), so an open "Remove?" question
 * or the focus survives the many refreshes an update sends; `empty` when there is no item.
 */
function keyedRows(ul, cache, items, keyOf, build, empty) {
  const next = new Map();
  const els = items.map((it) => {
    const key = keyOf(it);
    const old = cache.get(it.id);
    const el = old && old.key === key ? old.el : build(it);
    next.set(it.id, {key, el});
    return el;
  });
  cache.clear();
  next.forEach((v, k) => cache.set(k, v));
  if (!els.length) {
    replace(ul, empty);
    return;
  }
  els.forEach((el, i) => { if (ul.children[i] !== el) ul.insertBefore(el, ul.children[i] || null); });
  while (ul.children.length > els.length) ul.lastElementChild.remove();
}

// ---- one list's row (block/allow lists and threat feeds) ------------------------------------------

function statusLine(l) {
  if (l.last_error) {
    const kept = l.last_success ? `Its copy from ${ago(l.last_success)} (${plural(l.entries, "entry", "entries")}) keeps working.`
      : "It has never loaded, so it does nothing yet.";
    return {bad: true, words: `Update failed: ${l.last_error}. ${kept}`};
  }
  if (!l.last_success) return {bad: false, words: l.enabled ? "Not downloaded yet." : "Not downloaded."};
  return {bad: false, words: `${plural(l.entries, "entry", "entries")} · updated ${ago(l.last_success)}`};
}

function listRow(ctx, l, base, progress, refresh) {
  const status = statusLine(l);
  const kind = l.kind === "allow" ? "allow list" : l.kind === "threat" ? "threat feed" : "block list";
  const nameId = `list-${l.id}-name`;
  const line = progress.get(l.id);
  const row = h("li", {"data-list-id": l.id, class: l.enabled ? "" : "off", "aria-labelledby": nameId},
    h("p", {class: "list-head"}, h("strong", {id: nameId}, l.name), " ", h("span", {class: "pill"}, kind),
      l.enabled ? null : h("span", {class: "pill"}, "off")),
    h("p", {class: "small source"}, l.source),
    h("p", {class: `state-line list-status${status.bad ? " bad" : ""}`}, status.words),
    h("p", {class: `small progress${line && line.bad ? " bad" : ""}`, role: "status", hidden: !line},
      line ? line.words : ""));
  if (!ctx.canWrite) return row;
  const sw = h("button", {type: "button", class: "switch", role: "switch", "aria-checked": String(!!l.enabled),
    "aria-labelledby": `list-${l.id}-use`}, h("span", {class: "knob"}));
  sw.addEventListener("click", async () => {
    sw.disabled = true;
    try {
      await ctx.api.request("PUT", `${base}/${l.id}`, {enabled: !l.enabled});
      ctx.clearError();
      ctx.notice(l.enabled ? `${l.name} is off: the lists are rebuilt without it.`
        : `${l.name} is on again: it is downloaded and compiled now.`);
    } catch (e) {
      ctx.showError(e);
    }
    sw.disabled = false;
    refresh();
  });
  const update = h("button", {type: "button"}, "Update now");
  update.addEventListener("click", async () => {
    update.disabled = true;
    progress.set(l.id, {words: `Updating ${l.name}…`});
    refresh(true);
    try {
      const report = await ctx.api.post(`${base}/${l.id}/update`);
      ctx.clearError();
      ctx.notice(`${l.name} updated: ${count(report.domains)} domains blocked in all.`);
    } catch (e) {
      ctx.showError(e);
    }
    progress.delete(l.id);
    refresh();
  });
  row.append(h("div", {class: "switch-row"}, sw, h("span", {id: `list-${l.id}-use`}, `Use ${l.name}`)),
    h("div", {class: "actions"}, update, removeButton(l.name, async () => {
      try {
        await ctx.api.del(`${base}/${l.id}`);
        ctx.clearError();
        ctx.notice(`${l.name} removed.`);
      } catch (e) {
        ctx.showError(e);
      }
      refresh();
    })));
  return row;
}

// ---- adding a list ------------------------------------------------------------------------------------

/**
 * The add form: a name and a URL of the owner's choosing. fill({name, source, kind, format})
 * prefills it, so a catalogue picker (GET /api/lists/catalogue) can sit in #list-catalogue
 * above it and hand over the list the owner tapped.
 */
function addListForm(ctx, onAdded) {
  const name = field("list-add-name", "Name", "name", {autocomplete: "off", maxlength: 64, required: true});
  const source = field("list-add-source", "Address of the list (URL)", "source",
    {type: "url", inputmode: "url", autocomplete: "off", maxlength: 2048, required: true, placeholder: "https://"},
    "A hosts file, a domain list or an adblock list, downloaded now and updated every day.");
  const kind = select("list-add-kind", "What the list does", "kind",
    [["block", "Block the names on it"], ["allow", "Allow the names on it"], ["threat", "Threat feed: block as a threat"]],
    "block");
  const format = select("list-add-format", "Format", "format",
    [["auto", "Find out from the file"], ["hosts", "hosts file"], ["domains", "one domain a line"],
     ["wildcard", "wildcards"], ["adblock", "adblock"], ["dnsmasq", "dnsmasq"], ["regex", "regular expressions"]],
    "auto");
  const fields = [name, source, kind, format];
  const submit = h("button", {type: "submit"}, "Add list");
  const form = h("form", {id: "list-add", novalidate: true, "aria-labelledby": "list-add-title"},
    h("h3", {id: "list-add-title"}, "Add a list"),
    h("div", {id: "list-catalogue", hidden: true}),
    name.wrap, source.wrap, kind.wrap, h("details", h("summary", "More options"), format.wrap), submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(fields);
    const body = {name: name.input.value.trim(), source: source.input.value.trim(), kind: kind.input.value};
    if (format.input.value !== "auto") body.format = format.input.value;
    submit.disabled = true;
    try {
      const made = await ctx.api.post("/api/lists", body);
      ctx.clearError();
      ctx.notice(`${made.name} added: it is downloaded and compiled now.`);
      form.reset();
      onAdded(made);
    } catch (e) {
      markFieldErrors(e, fields);
      ctx.showError(e, labels(fields));
    }
    submit.disabled = false;
  });
  catalogue(ctx, form.querySelector("#list-catalogue"), onAdded);
  return {el: form, fill(values) {
    for (const f of fields) if (values[f.name] !== undefined) f.input.value = values[f.name];
    name.input.focus();
  }};
}

/** The well-known lists (GET /api/lists/catalogue) above the add form, each added in one tap
 * (POST /api/lists, as a block list; its format is found out from the file). */
async function catalogue(ctx, slot, onAdded) {
  let answer;
  try {
    answer = await ctx.api.get("/api/lists/catalogue");
  } catch (e) {
    replace(slot, h("p", {class: "small"}, `The well-known lists did not load: ${ctx.api.humanMessage(e)}`));
    show(slot, true);
    return;
  }
  const rows = answer.lists.map((entry) => {
    const state = h("span", {class: "pill"}, "added");
    const add = h("button", {type: "button", class: "write", "aria-label": `Add ${entry.name}`}, "Add");
    const li = h("li", {class: "catalogue-item", "data-id": entry.id},
      h("strong", entry.name), " ", entry.added ? state : add,
      h("br"), h("small", `${entry.description} ${approx(entry)}.`));
    add.addEventListener("click", async () => {
      add.disabled = true;
      try {
        const made = await ctx.api.post("/api/lists", {name: entry.name, source: entry.url, kind: "block"});
        ctx.clearError();
        ctx.notice(`${made.name} added: it is downloaded and compiled now.`);
        add.replaceWith(state);
        onAdded(made);
      } catch (e) {
        add.disabled = false;
        ctx.showError(e);
      }
    });
    return li;
  });
  replace(slot, h("h4", "Well-known lists"), h("ul", {class: "catalogue", id: "list-catalogue-items"}, rows),
    h("h4", "Or a list of your own"));
  show(slot, true);
}

// ---- allow and deny entries, and the tester -------------------------------------------------------------

function entryText(kind, value) {
  const v = value.trim();
  if (kind === "wildcard" && v && !v.startsWith("*.")) return "*." + v.replace(/^\*?\.?/, "");
  return v;
}

/** The pattern with the character at `position` (code points, as Python counts) marked. */
function marked(pattern, position) {
  const chars = Array.from(pattern);
  const at = Math.min(position, chars.length);
  return h("code", {class: "pattern", id: "entry-test-where"}, chars.slice(0, at).join(""),
    h("mark", chars[at] === undefined ? "␣" : chars[at]), chars.slice(at + 1).join(""));
}

function userListsCard(ctx) {
  const allowUl = h("ul", {class: "entries", id: "allow-entries"}, h("li", {class: "loading"}, "Loading…"));
  const denyUl = h("ul", {class: "entries", id: "deny-entries"}, h("li", {class: "loading"}, "Loading…"));
  const kind = select("entry-kind", "Kind", "kind", KINDS, "exact");
  const entry = field("entry-text", "Name, wildcard or pattern", "domain",
    {autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: 1024},
    "Regular expressions are Python's: they are searched for in the name, e.g. ^ads[0-9]+\\.");
  const sample = field("entry-test-domain", "Test it against a name", "domain_test",
    {autocomplete: "off", autocapitalize: "none", spellcheck: "false", inputmode: "url", placeholder: "ads.example.com"});
  const result = h("p", {id: "entry-test-result", class: "state-line", role: "status"});
  const where = h("p", {class: "where", hidden: true});
  const fields = [kind, entry];
  let target = null;
  let submit = null;
  if (ctx.canWrite) {
    target = select("entry-list", "Add to", "list", [["denylist", "Deny list: always block"],
      ["whitelist", "Allow list: never block"]], "denylist");
    fields.unshift(target);
    submit = h("button", {type: "submit"}, "Add entry");
  }
  const form = h("form", {id: "entry-add", novalidate: true, "aria-labelledby": "entry-add-title"},
    h("h3", {id: "entry-add-title"}, ctx.canWrite ? "Add an entry" : "Test an entry"),
    target && target.wrap, kind.wrap, entry.wrap, sample.wrap, result, where, submit);
  const el = h("section", {class: "card", id: "userlists", "aria-labelledby": "userlists-title"},
    h("h2", {id: "userlists-title"}, "Your allow and deny lists"),
    h("p", {class: "small"}, "Your own entries beat every list: an allowed name is never blocked."),
    h("h3", "Always allowed"), allowUl, h("h3", "Always blocked"), denyUl, form);

  let seq = 0;
  let timer = null;
  async function test() {
    const mine = ++seq;
    const pattern = entryText(kind.input.value, entry.input.value);
    const domain = sample.input.value.trim();
    clearFieldErrors([entry, sample]);
    show(where, false);
    if (!pattern) {
      text(result, domain ? "Type a name, wildcard or pattern to test." : "");
      result.className = "state-line";
      return null;
    }
    const q = new URLSearchParams({pattern, kind: kind.input.value});
    if (domain) q.set("domain", domain);
    let answer;
    try {
      answer = await ctx.api.get(`/api/userlists/test?${q}`);
    } catch (e) {
      if (mine !== seq) return null;
      markFieldErrors({details: (e.details || []).map((d) => ({...d, field: d.field === "domain" ? "domain_test" : d.field}))},
        [sample]);
      text(result, e.human || String(e));
      result.className = "state-line bad";
      return null;
    }
    if (mine !== seq) return null;
    if (!answer.valid) {
      const placed = typeof answer.position === "number";
      const why = placed ? answer.error.replace(/ at position \d+$/, "") : answer.error; // said once, counted from 1
      text(result, `Not valid${placed ? ` (at character ${answer.position + 1})` : ""}: ${why}`);
      result.className = "state-line bad";
      entry.input.setAttribute("aria-invalid", "true");
      text(entry.error, why);
      if (typeof answer.position === "number") {
        replace(where, "Here: ", marked(pattern, answer.position));
        show(where, true);
      }
    } else if (answer.matches === null) {
      text(result, `Valid ${KIND_WORDS[answer.kind]} entry: ${answer.entry}`);
      result.className = "state-line";
    } else {
      text(result, answer.matches ? `Matches ${answer.domain}` : `Does not match ${answer.domain}`);
      result.className = `state-line ${answer.matches ? "match" : "no-match"}`;
    }
    result.dataset.valid = String(!!answer.valid);
    result.dataset.matches = String(answer.matches);
    return answer;
  }
  const later = () => {
    clearTimeout(timer);
    delete result.dataset.valid; // what it says is about text that changed: not an answer any more
    delete result.dataset.matches;
    timer = setTimeout(test, TEST_DELAY_MS);
  };
  for (const input of [kind.input, entry.input, sample.input]) input.addEventListener("input", later);
  kind.input.addEventListener("change", later);

  if (!ctx.canWrite) form.addEventListener("submit", (ev) => { ev.preventDefault(); test(); });
  if (ctx.canWrite) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearTimeout(timer);
      const pattern = entryText(kind.input.value, entry.input.value);
      if (!pattern) {
        markFieldErrors({details: [{field: "domain", message: "Type a name, wildcard or pattern."}]}, fields);
        return;
      }
      submit.disabled = true;
      try {
        const checked = await test();
        if (!checked || !checked.valid) return;
        const list = target.input.value;
        await ctx.api.post(`/api/${list}`, {domain: pattern});
        ctx.clearError();
        ctx.notice(`${checked.entry} added to the ${list === "whitelist" ? "allow" : "deny"} list.`);
        entry.input.value = "";
        text(result, "");
        ctx.live.refresh(list);
      } catch (e) {
        markFieldErrors(e, fields);
        ctx.showError(e, labels(fields));
      } finally {
        submit.disabled = false;
      }
    });
  }

  function entryRows(ul, list, answer, error) {
    if (!answer) {
      if (error) replace(ul, h("li", {class: "bad"}, `This list could not be read: ${error.human || error.message}`));
      return;
    }
    const rows = [];
    for (const k of ["exact", "wildcard", "regex"]) {
      for (const e of answer[k] || []) {
        const groups = (answer.groups || {})[e];
        const li = h("li", {"data-entry": e},
          h("span", {class: "entry"}, h("code", e), " ", h("span", {class: "pill"}, KIND_WORDS[k]),
            groups ? h("span", {class: "small"}, ` only for ${groups.join(", ")}`) : null));
        if (ctx.canWrite) {
          li.append(h("div", {class: "actions"}, removeButton(e, async () => {
            try {
              await ctx.api.del(`/api/${list}/${encodeURIComponent(e)}`);
              ctx.clearError();
              ctx.notice(`${e} removed.`);
            } catch (err) {
              ctx.showError(err);
            }
            ctx.live.refresh(list);
          })));
        }
        rows.push(li);
      }
    }
    replace(ul, rows.length ? rows : h("li", {class: "small"}, "Nothing here yet."));
  }
  const offs = [ctx.live.want("whitelist"), ctx.live.want("denylist"),
    ctx.live.subscribe("whitelist", (v, e) => entryRows(allowUl, "whitelist", v, e)),
    ctx.live.subscribe("denylist", (v, e) => entryRows(denyUl, "denylist", v, e))];
  return {el, destroy() { clearTimeout(timer); offs.forEach((f) => f()); }};
}

// ---- check a domain ------------------------------------------------------------------------------------------

function checkCard(ctx) {
  const domain = field("check-domain", "Domain", "domain",
    {autocomplete: "off", autocapitalize: "none", spellcheck: "false", inputmode: "url", placeholder: "ads.example.com"});
  const out = h("div", {id: "check-result", role: "status"});
  const go = h("button", {type: "submit"}, "Check");
  const form = h("form", {id: "check", novalidate: true}, domain.wrap, go);
  const el = h("section", {class: "card", id: "check-card", "aria-labelledby": "check-title"},
    h("h2", {id: "check-title"}, "Check a domain"),
    h("p", {class: "small"}, "What Burrow would answer this phone for a name, and why. Nothing is looked up."), form, out);

  async function check(name) {
    clearFieldErrors([domain]);
    go.disabled = true;
    replace(out, h("p", {class: "loading"}, "Checking…"));
    try {
      const r = await ctx.api.get(`/api/blocklists/check?domain=${encodeURIComponent(name)}`);
      ctx.clearError();
      render(r);
    } catch (e) {
      markFieldErrors(e, [domain]);
      replace(out, h("p", {class: "state-line bad"}, e.human || String(e)));
    }
    go.disabled = false;
  }

  function render(r) {
    const blocked = BLOCKED.has(r.decision);
    const by = r.stage ? `${STAGE_WORDS[r.stage] || r.stage}${r.rule ? `: ${r.rule}` : ""}` : "";
    const parts = [h("p", {class: `state-line ${blocked ? "bad" : "match"}`, id: "check-decision"},
      `${r.domain}: ${DECISION_WORDS[r.decision] || r.decision}`)];
    if (by) parts.push(h("p", {id: "check-by"}, "Decided by ", by, r.detail ? ` (${r.detail})` : ""));
    if (r.answer) parts.push(h("p", {class: "small"}, `Answer: ${r.answer}`));
    if ((r.matches || []).length) {
      parts.push(h("p", {class: "small"}, "Everything that matches:"), h("ul", {class: "matches", id: "check-matches"},
        r.matches.map((m) => h("li", `${m.list}${m.entry ? `: ${m.entry}` : m.rule ? `: ${m.rule}` : ""}` +
          (m.kind ? ` (${m.kind}${m.how ? `, ${m.how}` : ""})` : "")))));
    }
    if (blocked && ctx.canWrite) {
      const allow = h("button", {type: "button", id: "check-allow"}, `Allow ${r.domain}`);
      allow.addEventListener("click", async () => {
        allow.disabled = true;
        try {
          await ctx.api.post("/api/whitelist", {domain: r.domain});
          ctx.clearError();
          ctx.notice(`${r.domain} added to the allow list.`);
          ctx.live.refresh("whitelist");
          await check(r.domain);
        } catch (e) {
          ctx.showError(e);
          allow.disabled = false;
        }
      });
      parts.push(h("div", {class: "actions"}, allow));
    }
    replace(out, parts);
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = domain.input.value.trim();
    if (!name) {
      markFieldErrors({details: [{field: "domain", message: "Type a domain to check."}]}, [domain]);
      return;
    }
    check(name);
  });
  return {el, destroy() {}};
}

// ---- RPZ zones ------------------------------------------------------------------------------------------------------

function rpzCard(ctx) {
  const ul = h("ul", {class: "list-rows", id: "rpz-rows"});
  const el = h("section", {class: "card", id: "rpz", "aria-labelledby": "rpz-title"},
    h("h2", {id: "rpz-title"}, "RPZ zones"),
    h("p", {class: "small"}, "Response policy zones: lists in the zone-file form other DNS servers share."), ul);
  function render(answer, error) {
    if (!answer) {
      if (error) replace(ul, h("li", {class: "bad"}, `The zones could not be read: ${error.human || error.message}`));
      return;
    }
    const zones = answer.zones || [];
    replace(ul, zones.length ? zones.map((z) => {
      const status = statusLine({...z, entries: z.entries ?? z.rules});
      const li = h("li", {"data-zone-id": z.id},
        h("p", {class: "list-head"}, h("strong", z.name), " ",
          h("span", {class: "pill"}, z.source_type === "hand" ? "made here" : "downloaded"),
          z.enabled ? null : h("span", {class: "pill"}, "off")),
        z.source ? h("p", {class: "small source"}, z.source) : null,
        h("p", {class: "small"}, plural(z.rules || 0, "rule", "rules")),
        h("p", {class: `state-line${status.bad ? " bad" : ""}`}, status.words));
      if (ctx.canWrite) {
        li.append(h("div", {class: "actions"}, removeButton(z.name, async () => {
          try {
            await ctx.api.del(`/api/rpz/${z.id}`);
            ctx.clearError();
            ctx.notice(`${z.name} removed.`);
          } catch (e) {
            ctx.showError(e);
          }
          ctx.live.refresh("rpz");
          ctx.live.refresh("lists");
        })));
      }
      return li;
    }) : h("li", {class: "small"}, "No RPZ zone. Zones are added through the API (POST /api/rpz)."));
  }
  const offs = [ctx.live.want("rpz"), ctx.live.subscribe("rpz", render)];
  return {el, destroy() { offs.forEach((f) => f()); }};
}

// ---- the screen -------------------------------------------------------------------------------------------------------

export function mount(el, ctx) {
  const progress = new Map(); // list id → {words, bad}: a download running or just finished
  const blockUl = h("ul", {class: "list-rows", id: "list-rows"});
  const feedUl = h("ul", {class: "list-rows", id: "feed-rows"});
  const hits = h("p", {class: "small", id: "feed-hits"});
  let add = null;
  const card = listsCard.create(ctx, {embedded: true});
  const lists = h("section", {class: "card", id: "list-table", "aria-labelledby": "list-table-title"},
    h("h2", {id: "list-table-title"}, "Your lists"), blockUl);
  if (ctx.canWrite) {
    add = addListForm(ctx, () => ctx.live.refresh("lists"));
    lists.append(add.el);
  }
  const feeds = h("section", {class: "card", id: "threat-feeds", "aria-labelledby": "feeds-title"},
    h("h2", {id: "feeds-title"}, "Threat feeds"),
    h("p", {class: "small"}, "Names of malware and phishing hosts: blocked and reported as threats."), hits, feedUl);
  const users = userListsCard(ctx);
  const check = checkCard(ctx);
  const rpz = rpzCard(ctx);
  el.append(card.el, lists, users.el, check.el, feeds, rpz.el);

  let lastLists = null;
  let lastFeeds = null;
  const blockRows = new Map();
  const feedRows = new Map();
  const rowKey = (l) => JSON.stringify([l, progress.get(l.id) || null, statusLine(l).words]);
  function renderLists(answer, error) {
    if (answer) lastLists = answer;
    if (!lastLists) {
      replace(blockUl, h("li", {class: error ? "bad" : "loading"},
        error ? `The lists could not be read: ${error.human || error.message}` : "Loading…"));
      return;
    }
    const rows = (lastLists.lists || []).filter((l) => l.kind !== "threat" && l.format !== "rpz");
    keyedRows(blockUl, blockRows, rows, rowKey, (l) => listRow(ctx, l, "/api/lists", progress, refreshAll),
      h("li", {class: "small", id: "list-rows-empty"}, ctx.canWrite
        ? "No list yet. Add one below: Burrow downloads it and blocks the names on it."
        : "No list yet. An admin account can add one."));
  }
  function renderFeeds(answer, error) {
    if (answer) lastFeeds = answer;
    if (!lastFeeds) {
      if (error) replace(feedUl, h("li", {class: "bad"}, `The threat feeds could not be read: ${error.human || error.message}`));
      return;
    }
    const rows = lastFeeds.feeds || [];
    const h24 = lastFeeds.hits || {};
    text(hits, rows.length ? `${plural(h24.total || 0, "query", "queries")} blocked as threats since Burrow started.` : "");
    keyedRows(feedUl, feedRows, rows, rowKey, (l) => listRow(ctx, l, "/api/threat-feeds", progress, refreshAll),
      h("li", {class: "small", id: "feed-rows-empty"}, ctx.canWrite
        ? "No threat feed. Add one above with \u201cThreat feed\u201d as what the list does." : "No threat feed."));
  }
  function refreshAll(localOnly) {
    renderLists();
    renderFeeds();
    if (localOnly === true) return;
    ctx.live.refresh("lists");
    ctx.live.refresh("threatFeeds");
  }
  // lists.* events: a download of one list started or finished (data.id is the list's id).
  function onEvent(event) {
    const d = event.data || {};
    const kind = event.type.slice("lists.".length);
    if (kind === "download_started" && d.id !== undefined) {
      progress.set(d.id, {words: `Downloading ${d.name || "the list"}…`});
    } else if (kind === "download_finished" && d.id !== undefined) {
      progress.set(d.id, d.status === "failed" ? {words: `Download failed: ${d.error || "unknown error"}`, bad: true}
        : {words: d.status === "not_modified" ? "Unchanged since the last download." : "Downloaded; compiling…"});
    } else if (kind === "refresh_finished") {
      progress.clear();
    } else {
      return;
    }
    refreshAll(true);
  }
  cleanups = [card.destroy, users.destroy, check.destroy, rpz.destroy,
    ctx.live.want("lists"), ctx.live.want("threatFeeds"),
    ctx.live.subscribe("lists", renderLists), ctx.live.subscribe("threatFeeds", renderFeeds),
    ctx.live.on("lists.", onEvent)];
  renderLists();
  // "updated 5 minutes ago" stays true while the screen is open
  timers = [setInterval(() => refreshAll(true), 60000)];
}

export function unmount() {
  for (const t of timers) clearInterval(t);
  for (const off of cleanups) off();
  cleanups = [];
  timers = [];
}
