// Backup and restore (admin). Download: a plain link to GET /api/backup (the cookie session rides
// along; the answer is an attachment named by the server). Restore: pick the file, a dry run
// (POST /api/backup/restore?dry_run=true) shows what would be added, changed and removed, and
// only a second, explicit step restores. A bad file gets the API's reason and changes nothing.
// Import (admin): a Pi-hole Teleporter archive or AdGuardHome.yaml, the same two steps through
// POST /api/import/{pihole|adguard}: the dry run's plan (created, changed, skipped, each with
// why), then "Import now".

import {count, h, replace, text} from "../dom.js";

const MAX_BYTES = 8 * 1024 * 1024; // the API's limit on an archive (413 past it)

let stopped = false;

export function mount(el, ctx) {
  ctx.notice(""); // a message from another screen is not about this one
  ctx.clearError();
  stopped = false;
  el.append(h("h2", {class: "screen-title"}, "Backup and restore"));
  if (!ctx.canWrite) {
    el.append(h("section", {class: "card", id: "backup-viewer"},
      h("p", "Only an admin account can download or restore a backup: a backup holds every setting.")));
    return;
  }
  el.append(downloadCard(), restoreCard(ctx), importCard(ctx));
}

export function unmount() {
  stopped = true;
}

function downloadCard() {
  const users = h("input", {type: "checkbox", id: "backup-users"});
  const link = h("a", {href: "/api/backup?include_users=false", class: "button-link", id: "backup-download",
                       download: ""}, "Download a backup");
  users.addEventListener("change", () => link.setAttribute("href", `/api/backup?include_users=${users.checked}`));
  return h("section", {class: "card", id: "backup", "aria-labelledby": "backup-title"},
    h("h3", {id: "backup-title", class: "card-title"}, "Download a backup"),
    h("p", {class: "small"}, "One file with every setting: lists, allow and deny lists, groups, rules, " +
      "local records, zones, forwarding and settings. Not the query log or the audit events."),
    h("div", {class: "field check"}, users, h("label", {for: "backup-users"}, "Include user accounts and API tokens"),
      h("small", "The file then holds password hashes: keep it private.")),
    h("div", {class: "actions"}, link));
}

function restoreCard(ctx) {
  const file = h("input", {type: "file", id: "restore-file", accept: ".tar.gz,.tgz,application/gzip",
                           "aria-describedby": "restore-file-error"});
  const fileError = h("small", {id: "restore-file-error", class: "field-error"});
  const users = h("input", {type: "checkbox", id: "restore-users"});
  const check = h("button", {type: "submit", id: "restore-check"}, "Check this backup");
  const result = h("div", {id: "restore-result", "aria-live": "polite"});
  let pending = null; // {bytes, includeUsers} checked by the dry run and not yet restored

  function reset() {
    pending = null;
    result.replaceChildren();
  }
  file.addEventListener("change", reset);
  users.addEventListener("change", reset);

  async function send(bytes, includeUsers, dryRun) {
    const q = `dry_run=${dryRun}&include_users=${includeUsers}`;
    return ctx.api.postBytes(`/api/backup/restore?${q}`, bytes, "application/gzip");
  }

  const fail = (e) => refused(ctx, {file, fileError, result}, e, "restore-error", "restored");

  const form = h("form", {novalidate: true, id: "restore-form", "aria-labelledby": "restore-title"},
    h("div", {class: "field"}, h("label", {for: "restore-file"}, "Backup file"), file, fileError),
    h("div", {class: "field check"}, users, h("label", {for: "restore-users"},
      "Also restore user accounts and API tokens (if the file has them)")),
    check);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    reset();
    ctx.clearError();
    const chosen = chosenFile(file, fileError, "Choose a backup file first.", MAX_BYTES, "a backup is at most");
    if (!chosen) return;
    check.disabled = true;
    replace(result, h("p", {class: "loading"}, "Checking the backup…"));
    try {
      const bytes = await chosen.arrayBuffer();
      const answer = await send(bytes, users.checked, true);
      if (stopped) return;
      pending = {bytes, includeUsers: users.checked};
      replace(result, diffView(answer, "Restoring this backup would change:"), confirmRow());
    } catch (e) {
      if (!stopped) fail(e);
    } finally {
      check.disabled = false;
    }
  });

  const confirmRow = () => confirmButtons(ctx, {id: "restore", label: "Restore now", danger: true,
                                                 nothing: "Nothing was restored.", reset, fail}, async () => {
    if (!pending) return;
    const answer = await send(pending.bytes, pending.includeUsers, false);
    if (stopped) return;
    pending = null;
    ctx.clearError();
    ctx.notice("Backup restored. The settings from the file are in force now.");
    replace(result, diffView(answer, "Restored. What changed:"));
  });

  return h("section", {class: "card", id: "restore", "aria-labelledby": "restore-title"},
    h("h3", {id: "restore-title", class: "card-title"}, "Restore a backup"),
    h("p", {class: "small"}, "The file is checked first and you see what would change. Nothing changes " +
      "until you confirm; a restore replaces the settings with the file's, all at once or not at all."),
    form, result);
}

