// Conditional forwarding: queries that match a rule (its domains, and/or client networks and
// query types) are asked of that rule's own servers instead of the usual upstreams — a company
// VPN's names, the router's local names and reverse lookups.
//
// Uses /api/conditionalforwarding (seed 003; the same rules as /api/forwarders, which only
// shape the answers differently): GET (the "forwarding" resource, live on forwarding.* events),
// POST, PUT and DELETE /api/conditionalforwarding/{name} (an exact name is an id too, and
// unlike name:priority:index it does not move when other rules change); the switch for all rules is
// POST /api/conditionalforwarding/enabled. The router preset is the dashboard's card
// (../cards/router_preset.js), reused here. A viewer sees the rules and no control.

import * as routerCard from "../cards/router_preset.js";
import {h, plural, replace, show, text} from "../dom.js";
import {checkField, deleteButton, listless, markErrors, splitList} from "../editing.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";

let stop = [];

export function mount(el, ctx) {
  const pill = h("span", {id: "forwarding-on", class: "pill"}, "…");
  const sw = ctx.canWrite ? h("button", {type: "button", id: "forwarding-switch", class: "switch", role: "switch",
    "aria-checked": "false", "aria-labelledby": "forwarding-switch-label", disabled: true},
  h("span", {class: "knob", "aria-hidden": "true"})) : null;
  const state = h("p", {id: "forwarding-state", class: "small", role: "status"}, "Loading the rules…");
  const retry = h("button", {type: "button", id: "forwarding-retry", hidden: true}, "Try again");
  retry.addEventListener("click", () => ctx.live.refresh("forwarding"));
  const list = h("ul", {id: "forwarding-list", class: "items"});
  el.append(h("section", {class: "card", id: "forwarding", "aria-labelledby": "forwarding-title"},
    h("h2", {id: "forwarding-title"}, "Conditional forwarding"),
    h("p", {class: "small"}, "Names a rule matches are asked of that rule's own DNS servers instead of the " +
      "usual upstreams: a company network's names, or your router's local names."),
    h("div", {class: "switch-row"}, sw,
      h("span", {id: "forwarding-switch-label"}, "Use the rules below"), pill),
    state, retry, list));

  const card = routerCard.create(ctx);
  el.append(card.el);
  stop.push(() => card.destroy());
  const form = ctx.canWrite ? ruleForm(ctx) : null;
  if (form) el.append(form.card);

  let enabled = null;
  let busy = false;

  function render(answer, error) {
    if (!answer) {
      if (error) {
        text(state, `The rules could not be read. ${error.human || ""}`);
        show(retry, true);
      }
      return;
    }
    show(retry, false);
    enabled = answer.enabled === true;
    text(pill, enabled ? "On" : "Off");
    if (sw) {
      sw.setAttribute("aria-checked", enabled ? "true" : "false");
      sw.disabled = busy;
    }
    const rules = answer.rules || [];
    text(state, (rules.length ? plural(rules.length, "rule", "rules")
      : "No rules yet." + (ctx.canWrite ? " Add one below, or ask the router for local names." : ""))
      + (enabled || !rules.length ? "" : " The switch is off: no rule is used."));
    if (error) text(state, `${state.textContent} (Could not refresh: ${error.human || ""})`);
    replace(list, rules.map((r) => ruleItem(ctx, r, form)));
  }

  if (sw) {
    sw.addEventListener("click", async () => {
      if (busy || enabled === null) return;
      busy = true;
      sw.disabled = true;
      try {
        const result = await ctx.api.post("/api/conditionalforwarding/enabled", {enabled: !enabled});
        ctx.clearError();
        ctx.notice(result.enabled ? "Conditional forwarding is on." : "Conditional forwarding is off; the rules are kept.");
      } catch (e) {
        ctx.showError(e);
      } finally {
        busy = false;
      }
      await ctx.live.refresh("forwarding");
    });
  }

  stop.push(ctx.live.want("forwarding"), ctx.live.subscribe("forwarding", render));
}

export function unmount() {
  for (const fn of stop) fn();
  stop = [];
}

function ruleItem(ctx, r, form) {
  const parts = [];
  if (r.domains.length) parts.push(`Names: ${r.domains.join(", ")}`);
  if (r.client_cidrs.length) parts.push(`Clients: ${r.client_cidrs.join(", ")}`);
  if (r.query_types.length) parts.push(`Types: ${r.query_types.join(", ")}`);
  const how = [`priority ${r.priority}`];
  if (r.timeout) how.push(`timeout ${r.timeout}`);
  if (r.max_retries) how.push(`${plural(r.max_retries, "retry", "retries")}`);
  if (r.failover) how.push("tries the next server when one fails");
  const item = h("li", {"data-name": r.name, class: r.enabled ? null : "off"},
    h("p", {class: "item-title"}, r.name, r.enabled ? null : h("span", {class: "pill"}, "Off")),
    h("p", {class: "small"}, parts.join(" · ")),
    h("p", {class: "small"}, `Asks ${r.upstreams.join(", ")} (${how.join(", ")})`));
  if (ctx.canWrite && form) {
    const edit = h("button", {type: "button", "aria-label": `Edit rule ${r.name}`}, "Edit");
    edit.addEventListener("click", () => form.edit(r));
    item.append(h("div", {class: "actions"}, edit,
      deleteButton("Delete", `Delete the rule ${r.name}?`, async () => {
        try {
          await ctx.api.del(`/api/conditionalforwarding/${encodeURIComponent(r.name)}`);
          ctx.clearError();
          ctx.notice(`Rule ${r.name} deleted.`);
          if (form.editing() === r.name) form.reset();
        } catch (e) {
          ctx.showError(e);
        }
        await ctx.live.refresh("forwarding");
      }, {"aria-label": `Delete rule ${r.name}`})));
  }
  return item;
}

