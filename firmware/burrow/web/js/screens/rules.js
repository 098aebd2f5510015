// Policy rules: the ordered rules (GET /api/policies) with what each does in words
// (GET /api/policies/summaries), and for an admin the editor: every field is checked by the
// server as the owner types (POST /api/policies/validate, debounced; it changes nothing), a bad
// expression is marked at the character the parser stopped at, and a valid rule shows the
// sentence the server makes of it ("Blocks *.tiktok.com for group kids on weekdays 21:00–07:00").
// Saving is POST /api/policies or PUT /api/policies/{id}; a rule is turned on and off with PUT.
// A viewer sees the rules and their sentences, and no control that changes them.

import {confirmInline} from "../confirm_inline.js";
import {h, plural, replace, show, text} from "../dom.js";
import {clearFieldErrors, field, labels} from "../forms.js";

const CHECK_DELAY_MS = 300; // after the last keystroke
const ACTIONS = [
  ["BLOCK", "Block", "Answer as blocked (the blocking mode's answer)."],
  ["ALLOW", "Allow", "Let it through: no list blocks it."],
  ["REDIRECT", "Redirect", "Answer with the addresses you give."],
  ["FORWARD", "Forward", "Ask the upstream servers you give instead."],
];
const TARGET_LABEL = {REDIRECT: "Answer with (IPv4 and/or IPv6, comma-separated)",
                      FORWARD: "Ask these servers (ip or ip:port, comma-separated)"};
const EXAMPLES = [
  ["Kids' bedtime", 'InClientGroup(ClientIP, "kids") && !IsWeekend() && InTimeRange(Hour, Minute, 21, 0, 7, 0)'],
  ["One site and everything below it", 'DomainEndsWith(Domain, "tiktok.com")'],
  ["Working hours", "Hour >= 9 && Hour < 17 && Weekday >= 1 && Weekday <= 5"],
  ["A device or network", 'IPInCIDR(ClientIP, "192.168.1.0/24") || IPEquals(ClientIP, "192.168.1.40")'],
];

let cleanup = [];

/** The characters of a string (code points: the server counts positions in those, not UTF-16). */
function chars(s) {
  return Array.from(String(s || ""));
}

/** Line and column (1-based) of code point `pos` in `source`. */
export function lineColumn(source, pos) {
  const cs = chars(source).slice(0, pos);
  let line = 1;
  let col = 1;
  for (const c of cs) {
    if (c === "\n") { line += 1; col = 1; } else col += 1;
  }
  return {line, col};
}

/**
 * The line of `source` holding code point `pos`, split around it: {before, at, after, end}.
 * `end` is true when the position is past the last character (something is missing there).
 */
export function around(source, pos) {
  const cs = chars(source);
  const p = Math.max(0, Math.min(pos, cs.length));
  let start = p;
  while (start > 0 && cs[start - 1] !== "\n") start -= 1;
  let stop = p;
  while (stop < cs.length && cs[stop] !== "\n") stop += 1;
  const flat = (list) => list.join("").replace(/\t/g, " ");
  const end = p >= stop;
  return {before: flat(cs.slice(start, p)), at: end ? "" : flat(cs.slice(p, p + 1)),
          after: end ? "" : flat(cs.slice(p + 1, stop)), end};
}

/** The UTF-16 offset of code point `pos` (for setSelectionRange). */
function utf16Offset(source, pos) {
  return chars(source).slice(0, pos).join("").length;
}

