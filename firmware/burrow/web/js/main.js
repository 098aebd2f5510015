// Boot: sign in (or create the first account), then the live store and the router.
//
// The page's modules (all imports relative, so the files work under any URL prefix):
//   api.js     fetch, the error shape, CSRF, the cookie session and its renewal
//   live.js    one /ws/events stream, polling only while it is unhealthy, the latest-wins store
//   router.js  #/name → screens/name.js, loaded lazily, mount(el, ctx) / unmount()
//   dom.js     the element builder: text and attributes only, never markup
//   screens/   one module per screen; cards/ the parts the dashboard is made of

import * as api from "./api.js";
import {byId, show, text} from "./dom.js";
import {Live} from "./live.js";
import {Router} from "./router.js";

let me = null; // GET /api/auth/me while signed in
let live = null;
let router = null;
let signin = null; // the sign-in screen module while it is shown

// ---- the banners --------------------------------------------------------------------------------

/** Show an error as a human sentence; `labels` names the form's fields (API name → label). */
export function showError(err, labels) {
  const message = err instanceof api.ApiError ? api.humanMessage(err, labels) : String(err && err.message || err);
  show(text(byId("error"), message), true);
}

export function clearError() {
  show(text(byId("error"), ""), false);
}

export function notice(message) {
  show(text(byId("notice"), message || ""), !!message);
}

function showConnection(state) {
  document.documentElement.dataset.live = state.mode; // "live", "polling" or "connecting"
  const box = byId("connection");
  text(box, state.offline ? "Burrow is not answering. The page reconnects by itself when it is back." : "");
  show(box, state.offline);
}

// ---- signing in and out ---------------------------------------------------------------------------

async function showSignIn() {
  show(byId("app"), false);
  show(byId("who"), false);
  show(byId("nav"), false);
  let required = false;
  let lifetimes = {};
  try {
    const state = await api.get("/api/auth/setup");
    required = state.required === true;
    lifetimes = {remember: state.remember_seconds, session: state.session_seconds};
  } catch (e) {
    showError(e);
  }
  show(byId("loading"), false);
  const module = await import("./screens/signin.js");
  if (me) return; // signed in meanwhile
  signin = module;
  const el = byId("signin");
  el.replaceChildren();
  await module.mount(el, {api, setupRequired: required, lifetimes, showError, clearError, notice, signedIn: enter});
}

async function enter(user) {
  me = user;
  if (signin) {
    signin.unmount();
    signin = null;
  }
  byId("signin").replaceChildren();
  clearError();
  notice("");
  show(byId("loading"), false);
  text(byId("who-name"), `${me.username} (${me.can_write ? "admin" : "read-only"})`);
  show(byId("who"), true);
  show(byId("nav"), true);
  show(byId("read-only"), !me.can_write);
  show(byId("app"), true);
  live = new Live(api.request);
  live.subscribe("live", showConnection);
  showConnection(live.state);
  await live.start();
  const ctx = {api, live, me, canWrite: !!me.can_write, showError, clearError, notice};
  router = new Router(byId("screen"), ctx);
  await router.start();
}

function signedOut(message) {
  if (!me) return;
  me = null;
  api.stopRenewal();
  if (router) router.stop();
  if (live) live.stop();
  router = live = null;
  showConnection({mode: "connecting", offline: false});
  notice(message);
  showSignIn();
}

async function onSignOut() {
  await api.signOut();
  signedOut("Signed out.");
}

// ---- start -----------------------------------------------------------------------------------------

async function start() {
  show(byId("loading"), true);
  byId("sign-out").addEventListener("click", onSignOut);
  api.onSignedOut(signedOut);
  if (api.canRenew()) { // signed in before: renew, whatever the access token's age
    try {
      await api.renew();
    } catch (e) {
      if (e.status !== 401 && e.status !== 400) showError(e); // spent or expired: sign in again
    }
  }
  if (api.hasSession()) { // a session cookie from before a reload may still be valid
    try {
      await enter(await api.get("/api/auth/me"));
      return;
    } catch (e) {
      me = null;
      if (e.status !== 401) showError(e);
    }
  }
  await showSignIn();
}

start();