/** The second step after a dry run: "<label>" runs ``run`` (both buttons off meanwhile; a refusal
 * goes to ``fail``), Cancel forgets the checked file and says ``nothing``. */
function confirmButtons(ctx, {id, label, danger, nothing, reset, fail}, run) {
  const apply = h("button", {type: "button", id: `${id}-apply`, class: danger ? "danger" : null}, label);
  const cancel = h("button", {type: "button", id: `${id}-cancel`, class: "secondary"}, "Cancel");
  cancel.addEventListener("click", () => { reset(); ctx.notice(nothing); });
  apply.addEventListener("click", async () => {
    apply.disabled = cancel.disabled = true;
    try {
      await run();
    } catch (e) {
      if (!stopped) fail(e);
    }
  });
  return h("div", {class: "actions"}, apply, cancel);
}

/** The file chosen in ``file`` if there is one within ``maxBytes``; else null, with why beside it. */
function chosenFile(file, fileError, noneWords, maxBytes, limitWords) {
  file.removeAttribute("aria-invalid");
  text(fileError, "");
  const chosen = file.files && file.files[0];
  if (!chosen || chosen.size > maxBytes) {
    file.setAttribute("aria-invalid", "true");
    text(fileError, chosen ? `This file is ${count(chosen.size)} bytes; ${limitWords} ${count(maxBytes)}.` : noneWords);
    if (!chosen) file.focus();
    return null;
  }
  return chosen;
}

/** A file the API refused: the field marked, the reason in the API's words (each detail a line). */
function refused(ctx, {file, fileError, result}, e, id, done) {
  file.setAttribute("aria-invalid", "true");
  const lines = (e.details || []).length ? e.details : [];
  text(fileError, `This file cannot be ${done}. Nothing was changed.`);
  replace(result, h("div", {class: "problems-box", role: "alert", id},
    h("p", h("strong", `Nothing was ${done}. `), ctx.api.humanMessage(e)),
    lines.length ? h("ul", {class: "problems"}, lines.map((d) => h("li", d.message))) : null));
  ctx.showError(e);
}

