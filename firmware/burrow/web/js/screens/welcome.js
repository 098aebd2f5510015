// The first-run guide (#/welcome), shown once right after the first account is made and open
// again from the nav at any time. Three steps, each skippable, each its own hash so the back
// button works: #/welcome/2fa, #/welcome/lists, #/welcome/router.
//
//   2fa     POST /api/auth/2fa/enrol, the QR as an image from our own origin
//           (GET /api/auth/2fa/qr.svg) and the secret as text, POST /api/auth/2fa/confirm, then
//           the recovery codes, shown this once
//   lists   GET /api/lists/catalogue (a short curated choice) plus custom URLs, added with
//           POST /api/lists (admins; a viewer sees the catalogue only)
//   router  GET /api/system's network part: the address to type into the router; "Check this
//           phone": POST /api/setup/check gives a unique name, an image load of http://<name>/
//           makes the phone's own resolver look it up (the load itself fails: nothing answers
//           there), and GET /api/setup/check/<name> says whether the lookup reached Burrow.

import {approx} from "../catalogue.js";
import {count, h, replace, text} from "../dom.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";

const STEPS = [
  {key: "2fa", title: "Two-factor sign-in"},
  {key: "lists", title: "Block lists"},
  {key: "router", title: "Point your router at Burrow"},
];
const CHECK_WAIT_MS = 4000; // how long the lookup may take before Burrow is asked
const CHECK_POLL_MS = 250;
const CUSTOM_MAX = 20; // custom URLs added at once

let timers = [];
let alive = false;

export async function mount(el, ctx) {
  alive = true;
  const step = Math.max(0, STEPS.findIndex((s) => s.key === (ctx.params[0] || "2fa")));
  const body = h("div", {class: "wizard-body"});
  el.append(h("section", {class: "card wizard", "aria-labelledby": "wizard-title"},
    h("p", {class: "small wizard-progress"}, `Step ${step + 1} of ${STEPS.length}`),
    h("h2", {id: "wizard-title"}, STEPS[step].title),
    body,
    navigation(step)));
  const build = [twoFactor, lists, router][step];
  await build(body, ctx);
}

export function unmount() {
  alive = false;
  timers.forEach(clearTimeout);
  timers = [];
}

function go(index) {
  location.hash = index >= STEPS.length ? "#/dashboard" : `#/welcome/${STEPS[index].key}`;
}

function navigation(step) {
  const last = step === STEPS.length - 1;
  return h("div", {class: "actions wizard-nav"},
    step > 0 ? h("button", {type: "button", id: "wizard-back", on: {click: () => go(step - 1)}}, "Back") : null,
    h("button", {type: "button", id: "wizard-next", class: "primary", on: {click: () => go(step + 1)}},
      last ? "Finish" : "Next"),
    last ? null : h("button", {type: "button", id: "wizard-skip", on: {click: () => go(STEPS.length)}},
      "Skip the guide"),
    h("p", {class: "small"}, "You can open this guide again from “Setup guide” in the menu."));
}

// ---- step 1: two-factor sign-in --------------------------------------------------------------------

async function twoFactor(body, ctx) {
  if (ctx.me.totp_enabled) {
    replace(body, h("p", {id: "totp-on"}, "Two-factor sign-in is on for your account. ",
      `${count(ctx.me.recovery_codes_left)} recovery codes are left.`));
    return;
  }
  if (ctx.me.via === "token") {
    replace(body, h("p", "Sign in with your password to turn on two-factor sign-in (an API token cannot)."));
    return;
  }
  const start = h("button", {type: "button", id: "totp-start", class: "primary"}, "Turn on two-factor sign-in");
  replace(body,
    h("p", "With two-factor sign-in, signing in needs your password and a 6-digit code from an " +
      "authenticator app on your phone (for example Aegis, Google Authenticator or 1Password). " +
      "Someone who learns the password still cannot get in."),
    h("p", {class: "small"}, "Optional: skip this step if you do not want it now."),
    h("div", {class: "actions"}, start));
  start.addEventListener("click", async () => {
    start.disabled = true;
    ctx.clearError();
    try {
      const enrolment = await ctx.api.post("/api/auth/2fa/enrol");
      if (alive) confirmStep(body, ctx, enrolment);
    } catch (e) {
      ctx.showError(e);
      start.disabled = false;
    }
  });
}

function groups(secret) {
  return String(secret).replace(/(.{4})/g, "$1 ").trim();
}

