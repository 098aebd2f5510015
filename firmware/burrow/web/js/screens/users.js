// Users and API tokens. Everyone: their own password (POST /api/auth/password), their own
// two-factor sign-in (/api/auth/2fa/enrol|confirm|disable) and their own API tokens
// (/api/tokens; a new token is shown once, with a copy button). Admins also: every account
// (/api/users: add, change role, disable, delete). A viewer gets no control of the users part.
//
// Confirmation happens on the page (confirm_inline.js), never in a browser dialog.

import {h, replace, text} from "../dom.js";
import {confirmInline} from "../confirm_inline.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";

let stopped = false;

export async function mount(el, ctx) {
  ctx.notice(""); // a message from another screen is not about this one
  ctx.clearError();
  stopped = false;
  el.append(h("h2", {class: "screen-title"}, "Users and API tokens"));
  let me = ctx.me;
  try {
    me = await ctx.api.get("/api/auth/me");
  } catch (e) {
    ctx.showError(e);
  }
  if (stopped) return;
  const passwordSession = me.via !== "token";
  el.append(accountCard(ctx, me, passwordSession), twoFactorCard(ctx, me, passwordSession), tokensCard(ctx, me));
  if (ctx.canWrite) el.append(usersCard(ctx, me));
}

export function unmount() {
  stopped = true;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "never";
}

/** A copy button for a secret shown once; falls back to selecting the text. */
function copyButton(id, value, target) {
  const said = h("span", {class: "small", role: "status"});
  const b = h("button", {type: "button", id, class: "secondary"}, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      text(said, " Copied.");
    } catch {
      const range = document.createRange();
      range.selectNodeContents(target);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      text(said, " Selected: copy it with your phone's copy command.");
    }
  });
  return h("span", {class: "copy"}, b, said);
}

function submitting(form, button, fields, ctx, action) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    clearFieldErrors(fields);
    ctx.clearError();
    try {
      await action();
    } catch (e) {
      markFieldErrors(e, fields);
      ctx.showError(e, labels(fields));
    } finally {
      button.disabled = false;
    }
  });
}

// ---- own account: password ----------------------------------------------------------------

function accountCard(ctx, me, passwordSession) {
  const card = h("section", {class: "card", id: "account", "aria-labelledby": "account-title"},
    h("h3", {id: "account-title", class: "card-title"}, "Your account"),
    h("p", `Signed in as `, h("strong", me.username), ` (${me.role === "admin" ? "admin" : "read-only"}).`));
  if (!passwordSession) {
    card.append(h("p", {class: "small"}, "Signed in with an API token: sign in with your password to change it."));
    return card;
  }
  const current = field("pw-current", "Current password", "current_password",
    {type: "password", autocomplete: "current-password", required: true});
  const next = field("pw-new", "New password", "new_password", {type: "password", autocomplete: "new-password",
    required: true}, "At least 10 characters; under 14, mix letters, digits or symbols.");
  const fields = [current, next];
  const save = h("button", {type: "submit", id: "pw-save"}, "Change password");
  const form = h("form", {novalidate: true, id: "password-form", "aria-label": "Change your password"},
    current.wrap, next.wrap, save);
  submitting(form, save, fields, ctx, async () => {
    await ctx.api.post("/api/auth/password", {current_password: current.input.value, new_password: next.input.value});
    current.input.value = next.input.value = "";
    // The API signed every session of this account out, this one included.
    ctx.api.endSession("Password changed. Sign in with the new password.");
  });
  card.append(h("h4", "Change your password"),
    h("p", {class: "small"}, "Every device signed in to this account is signed out; API tokens keep working."), form);
  return card;
}

// ---- own account: two-factor ------------------------------------------------------------------

