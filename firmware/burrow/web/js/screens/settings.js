// Settings: upstreams, how blocks are answered, cache (and purging it), rate limit, what the
// query log keeps (privacy), encryption (the certificate and its fingerprint), logging — GET /api/config, PUT /api/config/<section>. An admin gets one form per section (every bad field marked from the API's
// details); a viewer gets the same values as text and no control at all.

import {count, h, replace, text} from "../dom.js";
import {clearFieldErrors, labels, markFieldErrors} from "../forms.js";

const SECTIONS = [
  {id: "upstreams", what: "upstream servers", title: "Upstream DNS servers", path: "/api/config/upstreams", group: null,
   intro: "Where Burrow asks for names it does not know. One address per line, port 53 unless given.",
   fields: [{name: "upstream_dns_servers", label: "Upstream servers", type: "list",
             help: "For example 9.9.9.9 or 1.1.1.1:53 or [2620:fe::fe]:53"}]},
  {id: "blocking", what: "blocked names", title: "Blocked names", path: "/api/config/blocking", group: "filtering",
   intro: "How Burrow answers a name it blocks.",
   fields: [
     {name: "blocking_mode", label: "Answer blocked names with", type: "select",
      options: [["null", "0.0.0.0 / :: (null address)"], ["nxdomain", "No such domain (NXDOMAIN)"],
                ["nodata", "No address (NODATA)"], ["custom", "The addresses below"]]},
     {name: "custom_ipv4", label: "IPv4 address (custom mode)", type: "text"},
     {name: "custom_ipv6", label: "IPv6 address (custom mode)", type: "text"},
     {name: "blocked_ttl", label: "Time to live of a blocked answer (seconds)", type: "number",
      help: "Short: an unblocked name works again quickly on devices."}]},
  {id: "cache", what: "cache", title: "Cache", path: "/api/config/cache", group: "cache", purge: true,
   intro: "Answers Burrow keeps so a repeated question is answered at once.",
   fields: [
     {name: "enabled", label: "Cache answers", type: "bool"},
     {name: "max_bytes", label: "Cache size (bytes)", type: "number"},
     {name: "min_ttl", label: "Shortest time kept (seconds)", type: "number"},
     {name: "max_ttl", label: "Longest time kept (seconds)", type: "number"},
     {name: "negative_ttl", label: "Time a \"no such name\" is kept (seconds)", type: "number"},
     {name: "serve_stale", label: "Answer from an expired entry while asking again", type: "bool"},
     {name: "prefetch", label: "Refresh popular entries before they expire", type: "bool"}]},
  {id: "rate-limit", what: "rate limit", title: "Rate limit", path: "/api/config/rate-limit", group: "rate_limit",
   intro: "Limits how fast one device may ask, so a runaway device cannot swamp Burrow.",
   fields: [
     {name: "enabled", label: "Limit queries per device", type: "bool"},
     {name: "rps", label: "Queries per second", type: "number"},
     {name: "burst", label: "Queries at once (burst)", type: "number"},
     {name: "action", label: "Past the limit", type: "select",
      options: [["drop", "Drop the query"], ["refuse", "Refuse it"]]},
     {name: "cleanup_interval", label: "Forget idle devices after (seconds)", type: "number"},
     {name: "max_tracked_clients", label: "Devices tracked at most", type: "number"}]},
  {id: "privacy", what: "privacy", title: "Privacy: what the query log keeps", path: "/api/config/privacy",
   values: (config) => ({decision_trace: (config.server || {}).decision_trace,
                         query_log_retention_days: (config.storage || {}).query_log_retention_days,
                         query_log_max_bytes: (config.storage || {}).query_log_max_bytes}),
   intro: "Every question a device asks is logged with the device's address, the name and the answer. " +
     "A shorter time or size takes effect at the next hourly clean-up.",
   fields: [
     {name: "decision_trace", label: "Keep why each answer was given (decision trace)", type: "bool"},
     {name: "query_log_retention_days", label: "Keep the query log for (days)", type: "number"},
     {name: "query_log_max_bytes", label: "Keep at most (bytes)", type: "number"}]},
  {id: "tls", what: "encryption", title: "Encryption: HTTPS and encrypted DNS", path: "/api/config/tls", group: "tls",
   certificate: true,
   intro: "A certificate lets devices reach Burrow over DNS over TLS (Android's Private DNS), DNS over HTTPS " +
     "(browsers, iPhone profiles) and this page over HTTPS. Compare the fingerprint below with what a device " +
     "shows before you trust it.",
   fields: [
     {name: "mode", label: "Certificate", type: "select",
      options: [["off", "None (encryption off)"], ["self_signed", "Made by Burrow (self-signed)"],
                ["manual", "My own files (below)"],
                ["autocert", "Let's Encrypt, checked over HTTP (set up in burrow.toml)"],
                ["acme", "Let's Encrypt, checked through DNS (set up in burrow.toml)"]]},
     {name: "cert_file", label: "Certificate file (PEM, full chain)", type: "text",
      help: "Only for \"My own files\", for example /etc/burrow/tls/fullchain.pem"},
     {name: "key_file", label: "Private key file (PEM)", type: "text"},
     {name: "dot_enabled", label: "Answer DNS over TLS", type: "bool"},
     {name: "dot_address", label: "DNS over TLS address", type: "text", help: "For example 0.0.0.0:853"},
     {name: "https_address", label: "HTTPS address for this page", type: "text",
      help: "For example 0.0.0.0:443; empty: no HTTPS. Plain HTTP then sends browsers to HTTPS."},
     {name: "hsts", label: "Tell browsers to use only HTTPS (HSTS)", type: "bool",
      help: "Only with a certificate your devices trust: a browser then refuses any other for a year."}]},
  {id: "logging", what: "logging", title: "Logging", path: "/api/config/logging", group: "logging",
   intro: "Burrow's own log (not the query log).",
   fields: [
     {name: "level", label: "Log level", type: "select",
      options: [["debug", "Debug"], ["info", "Info"], ["warning", "Warning"], ["error", "Error"]]},
     {name: "format", label: "Format", type: "select", options: [["text", "Text"], ["json", "JSON"]]},
     {name: "output", label: "Output", type: "select", options: [["stderr", "stderr"], ["stdout", "stdout"]]}]},
];