function confirmStep(body, ctx, enrolment) {
  const code = field("totp-code", "The 6-digit code the app shows", "code",
    {inputmode: "numeric", autocomplete: "one-time-code", required: true, maxlength: "12"});
  const submit = h("button", {type: "submit"}, "Turn it on");
  const form = h("form", {id: "totp-confirm", novalidate: true}, code.wrap, submit);
  replace(body,
    h("ol", {class: "wizard-list"},
      h("li", "Open your authenticator app and add an account by scanning this code."),
      h("li", "Type the 6-digit code the app then shows.")),
    h("figure", {class: "qr"},
      h("img", {id: "totp-qr", src: `/api/auth/2fa/qr.svg?t=${Date.now()}`, width: "232", height: "232",
                alt: "QR code to add Burrow to your authenticator app"}),
      h("figcaption", {class: "small"}, "Cannot scan it? Type this key into the app instead: ",
        h("code", {id: "totp-secret", class: "secret"}, groups(enrolment.secret)))),
    form);
  code.input.focus();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    clearFieldErrors([code]);
    ctx.clearError();
    try {
      const res = await ctx.api.post("/api/auth/2fa/confirm", {code: code.input.value.trim()});
      ctx.me.totp_enabled = true;
      if (alive) showRecovery(body, res.recovery_codes);
    } catch (e) {
      markFieldErrors(e, [code]);
      ctx.showError(e, labels([code]));
      submit.disabled = false;
    }
  });
}

function showRecovery(body, codes) {
  const saved = h("button", {type: "button", id: "codes-saved", class: "primary"},
    "I have saved them: next step");
  saved.addEventListener("click", () => go(1));
  replace(body,
    h("p", {id: "totp-enabled", class: "state-line"}, "Two-factor sign-in is on."),
    h("p", "These recovery codes let you in if the phone with the app is lost. Each works once, " +
      "instead of a code. Write them down or save them in a password manager now: this is the only " +
      "time Burrow shows them."),
    h("ul", {id: "recovery-codes", class: "recovery-codes"}, codes.map((c) => h("li", h("code", c)))),
    h("div", {class: "actions"}, saved));
  saved.focus();
}

// ---- step 2: block lists ---------------------------------------------------------------------------

function customName(url, taken) {
  let base;
  try {
    const u = new URL(url);
    const file = u.pathname.split("/").filter(Boolean).pop() || "";
    base = `${u.hostname}${file ? " " + file : ""}`;
  } catch {
    base = url;
  }
  base = base.replace(/[\u0000-\u001f\u007f]/g, "").slice(0, 56) || "Custom list";
  let name = base;
  for (let n = 2; taken.has(name.toLowerCase()); n += 1) name = `${base} (${n})`;
  taken.add(name.toLowerCase());
  return name;
}

function webAddress(text) {
  try {
    const u = new URL(text);
    return (u.protocol === "https:" || u.protocol === "http:") && !!u.hostname;
  } catch {
    return false;
  }
}