function twoFactorCard(ctx, me, passwordSession) {
  const body = h("div");
  const card = h("section", {class: "card", id: "twofa", "aria-labelledby": "twofa-title"},
    h("h3", {id: "twofa-title", class: "card-title"}, "Two-factor sign-in"), body);
  if (!passwordSession) {
    body.append(h("p", {class: "small"}, "Signed in with an API token: two-factor needs a password sign-in."));
    return card;
  }
  function render(enabled, left) {
    replace(body, h("p", {class: "state-line", id: "twofa-state"}, enabled ? "On: signing in asks for a code." : "Off."));
    if (enabled) {
      if (typeof left === "number") body.append(h("p", {class: "small"}, `${left} recovery codes left.`));
      body.append(disableForm());
    } else {
      const start = h("button", {type: "button", id: "twofa-start"}, "Set up two-factor sign-in");
      start.addEventListener("click", () => enrol(start));
      body.append(h("p", {class: "small"}, "With it on, signing in also needs the 6-digit code from an " +
        "authenticator app on your phone."), h("div", {class: "actions"}, start));
    }
  }
  async function enrol(button) {
    button.disabled = true;
    try {
      const e = await ctx.api.post("/api/auth/2fa/enrol");
      ctx.clearError();
      const secret = h("code", {id: "twofa-secret", class: "secret"}, e.secret);
      const code = field("twofa-code", "Code from the app", "code", {inputmode: "numeric", autocomplete: "one-time-code",
        required: true});
      const confirm = h("button", {type: "submit", id: "twofa-confirm"}, "Turn on two-factor sign-in");
      const form = h("form", {novalidate: true, id: "twofa-form", "aria-label": "Confirm two-factor sign-in"},
        code.wrap, confirm);
      submitting(form, confirm, [code], ctx, async () => {
        const answer = await ctx.api.post("/api/auth/2fa/confirm", {code: code.input.value.trim()});
        showRecovery(answer.recovery_codes || []);
      });
      replace(body, h("p", "In your authenticator app, add an account with this key (type it, or copy it):"),
        h("p", secret, " ", copyButton("twofa-copy", e.secret, secret)),
        h("p", {class: "small"}, "Account name: ", h("code", {class: "secret"}, e.provisioning_uri)),
        h("p", "Then type the 6-digit code the app shows."), form);
      code.input.focus();
    } catch (err) {
      ctx.showError(err);
      button.disabled = false;
    }
  }
  function showRecovery(codes) {
    const list = h("pre", {id: "recovery-codes", class: "secret"}, codes.join("\n"));
    const done = h("button", {type: "button", id: "recovery-done"}, "I have kept them");
    done.addEventListener("click", () => render(true, codes.length));
    replace(body, h("p", {class: "state-line"}, "Two-factor sign-in is on."),
      h("p", "Keep these recovery codes somewhere safe. Each one signs you in once instead of a code, " +
        "if your phone is lost. They are shown only now."), list, h("p", copyButton("recovery-copy", codes.join("\n"), list)),
      h("div", {class: "actions"}, done));
    ctx.notice("Two-factor sign-in is on.");
  }
  function disableForm() {
    const proof = field("twofa-off", "Password or current code", "code_or_password",
      {type: "password", autocomplete: "current-password", required: true});
    const off = h("button", {type: "submit", id: "twofa-disable"}, "Turn off two-factor sign-in");
    const form = h("form", {novalidate: true, id: "twofa-off-form", "aria-label": "Turn off two-factor sign-in"},
      proof.wrap, off);
    submitting(form, off, [proof], ctx, async () => {
      await ctx.api.post("/api/auth/2fa/disable", {code_or_password: proof.input.value});
      ctx.notice("Two-factor sign-in is off.");
      render(false);
    });
    return form;
  }
  render(!!me.totp_enabled, me.recovery_codes_left);
  return card;
}

// ---- own API tokens -------------------------------------------------------------------------

function tokensCard(ctx, me) {
  const list = h("ul", {class: "rows", id: "token-list"});
  const fresh = h("div", {id: "token-new", "aria-live": "polite"});
  const card = h("section", {class: "card", id: "tokens", "aria-labelledby": "tokens-title"},
    h("h3", {id: "tokens-title", class: "card-title"}, "Your API tokens"),
    h("p", {class: "small"}, "For scripts and apps: send it as ", h("code", "Authorization: Bearer brw_…"), "."),
    fresh, list);

  async function load() {
    try {
      const answer = await ctx.api.get("/api/tokens");
      if (stopped) return;
      const tokens = answer.tokens || [];
      replace(list, tokens.length ? tokens.map(row) : h("li", {class: "small"}, "No API tokens yet."));
    } catch (e) {
      replace(list, h("li", {class: "error"}, "The tokens could not be read."));
      ctx.showError(e);
    }
  }
  function row(t) {
    const actions = h("div", {class: "actions"});
    if (me.can_write || me.scope !== "read") {
      const revoke = h("button", {type: "button", class: "secondary", "aria-label": `Revoke token ${t.name}`}, "Revoke");
      revoke.addEventListener("click", () => confirmInline(actions, `Revoke ${t.name}? Whatever uses it stops working.`,
        "Revoke it", async () => {
          try {
            await ctx.api.del(`/api/tokens/${t.id}`);
          } catch (e) {
            ctx.showError(e);
            throw e;
          }
          ctx.clearError();
          ctx.notice(`Token ${t.name} revoked.`);
          load();
        }));
      actions.append(revoke);
    }
    return h("li", {"data-token": t.id}, h("strong", t.name), " ",
      h("span", {class: "pill"}, t.scope === "admin" ? "can change things" : "read only"),
      h("p", {class: "small"}, `Starts ${t.prefix}… · made ${when(t.created_at)} · last used ${when(t.last_used_at)}`),
      actions);
  }

  if (me.scope !== "read") {
    const name = field("token-name", "Token name", "name", {required: true, maxlength: "64", autocomplete: "off"},
      "What it is for, e.g. home-assistant.");
    const scope = h("select", {id: "token-scope", name: "scope"},
      h("option", {value: "read"}, "Read only"), me.can_write ? h("option", {value: "admin"}, "Can change things (admin)") : null);
    const scopeField = {wrap: h("div", {class: "field"}, h("label", {for: "token-scope"}, "What it may do"), scope),
      input: scope, error: h("small", {class: "field-error"}), name: "scope", label: "What it may do"};
    scopeField.wrap.append(scopeField.error);
    const create = h("button", {type: "submit", id: "token-create"}, "Create token");
    const form = h("form", {novalidate: true, id: "token-form", "aria-label": "Create an API token"},
      name.wrap, scopeField.wrap, create);
    submitting(form, create, [name, scopeField], ctx, async () => {
      const t = await ctx.api.post("/api/tokens", {name: name.input.value.trim(), scope: scope.value});
      name.input.value = "";
      const secret = h("code", {id: "token-secret", class: "secret"}, t.token);
      const gone = h("button", {type: "button", id: "token-hide", class: "secondary"}, "Done");
      gone.addEventListener("click", () => fresh.replaceChildren());
      replace(fresh, h("div", {class: "once", role: "status"},
        h("p", h("strong", `New token ${t.name}: `), "copy it now. It is shown only this once."),
        h("p", secret), h("div", {class: "actions"}, copyButton("token-copy", t.token, secret), gone)));
      load();
    });
    card.append(h("h4", "New token"), form);
  } else {
    card.append(h("p", {class: "small"}, "On this page, API tokens are made and revoked by an admin account."));
  }
  load();
  return card;
}