export function mount(el, ctx) {
  const canWrite = ctx.canWrite;
  let rules = null;
  let summaries = new Map(); // id → sentence
  let loadError = null;
  let editor = null; // the open editor: {id (null: new), ...}

  const listState = h("p", {id: "rule-state", class: "loading"}, "Loading the rules…");
  const list = h("ol", {id: "rule-list", class: "rows", "aria-live": "polite"});
  const listCard = h("section", {class: "card", "aria-labelledby": "rules-title"},
    h("h2", {id: "rules-title"}, "Policy rules"),
    h("p", {class: "small"}, "A rule decides a query by its name, the device asking, its type and the time. " +
      "Rules are checked in order; the first rule that is on and matches decides."),
    listState, list);
  const newButton = canWrite ? h("button", {type: "button", id: "new-rule", on: {click: () => openEditor(null)}}, "New rule") : null;
  if (newButton) listCard.append(h("div", {class: "actions"}, newButton));
  const editorSlot = h("div", {id: "editor-slot"});
  el.append(listCard, editorSlot);

  // ---- the list -----------------------------------------------------------------------------------
  function ruleBody(r, changes = {}) {
    return {name: r.name, logic: r.logic, action: r.action, action_data: r.action_data || "", enabled: r.enabled, ...changes};
  }

  function ruleRow(r) {
    const sentence = summaries.get(r.id);
    const li = h("li", {"data-id": String(r.id), class: r.enabled ? "" : "off"},
      h("h3", {class: "row-title"}, r.name, h("span", {class: "pill"}, r.action),
        canWrite ? null : h("span", {class: "pill rule-state"}, r.enabled ? "On" : "Off")),
      h("p", {class: "summary"}, sentence || ""),
      h("p", {class: "small"}, "Condition: ", h("code", {class: "logic"}, r.logic)),
      r.action_data ? h("p", {class: "small"}, r.action === "REDIRECT" ? "Answer: " : "Servers: ", h("code", r.action_data)) : null);
    if (canWrite) {
      const switchEl = h("button", {type: "button", role: "switch", class: "switch", "aria-checked": r.enabled ? "true" : "false",
        "aria-label": `Rule ${r.name} on`, on: {click: async () => {
          switchEl.disabled = true;
          try {
            await ctx.api.request("PUT", `/api/policies/${r.id}`, ruleBody(r, {enabled: !r.enabled}));
            ctx.clearError();
            await refreshAll();
          } catch (e) {
            ctx.showError(e);
            switchEl.disabled = false;
          }
        }}}, h("span", {class: "knob"}));
      const actions = h("div", {class: "actions"},
        h("button", {type: "button", "aria-label": `Edit rule ${r.name}`, on: {click: () => openEditor(r)}}, "Edit"),
        h("button", {type: "button", class: "danger", "aria-label": `Delete rule ${r.name}`,
                     on: {click: () => confirmInline(actions, `Delete the rule ${r.name}?`, "Delete rule", () => deleteRule(r))}},
          "Delete"));
      li.append(h("div", {class: "switch-row"}, switchEl, h("span", {class: "rule-state"}, r.enabled ? "Rule is on" : "Rule is off")),
                actions);
    }
    return li;
  }

  async function refreshAll() {
    await Promise.all([ctx.live.refresh("policies"), ctx.live.refresh("policySummaries")]);
  }

  async function deleteRule(r) {
    try {
      await ctx.api.del(`/api/policies/${r.id}`);
      ctx.clearError();
      ctx.notice(`Rule ${r.name} deleted.`);
      if (editor && editor.id === r.id) closeEditor();
      await refreshAll();
    } catch (e) {
      ctx.showError(e);
      throw e;
    }
  }

  function renderList() {
    if (!rules) {
      if (loadError) {
        listState.className = "error-state";
        text(listState, `The rules could not be loaded: ${loadError}`);
      }
      show(list, false);
      return;
    }
    listState.className = "small";
    text(listState, rules.length ? plural(rules.length, "rule", "rules")
      : canWrite ? "No rules yet. A rule can, for example, block a site for one group at night: start with New rule."
        : "No rules yet.");
    replace(list, rules.map(ruleRow));
    show(list, rules.length > 0);
  }

  // ---- the editor ---------------------------------------------------------------------------------
  function openEditor(rule) {
    closeEditor();
    editor = buildEditor(rule);
    editorSlot.append(editor.el);
    editor.fields.name.input.focus();
    editor.check();
  }

  function closeEditor() {
    if (!editor) return;
    clearTimeout(editor.timer);
    editor.el.remove();
    editor = null;
  }

  function buildEditor(rule) {
    const id = rule ? rule.id : null;
    const name = field("rule-name", "Name", "name", {maxlength: 200, autocomplete: "off", required: true});
    const actionId = "rule-action";
    const action = h("select", {id: actionId, name: "action", "aria-describedby": "rule-action-help rule-action-error"},
      ACTIONS.map(([value, label]) => h("option", {value}, label)));
    const actionHelp = h("small", {id: "rule-action-help"});
    const actionError = h("small", {id: "rule-action-error", class: "field-error"});
    const actionWrap = h("div", {class: "field"}, h("label", {for: actionId}, "Action"), action, actionHelp, actionError);
    const target = field("rule-target", TARGET_LABEL.REDIRECT, "action_data", {maxlength: 1024, autocomplete: "off",
      autocapitalize: "none", spellcheck: "false"});
    const targetLabel = target.wrap.querySelector("label");
    const logicHelpId = "rule-logic-help";
    const logic = h("textarea", {id: "rule-logic", name: "logic", rows: 4, maxlength: 4096, spellcheck: "false",
      autocapitalize: "none", autocomplete: "off", class: "code",
      "aria-describedby": `${logicHelpId} rule-logic-error`});
    const logicError = h("small", {id: "rule-logic-error", class: "field-error"});
    const where = h("pre", {id: "rule-logic-where", class: "where", hidden: true});
    const goThere = h("button", {type: "button", id: "rule-logic-go", class: "secondary", hidden: true}, "Show in the condition");
    const logicWrap = h("div", {class: "field"}, h("label", {for: "rule-logic"}, "Condition"), logic,
      h("small", {id: logicHelpId}, "For example ", h("code", 'DomainEndsWith(Domain, "tiktok.com") && Hour >= 21'),
        ". && is and, || is or, ! is not."),
      logicError, where, goThere);
    const enabled = h("button", {type: "button", role: "switch", class: "switch", id: "rule-enabled", "aria-checked": "true",
      "aria-labelledby": "rule-enabled-label", on: {click: () => {
        enabled.setAttribute("aria-checked", enabled.getAttribute("aria-checked") === "true" ? "false" : "true");
        schedule();
      }}}, h("span", {class: "knob"}));
    const enabledRow = h("div", {class: "switch-row"}, enabled, h("span", {id: "rule-enabled-label"}, "Rule on"));
    const preview = h("p", {id: "rule-preview", class: "preview", role: "status"});
    const examples = h("details", {class: "examples"}, h("summary", "Examples and what a condition can test"),
      h("ul", EXAMPLES.map(([label, source]) => h("li", h("span", label, ": "), h("code", source), " ",
        h("button", {type: "button", class: "use-example", "aria-label": `Use the example ${label}`, on: {click: () => {
          logic.value = source;
          touched.add("logic");
          schedule(0);
          logic.focus();
        }}}, "Use")))),
      h("p", {class: "small"}, "Names: Domain, ClientIP, QueryType, Hour, Minute, Weekday (0 = Sunday), Day, Month. " +
        "Tests: DomainMatches, DomainEndsWith, DomainStartsWith, DomainRegex, DomainLevelCount, InClientGroup, " +
        "IPInCIDR, IPEquals, QueryTypeIn, IsWeekend(), InTimeRange(Hour, Minute, from h, m, to h, m). " +
        "Text goes in quotes."));
    const save = h("button", {type: "submit", class: "primary"}, rule ? "Save rule" : "Add rule");
    const cancel = h("button", {type: "button", on: {click: closeEditor}}, "Cancel");
    const form = h("form", {id: "rule-form", novalidate: true, "aria-labelledby": "rule-editor-title", on: {submit: onSave}},
      name.wrap, actionWrap, target.wrap, logicWrap, examples, enabledRow,
      h("h3", "What it does"), preview, h("div", {class: "actions"}, save, cancel));
    const card = h("section", {id: "rule-editor", class: "card", "aria-labelledby": "rule-editor-title"},
      h("h2", {id: "rule-editor-title"}, rule ? `Edit rule ${rule.name}` : "New rule"), form);

    const fieldMap = {name, action: {input: action, error: actionError, name: "action", label: "Action"},
                      action_data: target, logic: {input: logic, error: logicError, name: "logic", label: "Condition"}};
    const all = Object.values(fieldMap);
    if (rule) {
      name.input.value = rule.name;
      action.value = rule.action;
      target.input.value = rule.action_data || "";
      logic.value = rule.logic;
      enabled.setAttribute("aria-checked", rule.enabled ? "true" : "false");
    }
    let seq = 0;
    let lastPosition = null;
    const state = {id, el: card, fields: fieldMap, timer: null, check};

    function body() {
      const b = {name: name.input.value, logic: logic.value, action: action.value,
                 enabled: enabled.getAttribute("aria-checked") === "true"};
      if (TARGET_LABEL[action.value]) b.action_data = target.input.value;
      return b;
    }

    function syncAction() {
      const needsTarget = !!TARGET_LABEL[action.value];
      show(target.wrap, needsTarget);
      if (needsTarget) text(targetLabel, TARGET_LABEL[action.value]);
      text(actionHelp, (ACTIONS.find(([v]) => v === action.value) || ["", "", ""])[2]);
    }

    // While typing, a field the owner has not reached yet is not called wrong ("name is
    // required" the moment the editor opens); saving marks every field.
    const touched = new Set(rule ? Object.keys(fieldMap) : []);

    function showProblems(errors, source, every = false) {
      clearFieldErrors(all);
      lastPosition = null;
      show(where, false);
      show(goThere, false);
      for (const e of errors) {
        const f = fieldMap[e.field] || fieldMap.logic;
        if (!every && !touched.has(f.name)) continue;
        let message = e.message;
        if (f === fieldMap.logic && Number.isInteger(e.position)) {
          const {line, col} = lineColumn(source, e.position);
          const part = around(source, e.position);
          message = `${message} (line ${line}, character ${col})`;
          replace(where, part.before, h("mark", {class: part.end ? "at at-end" : "at"}, part.end ? " " : part.at), part.after);
          where.setAttribute("data-position", String(e.position));
          show(where, true);
          show(goThere, true);
          lastPosition = e.position;
        }
        const before = f.error.textContent;
        text(f.error, before ? `${before} ${message}` : message);
        f.input.setAttribute("aria-invalid", "true");
      }
    }

    async function check(every = false) {
      const mine = ++seq;
      const sent = body();
      try {
        const answer = await ctx.api.post("/api/policies/validate", sent);
        if (mine !== seq) return; // a newer check is under way
        showProblems(answer.errors, sent.logic, every);
        card.dataset.valid = answer.valid ? "true" : "false";
        text(preview, answer.valid ? answer.summary : "The sentence appears once the rule is complete and correct.");
        preview.classList.toggle("pending", !answer.valid);
      } catch (e) {
        if (mine !== seq) return;
        card.dataset.valid = "unknown";
        if (e.status === 400 && e.details.length) {
          showProblems(e.details, sent.logic, true);
          text(preview, "The sentence appears once the rule is complete and correct.");
        } else {
          text(preview, `The rule could not be checked: ${e.human || e.message}`);
        }
        preview.classList.add("pending");
      }
    }

    function schedule(delay = CHECK_DELAY_MS) {
      clearTimeout(state.timer);
      card.dataset.valid = "checking";
      state.timer = setTimeout(check, delay);
    }

    goThere.addEventListener("click", () => {
      if (lastPosition === null) return;
      const at = utf16Offset(logic.value, lastPosition);
      logic.focus();
      logic.setSelectionRange(at, Math.min(at + 1, logic.value.length));
    });

    async function onSave(ev) {
      ev.preventDefault();
      clearTimeout(state.timer);
      const sent = body();
      save.disabled = true;
      try {
        const saved = id === null ? await ctx.api.post("/api/policies", sent)
          : await ctx.api.request("PUT", `/api/policies/${id}`, sent);
        ctx.clearError();
        ctx.notice(`Rule ${saved.name} ${id === null ? "added" : "saved"}.`);
        closeEditor();
        await refreshAll();
        if (newButton) newButton.focus();
      } catch (e) {
        save.disabled = false;
        ctx.showError(e, labels(all));
        await check(true); // every problem, with the position in the condition as typed
        const bad = all.find((f) => f.input.getAttribute("aria-invalid") === "true");
        if (bad) bad.input.focus();
      }
    }

    for (const [key, input] of [["name", name.input], ["action_data", target.input], ["logic", logic]]) {
      input.addEventListener("input", () => { touched.add(key); schedule(); });
    }
    action.addEventListener("change", () => { touched.add("action"); syncAction(); schedule(0); });
    syncAction();
    return state;
  }

  cleanup = [
    ctx.live.want("policies"), ctx.live.want("policySummaries"),
    ctx.live.subscribe("policies", (answer, error) => {
      if (error) loadError = error.human || String(error.message);
      if (answer) { rules = answer.policies || []; loadError = null; }
      renderList();
    }),
    ctx.live.subscribe("policySummaries", (answer) => {
      if (!answer) return;
      summaries = new Map((answer.summaries || []).map((s) => [s.id, s.summary]));
      renderList();
    }),
    () => closeEditor(),
  ];
}

export function unmount() {
  for (const fn of cleanup) fn();
  cleanup = [];
}
