// Zones Burrow answers with authority (lab.test, a reverse zone), each with its records.
//
//   #/zones         the zones (GET /api/zones, the "zones" resource) and, for an admin, a form
//                   to create one (POST /api/zones: master, or slave with its primaries)
//   #/zones/<name>  one zone (GET /api/zones/{name}: its facts and records, loaded again whenever
//                   the zones resource changes), its records table (POST/PUT/DELETE
//                   /api/dns-records), its type and primaries (PUT), import (POST .../import: a
//                   file picker or pasted text, all or nothing, an error names its line), export
//                   (GET .../export, a download the cookie session authorises) and delete.
//
// The local records are the zone "local": listed here, edited on #/records. A viewer sees
// everything and no control that changes anything.

import {count, h, plural, replace, show, text} from "../dom.js";
import {areaField, deleteButton, listless, markErrors, said, selectField, splitList} from "../editing.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";

const RECORD_TYPES = ["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "PTR", "NS", "CAA"];
const VALUE = {
  A: ["IPv4 address", "For example 192.0.2.10."],
  AAAA: ["IPv6 address", "For example 2001:db8::10."],
  CNAME: ["Target name", "www, or a full name ending in a dot: host.example.com."],
  MX: ["Mail server", "A name: mail, or mail.example.com. (the priority goes in its own field)."],
  TXT: ["Text", "Quoted text, for example \"v=spf1 -all\"."],
  SRV: ["Weight, port and target", "For example 5 5060 sip (the priority goes in its own field)."],
  PTR: ["Name it points to", "A full name ending in a dot: host.lab.test."],
  NS: ["Name server", "A name: ns1, or ns1.example.com."],
  CAA: ["Flags, tag and value", "For example 0 issue \"letsencrypt.org\"."],
};
const MAX_FILE_CHARS = 61440; // the import body's limit (ZoneImport.zone)

let stop = [];

export function mount(el, ctx) {
  if (ctx.params.length && ctx.params[0]) zoneScreen(el, ctx, ctx.params[0]);
  else listScreen(el, ctx);
}

export function unmount() {
  for (const fn of stop) fn();
  stop = [];
}

function zoneHref(name) {
  return `#/zones/${encodeURIComponent(name)}`;
}

function apiPath(zone) {
  return `/api/zones/${encodeURIComponent(zone)}`;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "never";
}

// ---- #/zones --------------------------------------------------------------------------------------

function listScreen(el, ctx) {
  const state = h("p", {id: "zones-state", class: "small", role: "status"}, "Loading the zones…");
  const list = h("ul", {id: "zones-list", class: "items"});
  const retry = h("button", {type: "button", id: "zones-retry", hidden: true}, "Try again");
  retry.addEventListener("click", () => ctx.live.refresh("zones"));
  el.append(h("section", {class: "card", id: "zones", "aria-labelledby": "zones-title"},
    h("h2", {id: "zones-title"}, "Zones"),
    h("p", {class: "small"}, "Domains Burrow answers for itself, with every record in them: no query for a " +
      "name inside a zone goes to the internet."),
    state, retry, list));
  if (ctx.canWrite) el.append(createForm(ctx));

  function render(answer, error) {
    if (!answer) {
      if (error) {
        text(state, `The zones could not be read. ${error.human || ""}`);
        show(retry, true);
      }
      return;
    }
    show(retry, false);
    const all = answer.zones || [];
    const zones = all.filter((z) => z.type !== "local");
    const local = all.find((z) => z.type === "local");
    text(state, zones.length ? plural(zones.length, "zone", "zones")
      : "No zones yet." + (ctx.canWrite ? " Create one below, then add records or import a zone file." : ""));
    if (error) text(state, `${state.textContent} (Could not refresh: ${error.human || ""})`);
    replace(list,
      zones.map((z) => h("li", {"data-name": z.name},
        h("p", {class: "item-title"}, h("a", {href: zoneHref(z.name)}, z.name)),
        h("p", {class: "small"}, `${z.type === "slave" ? "Copy (slave)" : "Master"} · ` +
          `${plural(z.record_count, "record", "records")} · serial ${z.serial}`),
        z.last_error ? h("p", {class: "field-error"}, `Last transfer failed: ${z.last_error}`) : null)),
      local ? h("li", {"data-name": "local"},
        h("p", {class: "item-title"}, h("a", {href: "#/records"}, "Local records")),
        h("p", {class: "small"}, `${plural(local.record_count, "record", "records")}, edited on the local ` +
          "records screen")) : null);
  }

  stop.push(ctx.live.want("zones"), ctx.live.subscribe("zones", render));
}

function createForm(ctx) {
  const name = field("zone-name", "Zone name", "name",
    {maxlength: "253", autocomplete: "off", autocapitalize: "none", spellcheck: "false", required: true},
    "For example lab.test, or 1.168.192.in-addr.arpa for reverse lookups.");
  const type = selectField("zone-type", "Kind", "type",
    [["master", "Master: its records are kept here"], ["slave", "Slave: a copy of another server's zone"]]);
  const primaries = field("zone-primaries", "Primary servers", "primaries",
    {autocomplete: "off", autocapitalize: "none", spellcheck: "false"},
    "The servers to copy from: IP addresses, optionally with :port, separated by spaces or commas.");
  const primariesRow = h("div", {hidden: true}, primaries.wrap);
  const fields = [name, type, primaries];
  const submit = h("button", {type: "submit", id: "zone-create"}, "Create zone");
  type.input.addEventListener("change", () => show(primariesRow, type.input.value === "slave"));
  const form = h("form", {id: "zone-form", novalidate: true}, name.wrap, type.wrap, primariesRow, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(fields);
    const body = {name: name.input.value.trim(), type: type.input.value};
    if (body.type === "slave") body.primaries = splitList(primaries.input.value);
    if (!body.name) {
      markFieldErrors({details: [{field: "name", message: "Enter the zone's name."}]}, fields);
      ctx.showError(new Error("Please fill in: Zone name."));
      return;
    }
    submit.disabled = true;
    try {
      const zone = await ctx.api.post("/api/zones", body);
      ctx.clearError();
      ctx.notice(`Zone ${zone.name} created.`);
      form.reset();
      show(primariesRow, false);
      location.hash = zoneHref(zone.name);
    } catch (e) {
      markErrors(e, fields, {primaries: body.primaries});
      ctx.showError(listless(e), labels(fields));
    } finally {
      submit.disabled = false;
    }
  });
  return h("section", {class: "card", id: "zone-new", "aria-labelledby": "zone-new-title"},
    h("h2", {id: "zone-new-title"}, "Create a zone"), form);
}