// ---- every account (admin) -------------------------------------------------------------------

function usersCard(ctx, me) {
  const list = h("ul", {class: "rows", id: "user-list"});
  const card = h("section", {class: "card", id: "users", "aria-labelledby": "users-title"},
    h("h3", {id: "users-title", class: "card-title"}, "Accounts"), list);

  async function load() {
    try {
      const answer = await ctx.api.get("/api/users");
      if (stopped) return;
      replace(list, (answer.users || []).map(row));
    } catch (e) {
      replace(list, h("li", {class: "error"}, "The accounts could not be read."));
      ctx.showError(e);
    }
  }
  async function change(u, body, done) {
    try {
      await ctx.api.request("PUT", `/api/users/${u.id}`, body);
      ctx.clearError();
      ctx.notice(done);
      load();
    } catch (e) {
      ctx.showError(e);
    }
  }
  function row(u) {
    const self = u.id === me.id;
    const role = h("select", {id: `user-role-${u.id}`, "aria-label": `Role of ${u.username}`},
      h("option", {value: "viewer", selected: u.role === "viewer"}, "Read-only"),
      h("option", {value: "admin", selected: u.role === "admin"}, "Admin"));
    role.addEventListener("change", () => change(u, {role: role.value}, `${u.username} is now ${role.value === "admin" ? "an admin" : "read-only"}.`));
    const actions = h("div", {class: "actions"});
    const toggle = h("button", {type: "button", class: "secondary", "aria-label": `${u.disabled ? "Enable" : "Disable"} ${u.username}`},
      u.disabled ? "Enable" : "Disable");
    toggle.addEventListener("click", () => change(u, {disabled: !u.disabled},
      `${u.username} is ${u.disabled ? "enabled" : "disabled"}.`));
    const remove = h("button", {type: "button", class: "secondary", "aria-label": `Delete ${u.username}`}, "Delete");
    remove.addEventListener("click", () => confirmInline(actions, `Delete the account ${u.username}?`,
      "Delete it", async () => {
        try {
          await ctx.api.del(`/api/users/${u.id}`);
        } catch (e) {
          ctx.showError(e);
          throw e;
        }
        ctx.clearError();
        ctx.notice(`Account ${u.username} deleted.`);
        load();
      }));
    actions.append(toggle, remove);
    return h("li", {"data-user": u.username},
      h("strong", u.username), self ? " (you)" : "", u.disabled ? h("span", {class: "pill"}, "disabled") : null,
      u.totp_enabled ? h("span", {class: "pill"}, "2FA") : null,
      h("p", {class: "small"}, `Last sign-in ${when(u.last_login_at)}`),
      h("div", {class: "field"}, h("label", {for: `user-role-${u.id}`}, "Role"), role), actions);
  }

  const username = field("user-name", "User name", "username", {required: true, maxlength: "64", autocomplete: "off"});
  const password = field("user-password", "Password", "password", {type: "password", autocomplete: "new-password",
    required: true}, "At least 10 characters; under 14, mix letters, digits or symbols.");
  const role = h("select", {id: "user-new-role", name: "role"},
    h("option", {value: "viewer"}, "Read-only"), h("option", {value: "admin"}, "Admin"));
  const roleField = {wrap: h("div", {class: "field"}, h("label", {for: "user-new-role"}, "Role"), role),
    input: role, error: h("small", {class: "field-error"}), name: "role", label: "Role"};
  roleField.wrap.append(roleField.error);
  const add = h("button", {type: "submit", id: "user-add"}, "Add account");
  const form = h("form", {novalidate: true, id: "user-form", "aria-label": "Add an account"},
    username.wrap, password.wrap, roleField.wrap, add);
  submitting(form, add, [username, password, roleField], ctx, async () => {
    const u = await ctx.api.post("/api/users", {username: username.input.value.trim(),
      password: password.input.value, role: role.value});
    username.input.value = password.input.value = "";
    ctx.notice(`Account ${u.username} added.`);
    load();
  });
  card.append(h("h4", "Add an account"), form);
  load();
  return card;
}