/** The API's answer as words: per table, how many rows are added, changed, removed, and which. */
function diffView(answer, heading) {
  const tables = answer.tables || {};
  const items = answer.items || {};
  const changedTables = Object.keys(tables).filter((t) => tables[t].added || tables[t].changed || tables[t].removed);
  const made = answer.backup_created_at ? `Backup made ${answer.backup_created_at}` : "Backup";
  const from = answer.backup_burrow_version ? ` by Burrow ${answer.backup_burrow_version}` : "";
  const box = h("div", {class: "diff", id: "restore-diff"},
    h("p", {class: "small"}, `${made}${from}.`),
    h("p", {class: "state-line"}, changedTables.length ? heading : "Nothing would change: the settings already match this backup."));
  if (changedTables.length) {
    box.append(h("ul", {class: "diff-tables"}, changedTables.map((t) => {
      const c = tables[t];
      const it = items[t] || {};
      const parts = [];
      if (c.added) parts.push(`${count(c.added)} added`);
      if (c.changed) parts.push(`${count(c.changed)} changed`);
      if (c.removed) parts.push(`${count(c.removed)} removed`);
      return h("li", {"data-table": t}, h("strong", t), `: ${parts.join(", ")}`,
        kindList("Added", it.added, c.added), kindList("Changed", it.changed, c.changed),
        kindList("Removed", it.removed, c.removed));
    })));
  }
  if ((answer.skipped || []).length) {
    box.append(h("p", {class: "small"}, `Left alone (user accounts not chosen): ${answer.skipped.join(", ")}.`));
  }
  return box;
}

function kindList(label, names, total) {
  if (!names || !names.length) return null;
  const more = total > names.length ? ` and ${count(total - names.length)} more` : "";
  return h("p", {class: "small diff-items"}, `${label}: `, names.map((n, i) => [i ? ", " : "", h("code", n)]), more);
}

// ---- import from Pi-hole or AdGuard Home ---------------------------------------------------------

const IMPORT_SOURCES = {
  pihole: {label: "Pi-hole v6 (Teleporter .zip)", name: "Pi-hole", type: "application/zip",
           maxBytes: 16 * 1024 * 1024}, // burrow/migrate/teleporter.py MAX_ARCHIVE_BYTES
  adguard: {label: "AdGuard Home (.yaml)", name: "AdGuard Home", type: "application/yaml",
            maxBytes: 4 * 1024 * 1024}, // burrow/migrate/adguard.py MAX_YAML_BYTES
};
const AREA_WORDS = {group: "Group", client: "Client", list: "List", allow: "Allow entry", deny: "Deny entry",
                    record: "Local record", forward: "Forwarding rule", setting: "Setting"};

