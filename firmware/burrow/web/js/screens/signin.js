// Sign-in, and the first-run account creation when the box has no user yet.
//
// What the API tells about a failed sign-in: "totp_required" (the password was right and the
// account has 2FA: ask for the code), "locked_out" with Retry-After (too many failures), and
// otherwise a deliberately vague 401 that does not say which part was wrong. The page knows
// one more thing: when it asked for the code because the password was right, and the same name
// and password come back with a code, a 401 means the code was wrong.

import {h, text} from "../dom.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";
import {estimate} from "../strength.js";

let lockTimer = null; // re-enables the sign-in button when a lockout ends

export function mount(el, ctx) {
  const form = ctx.setupRequired ? setupForm(ctx) : loginForm(ctx);
  el.append(form.section);
  form.focus.focus();
}

export function unmount() {
  clearTimeout(lockTimer);
  lockTimer = null;
}

/** "30 days", "12 hours": a session lifetime in words. */
export function lifetimeWords(seconds) {
  const s = Number(seconds) || 0;
  if (s >= 2 * 86400) return `${Math.round(s / 86400)} days`;
  if (s >= 7200) return `${Math.round(s / 3600)} hours`;
  return `${Math.max(1, Math.round(s / 60))} minutes`;
}

/** The strength meter under a new-password field: a <meter>, its word, and hints in words. */
function strengthMeter(input, username) {
  const meter = h("meter", {id: "strength-meter", min: "0", max: "4", low: "2", high: "3", optimum: "4",
                            value: "0", "aria-labelledby": "strength-label"});
  const word = h("span", {id: "strength-word"});
  const hints = h("ul", {id: "strength-hints", class: "strength-hints"});
  const box = h("div", {class: "strength", "aria-live": "polite"},
    h("span", {id: "strength-label", class: "strength-label"}, "Strength: ", word), meter, hints);
  const update = () => {
    const e = estimate(input.value, {username: username.value});
    meter.value = e.score;
    meter.dataset.score = String(e.score);
    text(word, input.value ? e.label : "nothing typed yet");
    hints.replaceChildren(...e.hints.slice(0, 3).map((hint) => h("li", hint)));
  };
  input.addEventListener("input", update);
  username.addEventListener("input", update);
  update();
  return box;
}

function setupForm(ctx) {
  const username = field("setup-username", "User name", "username",
    {autocomplete: "username", required: true, maxlength: "64"});
  const password = field("setup-password", "Password", "password",
    {type: "password", autocomplete: "new-password", required: true},
    "At least 10 characters; under 14, mix letters, digits or symbols.");
  const fields = [username, password];
  const submit = h("button", {type: "submit"}, "Create account and sign in");
  const meter = strengthMeter(password.input, username.input);
  const formEl = h("form", {id: "setup-form", novalidate: true}, username.wrap, password.wrap, meter, submit);
  formEl.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = username.input.value.trim();
    const pass = password.input.value;
    submit.disabled = true;
    clearFieldErrors(fields);
    try {
      await ctx.api.post("/api/auth/setup", {username: name, password: pass});
      const me = await ctx.api.signIn(name, pass);
      password.input.value = "";
      history.replaceState(null, "", "#/welcome"); // the first-run guide, once, right after setup
      await ctx.signedIn(me);
    } catch (e) {
      markFieldErrors(e, fields);
      ctx.showError(e, labels(fields));
    } finally {
      submit.disabled = false;
    }
  });
  const section = h("section", {id: "setup", class: "card", "aria-labelledby": "setup-title"},
    h("h2", {id: "setup-title"}, "Create the admin account"),
    h("p", "This Burrow has no account yet. Choose the name and password of its first admin."),
    formEl);
  return {section, focus: username.input};
}

