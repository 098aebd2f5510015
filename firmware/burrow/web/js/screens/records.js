// Local records: home names Burrow answers itself (nas.home.lan → 192.168.1.20), A, AAAA or
// CNAME, a wildcard written *.home.lan. One row per record: several A records of one name
// answer round-robin.
//
// The records are the implicit zone "local" of the zone store, so this screen uses
// /api/dns-records (?zone=local to list; POST, PUT and DELETE /api/dns-records/{id}): that face
// can change a record, /api/localrecords (seed 003) cannot. Kept live by the "localRecords"
// resource (localrecord.*, dns_record.* and zone.* events). A viewer sees the list only.

import {h, plural, replace, show, text} from "../dom.js";
import {deleteButton, said, selectField} from "../editing.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";

const TYPES = [["A", "A (IPv4 address)"], ["AAAA", "AAAA (IPv6 address)"], ["CNAME", "CNAME (another name)"]];
const VALUE = {
  A: {label: "IPv4 address", help: "For example 192.168.1.20.", inputmode: "decimal"},
  AAAA: {label: "IPv6 address", help: "For example fd00::20.", inputmode: "text"},
  CNAME: {label: "Target name", help: "The name this one stands for, for example nas.home.lan.", inputmode: "url"},
};

let stop = [];

export function mount(el, ctx) {
  const list = h("ul", {id: "records-list", class: "items"});
  const state = h("p", {id: "records-state", class: "small", role: "status"}, "Loading the local records…");
  const retry = h("button", {type: "button", id: "records-retry", hidden: true}, "Try again");
  retry.addEventListener("click", () => ctx.live.refresh("localRecords"));
  const listCard = h("section", {class: "card", id: "records", "aria-labelledby": "records-title"},
    h("h2", {id: "records-title"}, "Local records"),
    h("p", {class: "small"}, "Names on your network that Burrow answers itself. A name written *.home.lan " +
      "answers for every name below home.lan."),
    state, retry, list);
  el.append(listCard);

  const form = ctx.canWrite ? recordForm(ctx) : null;
  if (form) el.append(form.card);

  function render(answer, error) {
    if (!answer) {
      if (error) {
        text(state, `The local records could not be read. ${error.human || ""}`);
        show(retry, true);
      }
      return;
    }
    show(retry, false);
    const records = (answer.records || []).filter((r) => r.type !== "SOA" && r.type !== "NS");
    text(state, records.length ? plural(records.length, "local record", "local records")
      : "No local records yet." + (ctx.canWrite ? " Add one below: a name and the address it answers with." : ""));
    if (error) text(state, `${state.textContent} (Could not refresh: ${error.human || ""})`);
    replace(list, records.map((r) => {
      const item = h("li", {"data-id": String(r.id), "data-name": r.name, "data-type": r.type},
        h("p", {class: "item-title"}, r.name),
        h("p", {class: "small"}, `${r.type} → ${r.value} · TTL ${r.ttl} s`));
      if (ctx.canWrite) {
        const edit = h("button", {type: "button", "aria-label": `Edit ${r.name} ${r.type}`}, "Edit");
        edit.addEventListener("click", () => form.edit(r));
        item.append(h("div", {class: "actions"}, edit,
          deleteButton("Delete", `Delete ${r.name} ${r.type} ${r.value}?`, async () => {
            try {
              await ctx.api.del(`/api/dns-records/${r.id}`);
              ctx.clearError();
              ctx.notice(said(`Deleted ${r.name} ${r.type} ${r.value}`));
              if (form.editing() === r.id) form.reset();
            } catch (e) {
              ctx.showError(e);
            }
            await ctx.live.refresh("localRecords");
          }, {"aria-label": `Delete ${r.name} ${r.type}`})));
      }
      return item;
    }));
  }

  stop.push(ctx.live.want("localRecords"), ctx.live.subscribe("localRecords", render));
}

export function unmount() {
  for (const fn of stop) fn();
  stop = [];
}

