// Pause blocking, for everyone or one group, for a time or until resumed, with a countdown.
//
// The state is GET /api/blocking (live: a pause made elsewhere arrives as a blocking.* event
// carrying the new state) and the group names GET /api/groups. No control is drawn before the
// state is known, so nothing shows "Resume" while blocking may well be on. A read-only account
// sees the state and the countdowns but no button at all (the API refuses it anyway).

import {h, show, text} from "../dom.js";

const PAUSES = [[300, "Pause 5 min"], [1800, "Pause 30 min"], [3600, "Pause 1 h"], [0, "Pause until resumed"]];

function withDeadline(state, receivedAt) {
  const left = state ? state.remaining_seconds : null;
  return {enabled: !state || state.enabled !== false,
          until: left === null || left === undefined ? null : receivedAt + left * 1000};
}

export function formatLeft(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hours = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return (hours ? `${hours}:` : "") + (hours ? String(m).padStart(2, "0") : String(m)) + ":" + String(sec).padStart(2, "0");
}

function describe(state, now) {
  if (!state || state.enabled) return {text: "On", left: ""};
  if (state.until === null) return {text: "Paused", left: "until resumed"};
  return {text: "Paused", left: `${formatLeft(state.until - now)} left`};
}

export function create(ctx) {
  const stateEl = h("span", {id: "blocking-state", "aria-live": "polite"}, "Checking…");
  const leftEl = h("span", {id: "blocking-left", class: "left"});
  const note = h("p", {id: "blocking-note", class: "small", hidden: true});
  const globalActions = actions("", "");
  globalActions.div.hidden = true;
  const groupsEl = h("ul", {id: "groups", class: "groups"});
  const groupsTitle = h("h3", {hidden: true}, "Per group");
  const el = h("section", {id: "blocking", class: "card", "aria-labelledby": "blocking-title"},
    h("h2", {id: "blocking-title"}, "Blocking"),
    h("p", {class: "state"}, stateEl, " ", leftEl), note, ctx.canWrite ? globalActions.div : null,
    groupsTitle, groupsEl);
  const rows = new Map(); // group name → {li, state, left, resume, buttons}
  let blocking = null; // {global: {enabled, until}, groups: {name: {enabled, until}}}
  let names = null;
  let noLists = false;

  function actions(group, forWhom) {
    const buttons = PAUSES.map(([seconds, label]) => h("button", {
      type: "button", class: "write", "data-pause": String(seconds), disabled: !ctx.canWrite,
      "aria-label": forWhom ? `${label} ${forWhom}` : null}, label));
    const resume = h("button", {type: "button", class: "write resume", "data-resume": true, disabled: true,
      "aria-label": forWhom ? `Resume blocking ${forWhom}` : null}, "Resume");
    const div = h("div", {class: "actions", "data-group": group}, buttons, resume);
    return {div, buttons, resume};
  }

  function addRow(name) {
    const state = h("span", {class: "group-state"});
    const left = h("span", {class: "left"});
    const a = actions(name, `for group ${name}`);
    const li = h("li", {"data-name": name}, h("p", {class: "state"}, h("strong", name), " ", state, " ", left),
      ctx.canWrite ? a.div : null);
    groupsEl.append(li); // the API's order (default first); a group made later goes last
    const row = {li, state, left, resume: a.resume, buttons: a.buttons};
    rows.set(name, row);
    return row;
  }

  function render() {
    if (!blocking) return;
    const g = blocking.global;
    el.classList.toggle("paused", !g.enabled);
    globalActions.div.hidden = false;
    for (const b of globalActions.buttons) b.disabled = !ctx.canWrite;
    globalActions.resume.disabled = !ctx.canWrite || g.enabled;
    if (names) {
      const seen = new Set(names);
      for (const name of names) {
        const row = rows.get(name) || addRow(name);
        const s = blocking.groups[name];
        row.li.classList.toggle("paused", !!s && !s.enabled);
        row.resume.disabled = !ctx.canWrite || !s || s.enabled;
        for (const b of row.buttons) b.disabled = !ctx.canWrite;
      }
      for (const [name, row] of rows) {
        if (!seen.has(name)) { row.li.remove(); rows.delete(name); }
      }
      groupsTitle.hidden = names.length === 0;
    }
    tick();
  }

  // Once a second: count the time left down, and ask again when a pause should have ended.
  function tick() {
    if (!blocking) return;
    const now = Date.now();
    const g = blocking.global;
    text(stateEl, g.enabled ? "Blocking is on" : "Blocking is paused");
    text(leftEl, describe(g, now).left);
    text(note, g.enabled && noLists ? "There is nothing to block yet: no block list is set up (see Block lists below)." : "");
    show(note, g.enabled && noLists);
    let expired = g.until !== null && g.until <= now;
    for (const [name, row] of rows) {
      const s = blocking.groups[name];
      const d = describe(s, now);
      text(row.state, d.text);
      text(row.left, d.left);
      expired = expired || (!!s && s.until !== null && s.until <= now);
    }
    if (expired) ctx.live.refresh("blocking");
  }

  async function onClick(ev) {
    const b = ev.target.closest("button[data-pause], button[data-resume]");
    if (!b || b.disabled || !ctx.canWrite) return;
    const group = b.closest(".actions").dataset.group;
    const body = b.hasAttribute("data-resume") ? {enabled: true} : {enabled: false};
    const seconds = Number(b.dataset.pause);
    if (!body.enabled && seconds > 0) body.duration = seconds;
    if (group) body.group = group;
    b.disabled = true;
    try {
      const after = await ctx.api.post("/api/blocking", body);
      ctx.clearError();
      if (!group) ctx.live.set("blocking", after); // the answer is the new state
      else ctx.live.refresh("blocking");
    } catch (e) {
      ctx.showError(e);
      ctx.live.refresh("blocking");
    }
    render();
  }
  el.addEventListener("click", onClick);

  const timer = setInterval(tick, 1000);
  const releases = [ctx.live.want("blocking"), ctx.live.want("groups"), ctx.live.want("lists")];
  const unsubscribes = [
    ctx.live.subscribe("blocking", (state, error, receivedAt) => {
      if (!state) return;
      blocking = {global: withDeadline(state, receivedAt), groups: {}};
      for (const [name, s] of Object.entries(state.groups || {})) blocking.groups[name] = withDeadline(s, receivedAt);
      render();
    }),
    ctx.live.subscribe("groups", (answer) => {
      if (!answer) return;
      names = (answer.groups || []).map((g) => g.name);
      render();
    }),
    ctx.live.subscribe("lists", (answer) => {
      if (!answer) return;
      noLists = !(answer.lists || []).some((l) => l.kind === "block" && l.enabled);
      tick();
    }),
  ];
  return {el, destroy() {
    clearInterval(timer);
    unsubscribes.forEach((u) => u());
    releases.forEach((r) => r());
  }};
}