function loginForm(ctx) {
  const username = field("login-username", "User name", "username", {autocomplete: "username", required: true});
  const password = field("login-password", "Password", "password",
    {type: "password", autocomplete: "current-password", required: true});
  const totp = field("login-totp", "Two-factor code", "totp",
    {inputmode: "numeric", autocomplete: "one-time-code"},
    "The 6-digit code from your authenticator app, or one of your recovery codes.");
  const totpLabel = totp.wrap.querySelector("label");
  let recovery = false;
  const switchCode = h("button", {type: "button", id: "use-recovery", class: "link-button"},
    "Use a recovery code instead");
  switchCode.addEventListener("click", () => {
    recovery = !recovery;
    text(totpLabel, recovery ? "Recovery code" : "Two-factor code");
    totp.input.setAttribute("inputmode", recovery ? "text" : "numeric");
    totp.input.setAttribute("autocomplete", recovery ? "off" : "one-time-code");
    text(switchCode, recovery ? "Use a code from the app instead" : "Use a recovery code instead");
    totp.input.value = "";
    totp.input.focus();
  });
  const totpRow = h("div", {id: "totp-row", hidden: true}, totp.wrap, switchCode);
  const fields = [username, password, totp];
  const lifetimes = ctx.lifetimes || {};
  const remember = h("input", {type: "checkbox", id: "login-remember", name: "remember",
                               "aria-describedby": "login-remember-help"});
  const rememberRow = h("div", {class: "check-row"}, remember,
    h("label", {for: "login-remember"},
      `Stay signed in on this device${lifetimes.remember ? ` for ${lifetimeWords(lifetimes.remember)}` : ""}`),
    h("small", {id: "login-remember-help"},
      `Otherwise you are signed out when the browser closes${lifetimes.session
        ? `, or after ${lifetimeWords(lifetimes.session)} without use` : ""}. Leave it off on a shared device.`));
  const submit = h("button", {type: "submit"}, "Sign in");
  let passwordWasRight = null; // "name\0password" the API said was right (it asked for the code)

  const formEl = h("form", {id: "login-form", novalidate: true}, username.wrap, password.wrap, totpRow,
    rememberRow, submit);
  formEl.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = username.input.value.trim();
    const pass = password.input.value;
    const code = totpRow.hidden ? "" : totp.input.value.trim();
    submit.disabled = true;
    clearFieldErrors(fields);
    ctx.clearError();
    try {
      const me = await ctx.api.signIn(name, pass, code, remember.checked);
      password.input.value = "";
      totp.input.value = "";
      await ctx.signedIn(me);
    } catch (e) {
      if (e.error === "totp_required") {
        passwordWasRight = `${name}\0${pass}`;
        totpRow.hidden = false;
        totp.input.focus();
        ctx.notice("Enter the code from your authenticator app.");
      } else if (e.status === 401 && code && passwordWasRight === `${name}\0${pass}`) {
        markFieldErrors({details: [{field: "totp", message: "This code was not accepted."}]}, fields);
        ctx.showError(new Error(recovery
          ? "The password was right, but the recovery code was not accepted. Each recovery code works once: " +
            "check it for typing mistakes, or use another one."
          : "The password was right, but the two-factor code was not accepted. " +
            "Codes change every 30 seconds: type the current one, or use a recovery code."));
      } else if (e.status === 401) {
        markFieldErrors({details: [{field: "password", message: "Wrong user name or password."}]}, fields);
        ctx.showError(new Error(code ? "Wrong user name, password or two-factor code."
          : "Wrong user name or password."));
      } else if (e.error === "locked_out") {
        // "Too many failed attempts. Try again in 4 minutes (at 12:34)." The button waits as well.
        ctx.showError(e);
        const wait = Math.max(1, Number(e.retryAfter) || 60);
        clearTimeout(lockTimer);
        submit.dataset.locked = "true";
        lockTimer = setTimeout(() => {
          delete submit.dataset.locked;
          submit.disabled = false;
          ctx.clearError();
        }, wait * 1000);
      } else {
        markFieldErrors(e, fields);
        ctx.showError(e, labels(fields));
      }
    } finally {
      submit.disabled = submit.dataset.locked === "true";
    }
  });
  const section = h("section", {id: "login", class: "card", "aria-labelledby": "login-title"},
    h("h2", {id: "login-title"}, "Sign in"), formEl);
  return {section, focus: username.input};
}