// ---- #/zones/<name> -------------------------------------------------------------------------------

function zoneScreen(el, ctx, ref) {
  const title = h("h2", {id: "zone-title"}, ref);
  const facts = h("dl", {id: "zone-facts", class: "facts"});
  const state = h("p", {id: "zone-state", class: "small", role: "status"}, "Loading the zone…");
  const tools = h("div", {class: "actions", id: "zone-tools"});
  const table = h("div", {id: "zone-records", class: "table-wrap"});
  const recordsState = h("p", {id: "zone-records-state", class: "small"});
  el.append(
    h("p", h("a", {href: "#/zones", class: "button-link"}, "All zones")),
    h("section", {class: "card", id: "zone", "aria-labelledby": "zone-title"}, title, state, facts, tools),
    h("section", {class: "card", id: "zone-records-card", "aria-labelledby": "zone-records-title"},
      h("h2", {id: "zone-records-title"}, "Records"), recordsState, table));

  const editor = ctx.canWrite ? recordForm(ctx, ref, () => load()) : null;
  const settings = ctx.canWrite ? zoneSettings(ctx, ref, () => load()) : null;
  const importer = ctx.canWrite ? importCard(ctx, ref, () => load()) : null;
  if (editor) el.append(editor.card);
  if (importer) el.append(importer.card);
  if (settings) el.append(settings.card);

  let seq = 0;
  let zone = null;
  let deleting = false; // the zone is being deleted from here: its change event loads nothing

  async function load() {
    const mine = ++seq;
    try {
      const answer = await ctx.api.get(apiPath(ref));
      if (mine !== seq) return;
      zone = answer;
      render();
    } catch (e) {
      if (mine !== seq) return;
      if (e.status === 404) {
        text(state, `There is no zone ${ref} (any more).`);
        replace(facts);
        replace(tools);
        replace(table);
        text(recordsState, "");
        for (const part of [editor, importer, settings]) if (part) show(part.card, false);
      } else {
        text(state, `The zone could not be read. ${e.human || ""}`);
      }
    }
  }

  function render() {
    const z = zone;
    text(title, z.name === "local" ? "Local records" : z.name);
    text(state, "");
    const kind = z.type === "slave" ? "Slave (a copy of another server's zone)"
      : z.type === "local" ? "Local records" : "Master";
    const rows = [["Kind", kind], ["Serial", String(z.serial)], ["Records", count(z.record_count)],
      ["Changed", when(z.updated_at)]];
    if (z.type === "slave") {
      rows.push(["Primary servers", (z.primaries || []).join(", ") || "none"],
        ["Last transfer", when(z.last_transfer)]);
      if (z.last_error) rows.push(["Last error", z.last_error]);
    }
    replace(facts, rows.map(([k, v]) => h("div", h("dt", k), h("dd", v))));
    const exportable = z.type !== "local" && (z.records || []).length > 0;
    replace(tools,
      exportable ? h("a", {href: `${apiPath(z.name)}/export`, download: `${z.name}.zone`, id: "zone-export",
        class: "button-link"}, "Download zone file") : null,
      z.type === "local" ? h("a", {href: "#/records", class: "button-link"}, "Edit local records") : null,
      ctx.canWrite && z.type !== "local" ? deleteButton("Delete zone",
        `Delete ${z.name} and its ${plural(z.record_count, "record", "records")}?`, async () => {
          deleting = true;
          try {
            await ctx.api.del(apiPath(z.name));
            ctx.clearError();
            ctx.notice(`Zone ${z.name} deleted.`);
            location.hash = "#/zones";
          } catch (e) {
            deleting = false;
            ctx.showError(e);
          }
        }, {id: "zone-delete"}) : null);
    renderRecords(z);
    const editable = ctx.canWrite && z.type === "master";
    if (editor) show(editor.card, editable);
    if (importer) show(importer.card, editable);
    if (settings) {
      show(settings.card, z.type !== "local");
      settings.show(z);
    }
  }

  function renderRecords(z) {
    const records = z.records || [];
    const editable = ctx.canWrite && z.type === "master";
    text(recordsState, records.length ? "" : z.type === "slave"
      ? "No records yet: the zone has not been copied from its primaries." : "No records.");
    if (!records.length) {
      replace(table);
      return;
    }
    replace(table, h("table", {class: "records"},
      h("caption", {class: "small"}, `${plural(records.length, "record", "records")} in ${z.name}`),
      h("thead", h("tr", h("th", {scope: "col"}, "Name"), h("th", {scope: "col"}, "Type"),
        h("th", {scope: "col"}, "TTL"), h("th", {scope: "col"}, "Value"),
        editable ? h("th", {scope: "col"}, "Change") : null)),
      h("tbody", records.map((r) => {
        const row = h("tr", {"data-id": String(r.id), "data-type": r.type},
          h("td", {class: "name"}, r.name), h("td", r.type), h("td", {class: "ttl"}, String(r.ttl)), h("td", {class: "value"}, r.value));
        if (editable) {
          const cell = h("td", {class: "actions"});
          if (r.type !== "SOA") {
            const edit = h("button", {type: "button", "aria-label": `Edit ${r.name} ${r.type}`}, "Edit");
            edit.addEventListener("click", () => editor.edit(r));
            cell.append(edit, deleteButton("Delete", `Delete ${r.name} ${r.type}?`, async () => {
              try {
                await ctx.api.del(`/api/dns-records/${r.id}`);
                ctx.clearError();
                ctx.notice(said(`Deleted ${r.name} ${r.type} ${r.value}`));
                if (editor.editing() === r.id) editor.reset();
              } catch (e) {
                ctx.showError(e);
              }
              await load();
            }, {"aria-label": `Delete ${r.name} ${r.type}`}));
          } else {
            cell.append(h("span", {class: "small"}, "serial moves by itself"));
          }
          row.append(cell);
        }
        return row;
      }))));
  }

  // Any change to zones or records (an event, or the fallback poll) loads this zone again.
  stop.push(ctx.live.want("zones"), ctx.live.subscribe("zones", (value) => { if (value && !deleting) load(); }));
  load();
}