let stopped = false;

export async function mount(el, ctx) {
  stopped = false;
  ctx.notice(""); // a message from another screen is not about this one
  ctx.clearError();
  const status = h("p", {class: "loading"}, "Loading the settings…");
  el.append(h("h2", {class: "screen-title"}, "Settings"), status);
  let config;
  try {
    config = await ctx.api.get("/api/config");
  } catch (e) {
    if (stopped) return;
    replace(status, "The settings could not be read. ", h("button", {type: "button",
      on: {click: () => { el.replaceChildren(); mount(el, ctx); }}}, "Try again"));
    status.className = "error";
    status.setAttribute("role", "alert");
    ctx.showError(e);
    return;
  }
  if (stopped) return;
  status.remove();
  for (const section of SECTIONS) el.append(sectionCard(ctx, section, config));
}

export function unmount() {
  stopped = true;
}

function valuesOf(section, config) {
  if (section.values) return section.values(config);
  if (section.group === null) return {upstream_dns_servers: config.upstream_dns_servers};
  return config[section.group] || {};
}

function show(value, f) {
  if (f.type === "bool") return value ? "On" : "Off";
  if (f.type === "list") return (value || []).join(", ") || "none";
  if (f.type === "select") {
    const o = f.options.find(([v]) => v === value);
    return o ? o[1] : String(value);
  }
  return typeof value === "number" ? count(value) : String(value ?? "");
}

function control(section, f, value) {
  const id = `set-${section.id}-${f.name}`;
  const errorId = `${id}-error`;
  const helpId = f.help ? `${id}-help` : null;
  const described = [helpId, errorId].filter(Boolean).join(" ");
  let input;
  if (f.type === "select") {
    input = h("select", {id, name: f.name, "aria-describedby": described},
      f.options.map(([v, label]) => h("option", {value: v, selected: v === value}, label)));
  } else if (f.type === "list") {
    input = h("textarea", {id, name: f.name, rows: "3", "aria-describedby": described, spellcheck: "false"});
    input.value = (value || []).join("\n");
  } else if (f.type === "bool") {
    input = h("input", {id, name: f.name, type: "checkbox", checked: !!value, "aria-describedby": described});
  } else {
    input = h("input", {id, name: f.name, type: "text", inputmode: f.type === "number" ? "decimal" : null,
                        "aria-describedby": described, autocomplete: "off"});
    input.value = value === undefined || value === null ? "" : String(value);
  }
  const error = h("small", {id: errorId, class: "field-error"});
  const wrap = h("div", {class: f.type === "bool" ? "field check" : "field"},
    f.type === "bool" ? [input, h("label", {for: id}, f.label)] : [h("label", {for: id}, f.label), input],
    f.help ? h("small", {id: helpId}, f.help) : null, error);
  return {wrap, input, error, name: f.name, label: f.label, type: f.type};
}