async function lists(body, ctx) {
  replace(body, h("p", {class: "loading"}, "Loading the catalogue…"));
  let catalogue;
  try {
    catalogue = await ctx.api.get("/api/lists/catalogue");
  } catch (e) {
    if (!alive) return;
    replace(body, h("p", {class: "error", role: "alert"}, `The catalogue did not load: ${ctx.api.humanMessage(e)}`),
      h("button", {type: "button", on: {click: () => lists(body, ctx)}}, "Try again"));
    return;
  }
  if (!alive) return;
  const anyAdded = catalogue.lists.some((e) => e.added);
  const intro = h("p", "Block lists name the ad, tracking and malware servers Burrow answers for. " +
    "Pick one or two to start; more lists block more, and break a site now and then. The Lists screen " +
    "changes them later.");
  if (!ctx.canWrite) {
    replace(body, intro, h("p", {class: "notice"}, "Only an admin can add lists. These are the ones offered:"),
      h("ul", {class: "catalogue"}, catalogue.lists.map((e) => h("li", {class: "catalogue-item"},
        h("strong", e.name), e.added ? " (added)" : "", h("br"), e.description, h("br"),
        h("small", approx(e))))));
    return;
  }
  const boxes = catalogue.lists.map((e) => {
    const id = `cat-${e.id}`;
    const input = h("input", {type: "checkbox", id, name: "catalogue", value: e.id,
                              checked: e.added || (!anyAdded && e.recommended), disabled: e.added,
                              "aria-describedby": `${id}-about`});
    return {entry: e, input, el: h("li", {class: "catalogue-item check-row"}, input,
      h("label", {for: id}, e.name, e.recommended ? h("span", {class: "pill"}, "recommended") : null,
        e.added ? h("span", {class: "pill"}, "added") : null),
      h("small", {id: `${id}-about`}, `${e.description} ${approx(e)}.`))};
  });
  const custom = h("textarea", {id: "custom-urls", name: "custom", rows: "3", spellcheck: "false",
                                autocomplete: "off", "aria-describedby": "custom-urls-help custom-urls-error",
                                placeholder: "https://example.org/blocklist.txt"});
  const customError = h("small", {id: "custom-urls-error", class: "field-error"});
  const submit = h("button", {type: "submit", id: "lists-add"}, "Add the chosen lists");
  const result = h("div", {id: "lists-result", role: "status"});
  const form = h("form", {id: "lists-form", novalidate: true},
    h("fieldset", {class: "catalogue-set"}, h("legend", "Well-known lists"),
      h("ul", {class: "catalogue"}, boxes.map((b) => b.el))),
    h("div", {class: "field"}, h("label", {for: "custom-urls"}, "Other lists (optional)"),
      h("small", {id: "custom-urls-help"}, "The web address of a list, one per line (hosts files, domain " +
        "lists, adblock-style and RPZ lists work)."),
      custom, customError),
    submit, result);
  replace(body, intro, form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ctx.clearError();
    text(customError, "");
    custom.removeAttribute("aria-invalid");
    const urls = custom.value.split("\n").map((u) => u.trim()).filter(Boolean);
    const bad = urls.map((u, i) => (webAddress(u) ? null : i + 1)).filter(Boolean);
    const problem = urls.length > CUSTOM_MAX ? `At most ${CUSTOM_MAX} addresses at once.`
      : bad.length ? `${bad.length === 1 ? `Line ${bad[0]} is` : `Lines ${bad.join(", ")} are`} not a web ` +
        "address: each line must be one, starting with https:// or http://. Nothing was added."
      : "";
    if (problem) {
      text(customError, problem);
      custom.setAttribute("aria-invalid", "true");
      custom.focus();
      return;
    }
    const chosen = boxes.filter((b) => b.input.checked && !b.entry.added);
    const taken = new Set(catalogue.lists.map((e) => e.name.toLowerCase()));
    const jobs = [...chosen.map((b) => ({label: b.entry.name, body: {name: b.entry.name, source: b.entry.url}, box: b})),
      ...urls.map((u) => ({label: u, body: {name: customName(u, taken), source: u}, custom: u}))];
    if (!jobs.length) {
      replace(result, h("p", {class: "notice"}, "Nothing new chosen. Tick a list or type an address, or go on."));
      return;
    }
    submit.disabled = true;
    const added = [];
    const failed = [];
    for (const job of jobs) {
      try {
        await ctx.api.post("/api/lists", job.body);
        added.push(job.label);
        if (job.box) {
          job.box.entry.added = true;
          job.box.input.disabled = true;
        }
      } catch (e) {
        failed.push({job, message: ctx.api.humanMessage(e, {source: "Address", name: "Name"})});
      }
      if (!alive) return;
    }
    const kept = failed.filter((f) => f.job.custom).map((f) => f.job.custom);
    custom.value = kept.join("\n");
    if (kept.length) {
      custom.setAttribute("aria-invalid", "true");
      text(customError, "These addresses were not added: see below.");
    }
    replace(result,
      added.length ? h("p", {id: "lists-added", class: "state-line"},
        `Added ${added.length === 1 ? "1 list" : `${added.length} lists`}: ${added.join(", ")}. Burrow downloads ` +
        "them now; the Lists screen shows their progress.") : null,
      failed.length ? h("ul", {class: "problems", id: "lists-failed"},
        failed.map((f) => h("li", `${f.job.label}: ${f.message}`))) : null);
    submit.disabled = false;
  });
}

// ---- step 3: the router, and the check ---------------------------------------------------------

function isIp(host) {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
}

function addressesOf(network) {
  const v4 = [];
  const v6 = [];
  if (network && network.available) {
    if (network.primary_v4) v4.push(network.primary_v4);
    if (network.primary_v6) v6.push(network.primary_v6);
  }
  return {v4, v6};
}