/** Add or change one record of a master zone; the value field follows the type. */
function recordForm(ctx, ref, changed) {
  const name = field("zrec-name", "Name", "name",
    {maxlength: "255", autocomplete: "off", autocapitalize: "none", spellcheck: "false", placeholder: "@"},
    "Relative to the zone (www, or @ for the zone itself), or a full name ending in a dot.");
  const type = selectField("zrec-type", "Type", "type", RECORD_TYPES);
  const priority = field("zrec-priority", "Priority", "priority", {inputmode: "numeric", maxlength: "5"},
    "Lower is preferred (0-65535).");
  const priorityRow = h("div", {hidden: true}, priority.wrap);
  const value = field("zrec-value", VALUE.A[0], "value",
    {maxlength: "8192", autocomplete: "off", autocapitalize: "none", spellcheck: "false", required: true}, VALUE.A[1]);
  const ttl = field("zrec-ttl", "TTL", "ttl", {maxlength: "64", placeholder: "3600"},
    "Seconds, or a duration like 1h. Empty: 3600 seconds.");
  const fields = [name, type, priority, value, ttl];
  const title = h("h2", {id: "zrec-title"}, "Add a record");
  const submit = h("button", {type: "submit", id: "zrec-submit"}, "Add record");
  const cancel = h("button", {type: "button", hidden: true}, "Cancel");
  const form = h("form", {id: "zrec-form", novalidate: true}, name.wrap, type.wrap, priorityRow, value.wrap, ttl.wrap,
    h("div", {class: "actions"}, submit, cancel));
  const card = h("section", {class: "card", id: "zrec-editor", hidden: true, "aria-labelledby": "zrec-title"}, title, form);
  let editingId = null;

  function typeChanged() {
    const [label, help] = VALUE[type.input.value] || VALUE.A;
    text(value.wrap.querySelector("label"), label);
    value.label = label;
    text(value.wrap.querySelector("#zrec-value-help"), help);
    show(priorityRow, type.input.value === "MX" || type.input.value === "SRV");
  }
  type.input.addEventListener("change", typeChanged);

  function reset() {
    editingId = null;
    form.reset();
    clearFieldErrors(fields);
    typeChanged();
    text(title, "Add a record");
    text(submit, "Add record");
    show(cancel, false);
  }

  function relative(owner, origin) {
    if (owner === origin) return "@";
    return owner.endsWith(`.${origin}`) ? owner.slice(0, -origin.length - 1) : `${owner}.`;
  }

  function edit(r) {
    editingId = r.id;
    clearFieldErrors(fields);
    name.input.value = relative(r.name, r.zone);
    type.input.value = r.type;
    let v = r.value;
    if ((r.type === "MX" || r.type === "SRV") && r.priority !== null) v = v.split(/\s+/).slice(1).join(" ");
    value.input.value = v;
    priority.input.value = r.priority === null || r.priority === undefined ? "" : String(r.priority);
    ttl.input.value = String(r.ttl);
    typeChanged();
    text(title, `Change ${r.name} ${r.type}`);
    text(submit, "Save changes");
    show(cancel, true);
    card.scrollIntoView({block: "start"});
    value.input.focus();
  }

  cancel.addEventListener("click", () => { reset(); ctx.clearError(); });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(fields);
    const body = {name: name.input.value.trim() || "@", type: type.input.value, value: value.input.value.trim()};
    const t = ttl.input.value.trim();
    if (t) body.ttl = /^\d+$/.test(t) ? Number(t) : t;
    const p = priority.input.value.trim();
    const usesPriority = body.type === "MX" || body.type === "SRV";
    if (usesPriority && p) body.priority = /^\d+$/.test(p) ? Number(p) : p;
    const missing = [];
    if (!body.value) missing.push({field: "value", message: `Enter the ${value.label.toLowerCase()}.`});
    if (usesPriority && !p) missing.push({field: "priority", message: "Enter a priority, for example 10."});
    if (missing.length) {
      markFieldErrors({details: missing}, fields);
      ctx.showError(new Error(`Please fill in: ${missing.map((m) => labels(fields)[m.field]).join(", ")}.`));
      return;
    }
    submit.disabled = true;
    try {
      let saved;
      if (editingId === null) {
        saved = await ctx.api.post("/api/dns-records", {zone: ref, ...body});
        ctx.notice(said(`Added ${saved.name} ${saved.type} ${saved.value}`));
      } else {
        saved = await ctx.api.request("PUT", `/api/dns-records/${editingId}`, body);
        ctx.notice(said(`Saved ${saved.name} ${saved.type} ${saved.value}`));
      }
      ctx.clearError();
      reset();
    } catch (e) {
      markFieldErrors(e, fields);
      ctx.showError(e, labels(fields));
    } finally {
      submit.disabled = false;
    }
    await changed();
  });
  typeChanged();
  return {card, edit, reset, editing: () => editingId};
}