function read(c) {
  if (c.type === "bool") return c.input.checked;
  if (c.type === "list") return c.input.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  if (c.type === "number") {
    const raw = c.input.value.trim();
    return raw !== "" && Number.isFinite(Number(raw)) ? Number(raw) : raw; // the API names a bad one
  }
  return c.type === "text" ? c.input.value.trim() : c.input.value;
}

/** The API names list items "upstream_dns_servers[1]": mark the field, saying which line. */
function byField(err) {
  return {details: (err.details || []).map((d) => {
    const m = /^([a-z_]+)\[(\d+)\]$/.exec(d.field);
    return m ? {field: m[1], message: `line ${Number(m[2]) + 1}: ${d.message}`} : d;
  })};
}

function sectionCard(ctx, section, config) {
  const titleId = `set-${section.id}-title`;
  const card = h("section", {class: "card", id: `settings-${section.id}`, "aria-labelledby": titleId},
    h("h3", {id: titleId, class: "card-title"}, section.title), h("p", {class: "small"}, section.intro));
  const values = valuesOf(section, config);
  let cert = section.certificate ? certificateFacts(values.certificate) : null;
  if (!ctx.canWrite) {
    card.append(h("dl", {class: "kv"}, section.fields.map((f) =>
      h("div", h("dt", f.label), h("dd", show(values[f.name], f))))));
    if (cert) card.append(cert);
    return card;
  }
  const controls = section.fields.map((f) => control(section, f, values[f.name]));
  const save = h("button", {type: "submit"}, `Save ${section.what}`);
  const done = h("p", {class: "small saved", role: "status"});
  const form = h("form", {novalidate: true, "aria-labelledby": titleId}, controls.map((c) => c.wrap), save, done);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(controls.map((c) => [c.name, read(c)]));
    save.disabled = true;
    clearFieldErrors(controls);
    text(done, "");
    try {
      const answer = await ctx.api.request("PUT", section.path, body);
      ctx.clearError();
      for (const c of controls) { // what is in force now, as the API says
        const v = answer.config[c.name];
        if (c.type === "bool") c.input.checked = !!v;
        else if (c.type === "list") c.input.value = (v || []).join("\n");
        else c.input.value = String(v);
      }
      if (cert) cert.replaceWith(cert = certificateFacts(answer.config.certificate));
      text(done, `Saved and applied at ${new Date().toLocaleTimeString()}.`);
    } catch (e) {
      if (Array.isArray(e.details)) e.details = byField(e).details;
      markFieldErrors(e, controls);
      ctx.showError(e, labels(controls));
    } finally {
      save.disabled = false;
    }
  });
  card.append(form);
  if (cert) card.append(cert);
  if (section.purge) card.append(purgeRow(ctx));
  return card;
}

function purgeRow(ctx) {
  const result = h("p", {class: "small", role: "status", id: "cache-purge-result"});
  const button = h("button", {type: "button", id: "cache-purge", class: "secondary"}, "Empty the cache now");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const answer = await ctx.api.post("/api/cache/purge");
      ctx.clearError();
      text(result, `Cache emptied: ${count(answer.entries_cleared)} answers removed.`);
    } catch (e) {
      text(result, "");
      ctx.showError(e);
    } finally {
      button.disabled = false;
    }
  });
  return h("div", {class: "actions purge"}, button, result);
}

/** The certificate in force (GET /api/config's tls.certificate; never a key): who it names, until
 * when, and its SHA-256 fingerprint, grouped so it can be read out and compared. */
function certificateFacts(c) {
  if (!c) return h("p", {class: "small", id: "tls-certificate"}, "No certificate is in use: encryption is off.");
  const until = new Date(c.not_after);
  return h("dl", {class: "kv", id: "tls-certificate", "aria-label": "Certificate in use"},
    h("div", h("dt", "Issued to"), h("dd", c.subject)),
    h("div", h("dt", "Names"), h("dd", (c.names || []).join(", ") || "none")),
    h("div", h("dt", "Valid until"), h("dd", Number.isNaN(until.getTime()) ? String(c.not_after)
      : until.toLocaleDateString([], {year: "numeric", month: "long", day: "numeric"}))),
    h("div", h("dt", "Fingerprint (SHA-256)"), h("dd", {class: "fingerprint", id: "tls-fingerprint"}, c.fingerprint_sha256)));
}