async function router(body, ctx) {
  replace(body, h("p", {class: "loading"}, "Looking up Burrow's address…"));
  let system = null;
  let failure = null;
  try {
    system = await ctx.api.get("/api/system");
  } catch (e) {
    failure = e;
  }
  if (!alive) return;
  const {v4, v6} = addressesOf(system && system.network);
  const host = location.hostname.replace(/^\[|\]$/g, "");
  const parts = [];
  if (v4.length) {
    parts.push(h("p", {class: "router-step"}, "Open your router's settings page, find the DNS server it hands " +
      "out to your devices (often under LAN, DHCP or Network), and ",
      h("strong", {id: "router-instruction"}, `set the DNS server to ${v4[0]}`), "."));
    parts.push(h("p", {class: "small"}, "If the router asks for a second DNS server, leave it empty or type " +
      `${v4[0]} again: a public second server would let devices go around Burrow.`));
    if (v6.length) {
      parts.push(h("p", {class: "small", id: "router-v6"}, "If the router also hands out an IPv6 DNS server, " +
        `set that to ${v6[0]}.`));
    }
  } else {
    const why = failure ? ctx.api.humanMessage(failure)
      : (system && system.network && system.network.error) || "it has no address on the network yet";
    parts.push(h("p", {class: "notice", id: "router-unknown"}, `Burrow could not tell its own address (${why}).`));
    if (isIp(host)) {
      parts.push(h("p", {class: "router-step"}, "This page was opened at ", h("strong", {id: "router-instruction"},
        host), ": in the router's settings, set the DNS server to that address."));
    }
  }
  parts.push(h("p", "Then reconnect this phone to the Wi-Fi (or turn Wi-Fi off and on), so it picks up the " +
    "new DNS server, and check it:"));
  const check = h("button", {type: "button", id: "check-device", class: "primary"}, "Is this phone using Burrow?");
  const answer = h("div", {id: "check-result", role: "status", "aria-live": "polite"});
  parts.push(h("div", {class: "actions"}, check), answer);
  replace(body, ...parts);
  check.addEventListener("click", () => runCheck(ctx, check, answer));
}

function wait(ms) {
  return new Promise((resolve) => timers.push(setTimeout(resolve, ms)));
}

async function runCheck(ctx, button, answer) {
  button.disabled = true;
  ctx.clearError();
  replace(answer, h("p", {class: "loading"}, "Checking…"));
  try {
    const probe = await ctx.api.post("/api/setup/check");
    // The phone's own resolver looks the name up to load the image; nothing is there to load,
    // so the load fails (expected): the lookup is what Burrow watches for.
    let settled = false;
    const img = h("img", {alt: "", class: "probe", src: `http://${probe.name}/burrow-check.png`});
    img.addEventListener("error", () => { settled = true; });
    img.addEventListener("load", () => { settled = true; });
    const deadline = Date.now() + CHECK_WAIT_MS;
    let state = probe;
    while (alive && Date.now() < deadline) {
      await wait(CHECK_POLL_MS);
      state = await ctx.api.get(`/api/setup/check/${encodeURIComponent(probe.name)}`);
      if (state.seen || settled) break;
    }
    if (alive && !state.seen && settled) { // the lookup failed or finished: one last look
      state = await ctx.api.get(`/api/setup/check/${encodeURIComponent(probe.name)}`);
    }
    if (!alive) return;
    img.removeAttribute("src");
    if (state.seen) {
      replace(answer, h("p", {class: "check yes", id: "check-yes"}, "Yes: this phone is using Burrow."),
        h("p", {class: "small"}, state.client ? `Its lookup came from ${state.client}` +
          " (the phone itself, or the router passing it on)." : ""));
    } else {
      replace(answer, h("p", {class: "check no", id: "check-no"}, "No: this phone is not using Burrow yet."),
        h("ul", {class: "small"},
          h("li", "Check the router's DNS setting and save it (some routers need a restart)."),
          h("li", "Reconnect this phone to the Wi-Fi, so it gets the new setting."),
          h("li", "Turn off “Private DNS” (Android) or iCloud Private Relay and VPNs on this phone: they " +
            "send lookups elsewhere.")));
    }
  } catch (e) {
    if (!alive) return;
    replace(answer);
    ctx.showError(e);
  } finally {
    button.disabled = false;
  }
}