/** Import a zone file: pick one or paste it; all or nothing, an error names the line. */
function importCard(ctx, ref, changed) {
  const file = h("input", {type: "file", id: "zone-file", accept: ".zone,.txt,.db,text/plain,text/dns",
    "aria-describedby": "zone-file-help"});
  const area = areaField("zone-text", "Zone file", "zone",
    {rows: "8", maxlength: String(MAX_FILE_CHARS), spellcheck: "false", autocapitalize: "none", autocomplete: "off",
      wrap: "off"},
    "Replaces every record of the zone. Without an SOA or NS record the zone keeps its own.");
  const fields = [area];
  const warnings = h("ul", {id: "zone-import-warnings", class: "small", hidden: true});
  const submit = h("button", {type: "submit", id: "zone-import"}, "Import and replace records");
  const form = h("form", {id: "zone-import-form", novalidate: true},
    h("div", {class: "field"}, h("label", {for: "zone-file"}, "Zone file to read"), file,
      h("small", {id: "zone-file-help"}, "Its text goes into the box below, where you can check it first.")),
    area.wrap, warnings, submit);
  const card = h("section", {class: "card", id: "zone-import-card", hidden: true,
    "aria-labelledby": "zone-import-title"}, h("h2", {id: "zone-import-title"}, "Import a zone file"), form);

  file.addEventListener("change", async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    clearFieldErrors(fields);
    try {
      const content = await f.text();
      if (content.length > MAX_FILE_CHARS) {
        markFieldErrors({details: [{field: "zone", message: `The file is too long (${count(content.length)} ` +
          `characters; at most ${count(MAX_FILE_CHARS)}).`}]}, fields);
        return;
      }
      area.input.value = content;
    } catch {
      markFieldErrors({details: [{field: "zone", message: "The file could not be read."}]}, fields);
    }
  });

  /** Select line `n` (1-based) of the text area, so the owner sees where the error is. */
  function selectLine(n) {
    const lines = area.input.value.split("\n");
    if (!(n >= 1 && n <= lines.length)) return;
    const start = lines.slice(0, n - 1).reduce((sum, l) => sum + l.length + 1, 0);
    area.input.focus();
    area.input.setSelectionRange(start, start + lines[n - 1].length);
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(fields);
    show(warnings, false);
    if (!area.input.value.trim()) {
      markFieldErrors({details: [{field: "zone", message: "Pick a zone file or paste its text."}]}, fields);
      ctx.showError(new Error("Please fill in: Zone file."));
      return;
    }
    submit.disabled = true;
    try {
      const result = await ctx.api.post(`${apiPath(ref)}/import`, {zone: area.input.value});
      ctx.clearError();
      ctx.notice(`Imported ${plural(result.records, "record", "records")} into ${result.zone.name}.`);
      replace(warnings, (result.warnings || []).map((w) => h("li", w)));
      show(warnings, (result.warnings || []).length > 0);
      area.input.value = "";
      file.value = "";
    } catch (e) {
      markFieldErrors(e, fields);
      const where = /^line (\d+):/.exec(((e.details || [])[0] || {}).message || e.message || "");
      ctx.showError(where ? new Error(`Nothing was imported: the zone file has an error on line ${where[1]}: ` +
        `${e.message.replace(/^line \d+:\s*/, "")}.`) : e, labels(fields));
      if (where) selectLine(Number(where[1]));
    } finally {
      submit.disabled = false;
    }
    await changed();
  });
  return {card};
}