/** The add / edit form: type-aware value field, every bad field marked. */
function recordForm(ctx) {
  const name = field("record-name", "Name", "name",
    {maxlength: "255", autocomplete: "off", autocapitalize: "none", spellcheck: "false", required: true},
    "For example nas.home.lan, or *.home.lan for every name below it.");
  const type = selectField("record-type", "Type", "type", TYPES);
  const value = field("record-value", VALUE.A.label, "value",
    {maxlength: "255", autocomplete: "off", autocapitalize: "none", spellcheck: "false", required: true},
    VALUE.A.help);
  const ttl = field("record-ttl", "TTL (seconds)", "ttl", {inputmode: "numeric", maxlength: "12", placeholder: "300"},
    "How long others may keep the answer. Empty: 300 seconds.");
  const fields = [name, type, value, ttl];
  const title = h("h2", {id: "record-form-title"}, "Add a local record");
  const submit = h("button", {type: "submit", id: "record-submit"}, "Add record");
  const cancel = h("button", {type: "button", id: "record-cancel", hidden: true}, "Cancel");
  const formEl = h("form", {id: "record-form", novalidate: true},
    name.wrap, type.wrap, value.wrap, ttl.wrap, h("div", {class: "actions"}, submit, cancel));
  const card = h("section", {class: "card", id: "record-editor", "aria-labelledby": "record-form-title"},
    title, formEl);
  let editingId = null;

  function typeChanged() {
    const v = VALUE[type.input.value] || VALUE.A;
    text(value.wrap.querySelector("label"), v.label);
    value.label = v.label;
    text(value.wrap.querySelector(`#${value.input.id}-help`), v.help);
    value.input.setAttribute("inputmode", v.inputmode);
  }
  type.input.addEventListener("change", typeChanged);

  function reset() {
    editingId = null;
    formEl.reset();
    clearFieldErrors(fields);
    typeChanged();
    text(title, "Add a local record");
    text(submit, "Add record");
    show(cancel, false);
  }

  function edit(r) {
    editingId = r.id;
    clearFieldErrors(fields);
    name.input.value = r.name;
    type.input.value = r.type;
    value.input.value = r.type === "CNAME" ? r.value.replace(/\.$/, "") : r.value;
    ttl.input.value = String(r.ttl);
    typeChanged();
    text(title, `Change ${r.name} ${r.type}`);
    text(submit, "Save changes");
    show(cancel, true);
    card.scrollIntoView({block: "start"});
    name.input.focus();
  }

  cancel.addEventListener("click", () => { reset(); ctx.clearError(); });
  formEl.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(fields);
    const body = {name: name.input.value.trim(), type: type.input.value, value: value.input.value.trim()};
    const seconds = ttl.input.value.trim();
    if (seconds) body.ttl = /^\d+$/.test(seconds) ? Number(seconds) : seconds;
    const missing = [];
    if (!body.name) missing.push({field: "name", message: "Enter a name."});
    if (!body.value) missing.push({field: "value", message: `Enter the ${value.label.toLowerCase()}.`});
    if (missing.length) {
      markFieldErrors({details: missing}, fields);
      ctx.showError(new Error(`Please fill in: ${missing.map((m) => labels(fields)[m.field]).join(", ")}.`));
      return;
    }
    submit.disabled = true;
    try {
      let saved;
      if (editingId === null) {
        saved = await ctx.api.post("/api/dns-records", {zone: "local", ...body});
        ctx.notice(said(`Added ${saved.name} ${saved.type} → ${saved.value}`));
      } else {
        saved = await ctx.api.request("PUT", `/api/dns-records/${editingId}`, body);
        ctx.notice(said(`Saved ${saved.name} ${saved.type} → ${saved.value}`));
      }
      ctx.clearError();
      reset();
      await ctx.live.refresh("localRecords");
    } catch (e) {
      markFieldErrors(e, fields);
      ctx.showError(e, labels(fields));
      if (e.status === 404) await ctx.live.refresh("localRecords");
    } finally {
      submit.disabled = false;
    }
  });
  typeChanged();
  return {card, edit, reset, editing: () => editingId};
}