function importCard(ctx) {
  const source = h("select", {id: "import-source"},
    Object.entries(IMPORT_SOURCES).map(([value, s]) => h("option", {value}, s.label)));
  const file = h("input", {type: "file", id: "import-file", accept: ".zip,.yaml,.yml,application/zip,application/yaml",
                           "aria-describedby": "import-file-error"});
  const fileError = h("small", {id: "import-file-error", class: "field-error"});
  const check = h("button", {type: "submit", id: "import-check"}, "Check this file");
  const result = h("div", {id: "import-result", "aria-live": "polite"});
  let pending = null; // {bytes, source} checked by the dry run and not yet imported

  function reset() {
    pending = null;
    result.replaceChildren();
  }
  file.addEventListener("change", () => {
    reset();
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    // the file's name says which it is; the person can still correct the choice
    if (/\.zip$/i.test(chosen.name)) source.value = "pihole";
    else if (/\.ya?ml$/i.test(chosen.name)) source.value = "adguard";
  });
  source.addEventListener("change", reset);

  async function send(bytes, from, dryRun) {
    return ctx.api.postBytes(`/api/import/${from}?dry_run=${dryRun}`, bytes, IMPORT_SOURCES[from].type);
  }

  const fail = (e) => refused(ctx, {file, fileError, result}, e, "import-error", "imported");

  const form = h("form", {novalidate: true, id: "import-form", "aria-labelledby": "import-title"},
    h("div", {class: "field"}, h("label", {for: "import-source"}, "The file is from"), source),
    h("div", {class: "field"}, h("label", {for: "import-file"}, "File to import"), file, fileError),
    check);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    reset();
    ctx.clearError();
    const from = source.value;
    const chosen = chosenFile(file, fileError, "Choose a file first.", IMPORT_SOURCES[from].maxBytes,
                              `${IMPORT_SOURCES[from].name}'s file is read up to`);
    if (!chosen) return;
    check.disabled = true;
    replace(result, h("p", {class: "loading"}, "Checking the file…"));
    try {
      const bytes = await chosen.arrayBuffer();
      const plan = await send(bytes, from, true);
      if (stopped) return;
      const changes = plan.counts && (plan.counts.create || plan.counts.change);
      pending = changes ? {bytes, source: from} : null;
      replace(result, planView(plan, changes ? "Importing this file would:" : "Nothing would change: " +
        "Burrow already has everything in this file that it can take."), changes ? confirmRow() : null);
    } catch (e) {
      if (!stopped) fail(e);
    } finally {
      check.disabled = false;
    }
  });

  const confirmRow = () => confirmButtons(ctx, {id: "import", label: "Import now", danger: false,
                                                 nothing: "Nothing was imported.", reset, fail}, async () => {
    if (!pending) return;
    const plan = await send(pending.bytes, pending.source, false);
    if (stopped) return;
    const from = IMPORT_SOURCES[pending.source].name;
    pending = null;
    ctx.clearError();
    ctx.notice(`Imported from ${from}. The new settings are in force now.`);
    replace(result, planView(plan, "Imported. What was done:"));
  });

  return h("section", {class: "card", id: "import", "aria-labelledby": "import-title"},
    h("h3", {id: "import-title", class: "card-title"}, "Import from Pi-hole or AdGuard Home"),
    h("p", {class: "small"}, "A Teleporter archive from Pi-hole v6 (Settings, Teleporter, Export) or AdGuard " +
      "Home's configuration file, AdGuardHome.yaml. You see what would be created, changed and skipped, " +
      "and why, before anything changes. An import adds and changes; it never removes anything from Burrow, " +
      "and it happens all at once or not at all."),
    form, result);
}

/** The API's plan as words: counts, then what is created, changed and skipped (with why); what
 * Burrow has already is folded away. */
function planView(plan, heading) {
  const steps = plan.steps || [];
  const c = plan.counts || {};
  const parts = [];
  if (c.create) parts.push(`${count(c.create)} to create`);
  if (c.change) parts.push(`${count(c.change)} to change`);
  if (c.unchanged) parts.push(`${count(c.unchanged)} already in Burrow`);
  if (c.skipped) parts.push(`${count(c.skipped)} not imported`);
  const box = h("div", {class: "diff", id: "import-plan"},
    h("p", {class: "state-line"}, heading),
    parts.length ? h("p", {class: "small", id: "import-counts"}, parts.join(", ") + ".") : null);
  const sections = [
    ["create", plan.applied ? "Created" : "Will be created", false],
    ["change", plan.applied ? "Changed" : "Will be changed", false],
    ["skipped", "Not imported, and why", false],
    ["unchanged", "Already in Burrow", true],
  ];
  for (const [action, title, folded] of sections) {
    const these = steps.filter((s) => s.action === action);
    if (!these.length) continue;
    const list = h("ul", {class: "diff-tables plan-steps", "data-action": action},
      these.map((s) => h("li", {"data-area": s.area},
        s.area in AREA_WORDS ? [h("strong", AREA_WORDS[s.area]), " "] : null, h("code", s.key),
        s.why ? `: ${s.why}` : "", s.origin ? h("small", {class: "plan-origin"}, ` (${s.origin})`) : null)));
    const label = `${title} (${count(these.length)})`;
    box.append(folded
      ? h("details", {class: "table-details"}, h("summary", label), list)
      : h("div", {}, h("p", {class: "plan-heading"}, h("strong", label)), list));
  }
  if (plan.truncated) {
    box.append(h("p", {class: "small"}, "The plan is long: only its first steps are shown; the counts are complete."));
  }
  return box;
}
