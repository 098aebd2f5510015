// Groups and clients: the client groups (GET /api/groups) with their members and whether
// blocking is paused for them (GET /api/blocking), the client entries (GET /api/clients: an IP
// address or a network, a name, its groups), and for an admin the pause per group (the
// dashboard's pause card, reused). An admin creates, describes and deletes groups and
// adds, changes and removes client entries; a viewer sees the same, without any of those
// controls. Both lists are live (resources "groups" and "clients": group.* and client.* events).
//
// A group's name cannot change (the API keeps it: lists, allow/deny entries and rules name it);
// the built-in "default" holds every client no entry covers and cannot be deleted.

import * as pauseCard from "../cards/pause.js";
import {confirmInline} from "../confirm_inline.js";
import {h, plural, replace, show, text} from "../dom.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";

let cleanup = [];

/** Toggle buttons, one per group name: a finger-sized way to pick several. */
function groupPicker(id, label, names, chosen = []) {
  const picked = new Set(chosen);
  const legendId = `${id}-label`;
  const errorId = `${id}-error`;
  const box = h("div", {id, class: "chips", role: "group", "aria-labelledby": legendId, "aria-describedby": errorId});
  const error = h("small", {id: errorId, class: "field-error"});
  function draw(list) {
    replace(box, list.map((name) => h("button", {
      type: "button", class: "chip", "data-group": name, "aria-pressed": picked.has(name) ? "true" : "false",
      on: {click: (ev) => {
        const b = ev.currentTarget;
        if (picked.has(name)) picked.delete(name); else picked.add(name);
        b.setAttribute("aria-pressed", picked.has(name) ? "true" : "false");
      }}}, name)));
  }
  draw(names);
  const wrap = h("div", {class: "field"}, h("span", {id: legendId, class: "label"}, label), box, error);
  return {wrap, input: box, error, name: "groups", label,
          values: () => names.filter((n) => picked.has(n))};
}