function ruleForm(ctx) {
  const plain = {autocomplete: "off", autocapitalize: "none", spellcheck: "false"};
  const name = field("fwd-name", "Rule name", "name", {maxlength: "100", required: true, autocomplete: "off"});
  const domains = field("fwd-domains", "Domains", "domains", plain,
    "corp.example.com (it and every name below), or *.corp.example.com (only below). Several: spaces or commas.");
  const upstreams = field("fwd-upstreams", "DNS servers to ask", "upstreams", plain,
    "IP addresses, optionally with :port (192.168.1.1, 10.0.0.53:5353, [fd00::1]:53).");
  const clients = field("fwd-clients", "Only for clients (optional)", "client_cidrs", plain,
    "Networks in CIDR notation, for example 192.168.1.0/24. Empty: every client.");
  const qtypes = field("fwd-qtypes", "Only for query types (optional)", "query_types", plain,
    "For example PTR, or A AAAA. Empty: every type.");
  const priority = field("fwd-priority", "Priority", "priority", {inputmode: "numeric", maxlength: "3", placeholder: "50"},
    "1-100: when rules overlap, the higher one wins. Empty: 50.");
  const timeout = field("fwd-timeout", "Timeout per try", "timeout", {...plain, maxlength: "32", placeholder: "2s"},
    "For example 2s or 500ms. Empty: the usual.");
  const retries = field("fwd-retries", "Extra tries per server", "max_retries", {inputmode: "numeric", maxlength: "2",
    placeholder: "0"});
  const failover = checkField("fwd-failover", "Ask the next server when one fails", "failover");
  const enabled = checkField("fwd-enabled", "Rule is on", "enabled", {checked: true});
  const fields = [name, domains, upstreams, clients, qtypes, priority, timeout, retries, failover, enabled];
  const title = h("h2", {id: "fwd-title"}, "Add a rule");
  const submit = h("button", {type: "submit", id: "fwd-submit"}, "Add rule");
  const cancel = h("button", {type: "button", hidden: true}, "Cancel");
  const form = h("form", {id: "fwd-form", novalidate: true}, ...fields.map((f) => f.wrap),
    h("div", {class: "actions"}, submit, cancel));
  const card = h("section", {class: "card", id: "fwd-editor", "aria-labelledby": "fwd-title"}, title, form);
  let editing = null; // the rule being changed, by its name (an exact name is also an id)

  function reset() {
    editing = null;
    form.reset();
    enabled.input.checked = true;
    clearFieldErrors(fields);
    text(title, "Add a rule");
    text(submit, "Add rule");
    show(cancel, false);
  }

  function edit(r) {
    editing = {name: r.name};
    clearFieldErrors(fields);
    name.input.value = r.name;
    domains.input.value = r.domains.join(", ");
    upstreams.input.value = r.upstreams.join(", ");
    clients.input.value = r.client_cidrs.join(", ");
    qtypes.input.value = r.query_types.join(", ");
    priority.input.value = String(r.priority);
    timeout.input.value = r.timeout || "";
    retries.input.value = r.max_retries ? String(r.max_retries) : "";
    failover.input.checked = !!r.failover;
    enabled.input.checked = !!r.enabled;
    text(title, `Change the rule ${r.name}`);
    text(submit, "Save changes");
    show(cancel, true);
    card.scrollIntoView({block: "start"});
    name.input.focus();
  }

  function number(text) {
    const s = text.trim();
    return /^\d+$/.test(s) ? Number(s) : s;
  }

  cancel.addEventListener("click", () => { reset(); ctx.clearError(); });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(fields);
    const body = {
      name: name.input.value.trim(),
      domains: splitList(domains.input.value),
      upstreams: splitList(upstreams.input.value),
      client_cidrs: splitList(clients.input.value),
      query_types: splitList(qtypes.input.value).map((t) => t.toUpperCase()),
      failover: failover.input.checked,
      enabled: enabled.input.checked,
      timeout: timeout.input.value.trim(),
    };
    if (priority.input.value.trim()) body.priority = number(priority.input.value);
    else if (editing) body.priority = 50;
    if (retries.input.value.trim()) body.max_retries = number(retries.input.value);
    else if (editing) body.max_retries = 0;
    const missing = [];
    if (!body.name) missing.push({field: "name", message: "Enter a name for the rule."});
    if (!body.upstreams.length) missing.push({field: "upstreams", message: "Enter at least one DNS server."});
    if (!body.domains.length && !body.client_cidrs.length && !body.query_types.length) {
      missing.push({field: "domains", message: "Enter the domains this rule is for (or clients or query types)."});
    }
    if (missing.length) {
      markFieldErrors({details: missing}, fields);
      ctx.showError(new Error(`Please fill in: ${missing.map((m) => labels(fields)[m.field]).join(", ")}.`));
      return;
    }
    submit.disabled = true;
    try {
      if (editing) {
        await ctx.api.request("PUT", `/api/conditionalforwarding/${encodeURIComponent(editing.name)}`, body);
        ctx.notice(`Rule ${body.name} saved.`);
      } else {
        await ctx.api.post("/api/conditionalforwarding", body);
        ctx.notice(`Rule ${body.name} added.`);
      }
      ctx.clearError();
      reset();
    } catch (e) {
      markErrors(e, fields, body);
      ctx.showError(listless(e), labels(fields));
    } finally {
      submit.disabled = false;
    }
    await ctx.live.refresh("forwarding");
  });
  return {card, edit, reset, editing: () => editing && editing.name};
}