/** A zone's kind and primaries (PUT /api/zones/{name}). */
function zoneSettings(ctx, ref, changed) {
  const type = selectField("zset-type", "Kind", "type",
    [["master", "Master: its records are kept here"], ["slave", "Slave: a copy of another server's zone"]]);
  const primaries = field("zset-primaries", "Primary servers", "primaries",
    {autocomplete: "off", autocapitalize: "none", spellcheck: "false"},
    "For a slave zone: IP addresses, optionally with :port, separated by spaces or commas.");
  const primariesRow = h("div", {hidden: true}, primaries.wrap);
  const fields = [type, primaries];
  const submit = h("button", {type: "submit", id: "zset-submit"}, "Save");
  type.input.addEventListener("change", () => show(primariesRow, type.input.value === "slave"));
  const form = h("form", {id: "zset-form", novalidate: true}, type.wrap, primariesRow, submit);
  const card = h("section", {class: "card", id: "zone-settings", hidden: true, "aria-labelledby": "zset-title"},
    h("h2", {id: "zset-title"}, "Kind of zone"),
    h("p", {class: "small"}, "A slave zone becoming a master keeps the records it copied."), form);
  let shownFor = "";

  function showZone(z) {
    const key = `${z.type}|${(z.primaries || []).join(",")}`;
    if (key === shownFor) return; // keep what the owner is typing
    shownFor = key;
    type.input.value = z.type === "slave" ? "slave" : "master";
    primaries.input.value = (z.primaries || []).join(", ");
    show(primariesRow, type.input.value === "slave");
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearFieldErrors(fields);
    const body = {type: type.input.value};
    if (body.type === "slave") body.primaries = splitList(primaries.input.value);
    submit.disabled = true;
    try {
      await ctx.api.request("PUT", apiPath(ref), body);
      ctx.clearError();
      ctx.notice("Saved.");
      shownFor = "";
    } catch (e) {
      markErrors(e, fields, {primaries: body.primaries});
      ctx.showError(listless(e), labels(fields));
    } finally {
      submit.disabled = false;
    }
    await changed();
  });
  return {card, show: showZone};
}