export function mount(el, ctx) {
  const canWrite = ctx.canWrite;
  let groups = null; // GET /api/groups → groups[]
  let clients = null; // GET /api/clients → clients[]
  let loadError = null;
  let blocking = null; // GET /api/blocking (live: blocking.* events carry the new state)
  const editing = {group: null, client: null}; // the name / id whose edit form is open

  // ---- groups ------------------------------------------------------------------------------------
  const groupList = h("ul", {id: "group-list", class: "rows", "aria-live": "polite"});
  const groupState = h("p", {id: "group-state", class: "loading"}, "Loading the groups…");
  const groupCard = h("section", {class: "card", "aria-labelledby": "groups-title"},
    h("h2", {id: "groups-title"}, "Groups"),
    h("p", {class: "small"}, "Lists, allow and deny entries, rules and pauses can apply to a group. " +
      "A device no client entry covers is in the built-in group default."),
    groupState, groupList);

  let groupForm = null;
  let groupFields = [];
  if (canWrite) {
    const name = field("group-name", "Name", "name", {required: true, autocomplete: "off", maxlength: 64,
      autocapitalize: "none", spellcheck: "false"}, "Letters, digits, - and _. It cannot be changed later.");
    const description = field("group-description", "Description (optional)", "description", {maxlength: 200});
    groupFields = [name, description];
    groupForm = h("form", {id: "group-form", "aria-labelledby": "group-form-title", novalidate: true,
                           on: {submit: addGroup}},
      h("h3", {id: "group-form-title"}, "New group"), name.wrap, description.wrap,
      h("button", {type: "submit"}, "Add group"));
    groupCard.append(groupForm);
  }

  async function addGroup(ev) {
    ev.preventDefault();
    const [name, description] = groupFields;
    const body = {name: name.input.value.trim()};
    if (description.input.value.trim()) body.description = description.input.value.trim();
    clearFieldErrors(groupFields);
    try {
      const made = await ctx.api.post("/api/groups", body);
      ctx.clearError();
      ctx.notice(`Group ${made.name} added.`);
      name.input.value = "";
      description.input.value = "";
      await ctx.live.refresh("groups");
    } catch (e) {
      if (e.status === 409) {
        e.details = [{field: "name", message: "A group with this name exists already."}];
      }
      markFieldErrors(e, groupFields);
      ctx.showError(e, labels(groupFields));
    }
  }

  function blockingWords(name) {
    if (!blocking) return "";
    if (blocking.enabled === false) return "Blocking is paused for everyone.";
    const s = (blocking.groups || {})[name];
    if (!s || s.enabled !== false) return "Blocking is on for this group.";
    if (!s.paused_until) return "Blocking is paused for this group until resumed.";
    const until = new Date(s.paused_until);
    return `Blocking is paused for this group until ${until.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})}.`;
  }

  function membersOf(name) {
    return (clients || []).filter((c) => (c.groups || []).includes(name));
  }

  function groupRow(g) {
    const members = membersOf(g.name);
    const who = g.builtin
      ? "Every device no client entry below covers."
      : members.length
        ? members.map((c) => c.name ? `${c.client} (${c.name})` : c.client).join(", ")
        : "No devices yet: add a client entry below.";
    const li = h("li", {"data-name": g.name},
      h("h3", {class: "row-title"}, g.name, g.builtin ? h("span", {class: "pill"}, "built in") : null),
      g.description ? h("p", {class: "description"}, g.description) : null,
      h("p", {class: "small members"}, g.builtin ? who : `${plural(g.clients, "client entry", "client entries")}: ${who}`),
      h("p", {class: "small group-blocking"}, blockingWords(g.name)));
    if (canWrite) {
      if (editing.group === g.name) {
        li.append(describeForm(g));
      } else {
        const actions = h("div", {class: "actions"},
          h("button", {type: "button", "aria-label": `Edit description of ${g.name}`,
                       on: {click: () => { editing.group = g.name; render(); focusIn(`#describe-${g.name}`); }}},
            "Edit description"));
        if (!g.builtin) {
          actions.append(h("button", {type: "button", class: "danger", "aria-label": `Delete group ${g.name}`,
            on: {click: () => confirmInline(actions,
              `Delete group ${g.name}? Its devices fall back to their other groups (or default); lists and entries stop naming it.`,
              `Delete ${g.name}`, () => deleteGroup(g.name))}}, "Delete"));
        }
        li.append(actions);
      }
    }
    return li;
  }

  function describeForm(g) {
    const f = field(`describe-${g.name}`, `Description of ${g.name}`, "description", {maxlength: 200});
    f.input.value = g.description || "";
    const form = h("form", {class: "inline-form", novalidate: true, on: {submit: async (ev) => {
      ev.preventDefault();
      try {
        await ctx.api.request("PUT", `/api/groups/${encodeURIComponent(g.name)}`, {description: f.input.value.trim()});
        ctx.clearError();
        editing.group = null;
        await ctx.live.refresh("groups");
      } catch (e) {
        markFieldErrors(e, [f]);
        ctx.showError(e, labels([f]));
      }
    }}}, f.wrap, h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, "Save"),
      h("button", {type: "button", on: {click: () => { editing.group = null; render(); }}}, "Cancel")));
    return form;
  }

  async function deleteGroup(name) {
    try {
      await ctx.api.del(`/api/groups/${encodeURIComponent(name)}`);
      ctx.clearError();
      ctx.notice(`Group ${name} deleted.`);
      await Promise.all([ctx.live.refresh("groups"), ctx.live.refresh("clients")]);
    } catch (e) {
      ctx.showError(e);
      throw e;
    }
  }

  // ---- clients -----------------------------------------------------------------------------------
  const clientList = h("ul", {id: "client-list", class: "rows", "aria-live": "polite"});
  const clientState = h("p", {id: "client-state", class: "loading"}, "Loading the client entries…");
  const clientCard = h("section", {class: "card", "aria-labelledby": "clients-title"},
    h("h2", {id: "clients-title"}, "Clients"),
    h("p", {class: "small"}, "A client entry is one device (its IP address) or a network (a CIDR such as " +
      "192.168.1.0/24) and the groups it is in. A device in several entries is in all their groups."),
    clientState, clientList);

  let clientForm = null;
  let clientFields = [];
  let picker = null;
  if (canWrite) {
    const address = field("client-address", "IP address or network", "client", {required: true, autocomplete: "off",
      autocapitalize: "none", spellcheck: "false", inputmode: "url", maxlength: 64}, "For example 192.168.1.40 or 192.168.5.0/24.");
    const name = field("client-name", "Name (optional)", "name", {maxlength: 200, autocomplete: "off"});
    picker = groupPicker("client-groups", "Groups", []);
    clientFields = [address, name, picker];
    clientForm = h("form", {id: "client-form", "aria-labelledby": "client-form-title", novalidate: true,
                            on: {submit: addClient}},
      h("h3", {id: "client-form-title"}, "Add a device or network"), address.wrap, name.wrap, picker.wrap,
      h("button", {type: "submit"}, "Add client"));
    clientCard.append(clientForm);
  }

  async function addClient(ev) {
    ev.preventDefault();
    const [address, name, groupsPicked] = clientFields;
    const body = {client: address.input.value.trim(), groups: groupsPicked.values()};
    if (name.input.value.trim()) body.name = name.input.value.trim();
    clearFieldErrors(clientFields);
    try {
      const made = await ctx.api.post("/api/clients", body);
      ctx.clearError();
      ctx.notice(`${made.client} is now in ${made.groups.join(", ")}.`);
      address.input.value = "";
      name.input.value = "";
      newPicker([]);
      await Promise.all([ctx.live.refresh("clients"), ctx.live.refresh("groups")]);
    } catch (e) {
      if (e.status === 409) e.details = [{field: "client", message: "This address is in a client entry already."}];
      markFieldErrors(e, clientFields);
      ctx.showError(e, labels(clientFields));
    }
  }

  function clientRow(c) {
    const li = h("li", {"data-id": String(c.id)},
      h("h3", {class: "row-title"}, c.client, c.name ? h("span", {class: "client-name"}, c.name) : null),
      h("p", {class: "small"}, `In ${(c.groups || []).length === 1 ? "group" : "groups"}: ${(c.groups || []).join(", ")}`));
    if (canWrite) {
      if (editing.client === c.id) {
        li.append(clientEditForm(c));
      } else {
        const actions = h("div", {class: "actions"},
          h("button", {type: "button", "aria-label": `Edit ${c.client}`,
                       on: {click: () => { editing.client = c.id; render(); focusIn(`#client-${c.id}-address`); }}}, "Edit"),
          h("button", {type: "button", class: "danger", "aria-label": `Remove ${c.client}`,
                       on: {click: () => confirmInline(actions, `Remove ${c.client}${c.name ? ` (${c.name})` : ""}? It goes back to default unless another entry covers it.`,
                                                       "Remove", () => removeClient(c))}}, "Remove"));
        li.append(actions);
      }
    }
    return li;
  }

  function clientEditForm(c) {
    const p = `client-${c.id}`;
    const address = field(`${p}-address`, "IP address or network", "client", {maxlength: 64, autocomplete: "off",
      autocapitalize: "none", spellcheck: "false"});
    const name = field(`${p}-name`, "Name", "name", {maxlength: 200, autocomplete: "off"});
    const chooser = groupPicker(`${p}-groups`, "Groups", groupNames(), c.groups || []);
    address.input.value = c.client;
    name.input.value = c.name || "";
    const fields = [address, name, chooser];
    return h("form", {class: "inline-form", novalidate: true, on: {submit: async (ev) => {
      ev.preventDefault();
      clearFieldErrors(fields);
      try {
        await ctx.api.request("PUT", `/api/clients/${c.id}`,
                              {client: address.input.value.trim(), name: name.input.value.trim(), groups: chooser.values()});
        ctx.clearError();
        editing.client = null;
        await Promise.all([ctx.live.refresh("clients"), ctx.live.refresh("groups")]);
      } catch (e) {
        if (e.status === 409) e.details = [{field: "client", message: "This address is in another client entry."}];
        markFieldErrors(e, fields);
        ctx.showError(e, labels(fields));
      }
    }}}, address.wrap, name.wrap, chooser.wrap,
    h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, "Save"),
      h("button", {type: "button", on: {click: () => { editing.client = null; render(); }}}, "Cancel")));
  }

  async function removeClient(c) {
    try {
      await ctx.api.del(`/api/clients/${c.id}`);
      ctx.clearError();
      ctx.notice(`${c.client} removed.`);
      await Promise.all([ctx.live.refresh("clients"), ctx.live.refresh("groups")]);
    } catch (e) {
      ctx.showError(e);
      throw e;
    }
  }

  // ---- which groups is an address in? ------------------------------------------------------------
  const lookupField = field("lookup-ip", "IP address", "ip", {autocomplete: "off", autocapitalize: "none",
    spellcheck: "false", inputmode: "decimal", maxlength: 64});
  const lookupAnswer = h("p", {id: "lookup-answer", role: "status"});
  const lookupCard = h("section", {class: "card", "aria-labelledby": "lookup-title"},
    h("h2", {id: "lookup-title"}, "Which groups is a device in?"),
    h("form", {id: "lookup-form", novalidate: true, on: {submit: async (ev) => {
      ev.preventDefault();
      clearFieldErrors([lookupField]);
      const ip = lookupField.input.value.trim();
      try {
        const answer = await ctx.api.get(`/api/clients?ip=${encodeURIComponent(ip)}`);
        ctx.clearError();
        const found = answer.lookup.groups;
        text(lookupAnswer, `${answer.lookup.ip} is in ${found.length === 1 ? "group" : "groups"} ${found.join(", ")}.`);
      } catch (e) {
        text(lookupAnswer, "");
        markFieldErrors(e, [lookupField]);
        ctx.showError(e, labels([lookupField]));
      }
    }}}, lookupField.wrap, h("button", {type: "submit"}, "Look up")), lookupAnswer);

  // ---- pausing a group: the dashboard's card (its buttons are an admin's) ---------------------------
  const pause = canWrite ? pauseCard.create(ctx) : null;

  el.append(groupCard, clientCard, lookupCard);
  if (pause) el.append(pause.el);

  function groupNames() {
    return (groups || []).map((g) => g.name);
  }

  function focusIn(selector) {
    const target = el.querySelector(selector);
    if (target) target.focus();
  }

  function newPicker(chosen) {
    const fresh = groupPicker("client-groups", "Groups", groupNames(), chosen);
    picker.wrap.replaceWith(fresh.wrap);
    clientFields[2] = picker = fresh;
  }

  // `live`: called for new data, which must not wipe an edit form the owner is typing in (the
  // list is drawn again when the form closes); the owner's own clicks draw at once.
  function render(live = false) {
    if (loadError && !groups) {
      text(groupState, `The groups could not be loaded: ${loadError}`);
      groupState.className = "error-state";
    }
    if (groups) {
      groupState.className = "small";
      text(groupState, groups.length <= 1 ? "Only the built-in group so far." : plural(groups.length, "group", "groups"));
      if (!(live && editing.group)) replace(groupList, groups.map(groupRow));
      if (picker) newPicker(picker.values());
    }
    if (clients) {
      clientState.className = "small";
      text(clientState, clients.length
        ? plural(clients.length, "client entry", "client entries")
        : "No client entries yet: every device is in the group default.");
      if (!(live && editing.client)) replace(clientList, clients.map(clientRow));
    } else if (loadError) {
      text(clientState, `The client entries could not be loaded: ${loadError}`);
      clientState.className = "error-state";
    }
    show(clientList, !!clients && clients.length > 0);
    show(groupList, !!groups);
  }

  cleanup = [
    ctx.live.want("groups"), ctx.live.want("clients"), ctx.live.want("blocking"),
    ctx.live.subscribe("blocking", (state) => {
      if (!state) return;
      blocking = state;
      for (const li of groupList.children) {
        const line = li.querySelector(".group-blocking");
        if (line) text(line, blockingWords(li.dataset.name));
      }
    }),
    ctx.live.subscribe("groups", (answer, error) => {
      if (error) loadError = error.human || String(error.message);
      if (answer) { groups = answer.groups || []; loadError = null; }
      if (editing.group && groups && !groups.some((g) => g.name === editing.group)) editing.group = null;
      render(true);
    }),
    ctx.live.subscribe("clients", (answer, error) => {
      if (error) loadError = error.human || String(error.message);
      if (answer) { clients = answer.clients || []; loadError = null; }
      if (editing.client && clients && !clients.some((c) => c.id === editing.client)) editing.client = null;
      render(true);
    }),
    () => { if (pause) pause.destroy(); },
  ];
}

export function unmount() {
  for (const fn of cleanup) fn();
  cleanup = [];
}
