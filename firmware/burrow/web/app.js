// Burrow's admin page: sign in, status, block lists, blocking pause (global and per group), the router preset.
//
// Plain script, no build step. Auth is the cookie session (POST /api/auth/login?cookie=true): the
// HttpOnly burrow_session cookie rides along by itself, and every state-changing request echoes
// the readable burrow_csrf cookie in X-CSRF-Token. No web storage API is used. The refresh
// token is an HttpOnly cookie sent only to /api/auth/refresh: an open page renews the short
// access token before it runs out, and a page opened again renews it on load (when the
// readable burrow_refresh_hint cookie says there is a refresh cookie to use).
//
// Changes made elsewhere (the API, the board's button, another phone) show up through the
// /ws/events stream when it is open, and through polling in any case. A block-list update's
// progress (download, compile, swap) comes only from the stream's lists.* events.
"use strict";

(function () {
  var POLL_MS = 5000; // blocking state, groups and the router preset
  var STATS_MS = 30000; // the 24 h figures move slowly
  var RECONNECT_MS = 10000; // wait before reopening a closed event stream
  var REFRESH_EARLY_S = 60; // renew the session this long before the access token expires
  var PAUSE_LABELS = [[300, "Pause 5 min"], [1800, "Pause 30 min"], [3600, "Pause 1 h"],
                      [0, "Pause until resumed"]];

  var me = null; // GET /api/auth/me while signed in
  var intervals = [];
  var refreshTimer = null;
  var socket = null;
  var reconnectTimer = null;
  var blocking = null; // {global: {enabled, until}, groups: {name: {enabled, until}}}; until in ms
  var refreshingBlocking = null;
  var blockingAgain = false;
  var groupRows = new Map(); // group name → {li, state, left, resume}
  var preset = null;
  var presetSeq = 0;
  var routerDirty = false; // the user typed in the router fields: polling must not overwrite them
  var listsSeq = 0;
  var listsBusy = false; // the progress line shows an update in progress (not its outcome)

  function $(id) { return document.getElementById(id); }

  // ---- talking to the API ------------------------------------------------------------------

  function ApiError(status, body) {
    body = body || {};
    this.status = status;
    this.error = body.error || "";
    this.details = Array.isArray(body.details) ? body.details : [];
    this.message = body.message || body.error || ("HTTP " + status);
  }

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      if (parts[i].indexOf(name + "=") === 0) return decodeURIComponent(parts[i].slice(name.length + 1));
    }
    return "";
  }

  function csrfToken() { return cookie("burrow_csrf"); }

  async function call(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") {
      var token = csrfToken();
      if (token) headers["X-CSRF-Token"] = token;
    }
    var res;
    try {
      res = await fetch(path, { method: method, headers: headers, credentials: "same-origin",
                                cache: "no-store",
                                body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, { message: "Burrow did not answer (" + e.message + ")" });
    }
    var text = await res.text();
    var data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = { message: text.slice(0, 200) }; }
    }
    if (!res.ok) {
      var err = new ApiError(res.status, data);
      if (res.status === 401 && me && path.indexOf("/api/auth/") !== 0) {
        signedOut("Your session has ended; sign in again.");
      }
      throw err;
    }
    return data;
  }

  // ---- messages ----------------------------------------------------------------------------

  function showError(err) {
    var box = $("error");
    var text = err && err.message ? err.message : String(err);
    if (err && err.status) text += " (" + err.status + (err.error ? " " + err.error : "") + ")";
    box.textContent = text;
    box.hidden = false;
  }

  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  function notice(text) {
    $("notice").textContent = text || "";
    $("notice").hidden = !text;
  }

  // ---- signing in and out ------------------------------------------------------------------

  async function showSignIn() {
    $("app").hidden = true;
    $("who").hidden = true;
    var required = false;
    try {
      required = (await call("GET", "/api/auth/setup")).required === true;
    } catch (e) {
      showError(e);
    }
    $("loading").hidden = true;
    $("setup").hidden = !required;
    $("login").hidden = required;
    (required ? $("setup-username") : $("login-username")).focus();
  }

  async function signIn(username, password, totp) {
    var body = { username: username, password: password };
    if (totp) body.totp = totp;
    var pair = await call("POST", "/api/auth/login?cookie=true", body);
    scheduleRefresh(pair.expires_in);
    me = await call("GET", "/api/auth/me");
    enter();
  }

  async function onLogin(ev) {
    ev.preventDefault();
    var form = ev.target;
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await signIn($("login-username").value.trim(), $("login-password").value, $("login-totp").value.trim());
      $("login-password").value = "";
      $("login-totp").value = "";
      $("totp-row").hidden = true;
    } catch (e) {
      if (e.error === "totp_required") {
        $("totp-row").hidden = false;
        $("login-totp").focus();
        notice("Enter the code from your authenticator app.");
      } else {
        showError(e);
      }
    } finally {
      button.disabled = false;
    }
  }

  async function onSetup(ev) {
    ev.preventDefault();
    var button = ev.target.querySelector("button[type=submit]");
    var username = $("setup-username").value.trim();
    var password = $("setup-password").value;
    button.disabled = true;
    try {
      await call("POST", "/api/auth/setup", { username: username, password: password });
      await signIn(username, password);
      $("setup-password").value = "";
    } catch (e) {
      showError(e);
    } finally {
      button.disabled = false;
    }
  }

  async function onSignOut() {
    try {
      await call("POST", "/api/auth/logout");
    } catch (e) {
      // Signed out here either way; the cookie expires by itself.
    }
    signedOut("Signed out.");
  }

  // A new access token (and refresh token) for the refresh cookie; the old one is spent.
  async function renewSession() {
    var pair = await call("POST", "/api/auth/refresh?cookie=true", {});
    scheduleRefresh(pair.expires_in);
  }

  function scheduleRefresh(expiresIn) {
    clearTimeout(refreshTimer);
    if (!(expiresIn > REFRESH_EARLY_S)) return;
    refreshTimer = setTimeout(async function () {
      try {
        await renewSession();
      } catch (e) {
        signedOut("Your session has ended; sign in again.");
      }
    }, (expiresIn - REFRESH_EARLY_S) * 1000);
  }

  function enter() {
    clearError();
    notice("");
    $("loading").hidden = true;
    $("setup").hidden = true;
    $("login").hidden = true;
    $("app").hidden = false;
    $("who").hidden = false;
    $("who-name").textContent = me.username + " (" + (me.can_write ? "admin" : "read-only") + ")";
    $("read-only").hidden = me.can_write;
    applyRole();
    stopTimers();
    refreshAll();
    intervals.push(setInterval(function () { if (!document.hidden) { refreshBlocking(); refreshPreset(); } }, POLL_MS));
    intervals.push(setInterval(function () { if (!document.hidden) { refreshStatus(); refreshLists(); } }, STATS_MS));
    intervals.push(setInterval(tick, 1000));
    openEvents();
  }

  function signedOut(message) {
    me = null;
    clearTimeout(refreshTimer);
    stopTimers();
    closeEvents();
    blocking = null;
    preset = null;
    notice(message);
    showSignIn();
  }

  function stopTimers() {
    intervals.forEach(clearInterval);
    intervals = [];
  }

  function canWrite() { return !!(me && me.can_write); }

  function applyRole() {
    document.querySelectorAll(".write").forEach(function (el) { el.disabled = !canWrite(); });
    renderBlocking();
    renderPreset();
  }

  function refreshAll() {
    refreshStatus();
    refreshLists();
    refreshBlocking();
    refreshPreset();
  }

  // ---- live events -------------------------------------------------------------------------

  function openEvents() {
    if (socket || !me || typeof WebSocket === "undefined") return;
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/events");
    socket = ws;
    ws.onmessage = function (msg) {
      var event;
      try { event = JSON.parse(msg.data); } catch (e) { return; }
      var type = (event && event.data && event.data.type) || "";
      if (type.indexOf("blocking.") === 0 || type.indexOf("group.") === 0) refreshBlocking();
      if (type.indexOf("forwarding.") === 0) refreshPreset();
      if (type.indexOf("lists.") === 0) onListsEvent(type.slice(6), event.data.data || {});
    };
    ws.onclose = function () {
      if (socket !== ws) return;
      socket = null;
      if (me) reconnectTimer = setTimeout(openEvents, RECONNECT_MS);
    };
  }

  function closeEvents() {
    clearTimeout(reconnectTimer);
    if (socket) {
      var ws = socket;
      socket = null;
      ws.close();
    }
  }

  // ---- status ------------------------------------------------------------------------------

  async function refreshStatus() {
    try {
      var both = await Promise.all([call("GET", "/api/stats?since=24h"), call("GET", "/api/health")]);
      var stats = both[0], health = both[1];
      $("stat-queries").textContent = Number(stats.total_queries).toLocaleString();
      $("stat-blocked").textContent = Number(stats.blocked_queries).toLocaleString();
      $("stat-rate").textContent = Number(stats.block_rate).toFixed(1) + " %";
      $("health").textContent = "Burrow " + health.version + ", up " + health.uptime;
    } catch (e) {
      if (me) showError(e);
    }
  }

  // ---- block lists -------------------------------------------------------------------------

  async function refreshLists() {
    if (!me) return;
    var seq = ++listsSeq;
    try {
      var answer = await call("GET", "/api/lists");
      if (seq !== listsSeq) return;
      var lists = answer.lists || [];
      var index = answer.index || {};
      var blockLists = lists.filter(function (l) { return l.kind === "block" && l.enabled; }).length;
      setText($("lists-domains"), Number(index.domains || 0).toLocaleString() + " domains from " +
              blockLists + (blockLists === 1 ? " block list" : " block lists"));
      setText($("lists-updated"), index.index_created
        ? "Index built " + new Date(index.index_created * 1000).toLocaleString() : "No index built yet.");
      var last = index.last_refresh;
      showListsFailure(last && last.status === "failed" ? last.error : "");
      if (index.running && !listsBusy) showListsProgress("Updating block lists…", true);
      else if (!index.running && listsBusy) showListsProgress("", false);
    } catch (e) {
      if (me) showError(e);
    }
  }

  function showListsProgress(text, busy) {
    listsBusy = busy;
    setText($("lists-progress"), text);
    $("lists-progress").hidden = !text;
  }

  function showListsFailure(error) {
    setText($("lists-failed"), error ? "The last update failed: " + error +
            ". The lists from before keep blocking." : "");
    $("lists-failed").hidden = !error;
  }

  function count(n) { return Number(n || 0).toLocaleString(); }

  // lists.* events from the list manager (filtering/manager.py): what an update is doing now.
  function onListsEvent(kind, d) {
    if (kind === "refresh_started") {
      showListsProgress("Updating block lists…", true);
    } else if (kind === "download_started") {
      showListsProgress("Downloading " + (d.name || "a list") + "…", true);
    } else if (kind === "compile_started") {
      showListsProgress("Compiling " + count(d.lists) + (d.lists === 1 ? " list…" : " lists…"), true);
    } else if (kind === "compile_progress") {
      if (d.phase === "list_started") showListsProgress("Compiling " + (d.name || "a list") + "…", true);
      else if (d.phase === "progress") showListsProgress("Compiling: " + count(d.rules) + " rules read…", true);
      else if (d.phase === "writing") showListsProgress("Writing the index: " + count(d.rules) + " rules…", true);
      else if (d.phase === "finished") showListsProgress("Index written: " + count(d.entries) + " entries…", true);
    } else if (kind === "index_swapped") {
      showListsProgress("New index live: " + count(d.entries) + " entries…", true);
    } else if (kind === "refresh_finished") {
      var text = d.status === "failed" ? "" : "Update finished: " + count(d.entries) + " domains" +
                 (typeof d.seconds === "number" ? " in " + d.seconds.toFixed(1) + " s." : ".");
      showListsProgress(text, false);
      showListsFailure(d.status === "failed" ? d.error || "unknown error" : "");
      refreshLists();
    }
  }

  async function onListsUpdate(ev) {
    var b = ev.target;
    if (!canWrite()) return;
    b.disabled = true;
    try {
      await call("POST", "/api/blocklist/reload");
      clearError();
    } catch (e) {
      showError(e);
    }
    b.disabled = !canWrite();
    refreshLists();
  }

  // ---- blocking pause ----------------------------------------------------------------------

  function refreshBlocking() {
    if (!me) return Promise.resolve();
    if (refreshingBlocking) { // one at a time (events come in bursts), but never miss a change
      blockingAgain = true; // made after the request in flight was sent
      return refreshingBlocking;
    }
    refreshingBlocking = Promise.all([call("GET", "/api/blocking"), call("GET", "/api/groups")])
      .then(function (both) {
        var state = both[0];
        var now = Date.now();
        blocking = { global: withDeadline(state, now), groups: {}, names: [] };
        Object.keys(state.groups || {}).forEach(function (name) {
          blocking.groups[name] = withDeadline(state.groups[name], now);
        });
        blocking.names = (both[1].groups || []).map(function (g) { return g.name; });
        renderBlocking();
      })
      .catch(function (e) { if (me) showError(e); })
      .finally(function () {
        refreshingBlocking = null;
        if (blockingAgain) {
          blockingAgain = false;
          return refreshBlocking();
        }
      });
    return refreshingBlocking;
  }

  function withDeadline(state, now) {
    var left = state.remaining_seconds;
    return { enabled: state.enabled !== false,
             until: left === null || left === undefined ? null : now + left * 1000 };
  }

  function formatLeft(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }

  function describe(state, now) {
    if (!state || state.enabled) return { text: "On", left: "" };
    if (state.until === null) return { text: "Paused", left: "until resumed" };
    return { text: "Paused", left: formatLeft(state.until - now) + " left" };
  }

  function renderBlocking() {
    var section = $("blocking");
    if (!blocking) return;
    var global = blocking.global;
    section.classList.toggle("paused", !global.enabled);
    section.querySelector(".actions [data-resume]").disabled = !canWrite() || global.enabled;
    var seen = new Set();
    blocking.names.forEach(function (name) {
      seen.add(name);
      var row = groupRows.get(name) || addGroupRow(name);
      var state = blocking.groups[name] || { enabled: true, until: null };
      row.li.classList.toggle("paused", !state.enabled);
      row.resume.disabled = !canWrite() || state.enabled;
      row.li.querySelectorAll("[data-pause]").forEach(function (b) { b.disabled = !canWrite(); });
    });
    groupRows.forEach(function (row, name) {
      if (!seen.has(name)) { row.li.remove(); groupRows.delete(name); }
    });
    tick();
  }

  function addGroupRow(name) {
    var li = document.createElement("li");
    li.dataset.name = name;
    var p = document.createElement("p");
    p.className = "state";
    var title = document.createElement("strong");
    title.textContent = name;
    var state = document.createElement("span");
    state.className = "group-state";
    var left = document.createElement("span");
    left.className = "left";
    p.append(title, " ", state, " ", left);
    var actions = document.createElement("div");
    actions.className = "actions";
    actions.dataset.group = name;
    PAUSE_LABELS.forEach(function (pair) {
      var b = button(pair[1], "write");
      b.dataset.pause = String(pair[0]);
      b.setAttribute("aria-label", pair[1] + " for group " + name);
      actions.append(b);
    });
    var resume = button("Resume", "write resume");
    resume.dataset.resume = "";
    resume.setAttribute("aria-label", "Resume blocking for group " + name);
    actions.append(resume);
    li.append(p, actions);
    $("groups").append(li); // the API's order (default first); a group made later goes last
    var row = { li: li, state: state, left: left, resume: resume };
    groupRows.set(name, row);
    return row;
  }

  function button(text, className) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = className;
    b.textContent = text;
    b.disabled = !canWrite();
    return b;
  }

  // Once a second: count the time left down, and ask again when a pause should have ended.
  function tick() {
    if (!blocking) return;
    var now = Date.now();
    var expired = false;
    var g = describe(blocking.global, now);
    setText($("blocking-state"), blocking.global.enabled ? "Blocking is on" : "Blocking is paused");
    setText($("blocking-left"), g.left);
    expired = expired || (blocking.global.until !== null && blocking.global.until <= now);
    groupRows.forEach(function (row, name) {
      var state = blocking.groups[name];
      var d = describe(state, now);
      setText(row.state, d.text);
      setText(row.left, d.left);
      expired = expired || (state && state.until !== null && state.until <= now);
    });
    if (expired) refreshBlocking();
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  async function onBlockingClick(ev) {
    var b = ev.target.closest("button[data-pause], button[data-resume]");
    if (!b || b.disabled || !canWrite()) return;
    var group = b.closest(".actions").dataset.group;
    var body;
    if (b.hasAttribute("data-resume")) {
      body = { enabled: true };
    } else {
      body = { enabled: false };
      var seconds = Number(b.dataset.pause);
      if (seconds > 0) body.duration = seconds;
    }
    if (group) body.group = group;
    b.disabled = true;
    try {
      await call("POST", "/api/blocking", body);
      clearError();
    } catch (e) {
      showError(e);
    }
    b.disabled = !canWrite();
    await refreshBlocking(); // renders, which also sets each Resume button from the new state
  }

  // ---- router preset -----------------------------------------------------------------------

  async function refreshPreset() {
    if (!me) return;
    var seq = ++presetSeq;
    try {
      var answer = await call("GET", "/api/conditionalforwarding/preset/router");
      if (seq !== presetSeq) return; // a newer answer (or a toggle) came first
      preset = answer;
      renderPreset();
    } catch (e) {
      if (me) showError(e);
    }
  }

  function renderPreset() {
    if (!preset) return;
    var on = preset.enabled === true;
    var sw = $("router-switch");
    sw.setAttribute("aria-checked", on ? "true" : "false");
    sw.disabled = !canWrite();
    $("router-on").textContent = on ? "On" : "Off";
    var ip = $("router-ip"), domain = $("router-domain");
    // While on, the fields show what is in use; turn it off to change them.
    ip.disabled = domain.disabled = !canWrite() || on;
    if (on || !routerDirty) {
      routerDirty = false;
      ip.value = preset.router || preset.suggested_router || "";
      domain.value = preset.router ? preset.domain : "lan";
    }
    var note = "";
    if (on) {
      note = (preset.domain ? "Names under ." + preset.domain + " and reverse" : "Reverse") +
             " lookups for " + preset.network + " go to " + preset.router + ".";
    } else if (preset.suggested_router) {
      note = "Your router appears to be " + preset.suggested_router + ".";
    }
    $("router-network").textContent = note;
  }

  function clearFieldErrors() {
    $("router-ip-error").textContent = "";
    $("router-domain-error").textContent = "";
  }

  async function onRouterSwitch() {
    if (!canWrite() || !preset) return;
    var sw = $("router-switch");
    var turnOn = sw.getAttribute("aria-checked") !== "true";
    clearFieldErrors();
    sw.disabled = true;
    try {
      var result;
      if (turnOn) {
        var body = { domain: $("router-domain").value.trim() };
        var router = $("router-ip").value.trim();
        if (router) body.router = router; // without it the API takes the default gateway
        result = await call("POST", "/api/conditionalforwarding/preset/router", body);
      } else {
        result = await call("DELETE", "/api/conditionalforwarding/preset/router");
      }
      clearError();
      routerDirty = false;
      presetSeq++; // a poll sent before the change must not undo it on screen
      preset = result.preset;
      if (turnOn && !preset.enabled) {
        notice("Saved, but conditional forwarding is switched off as a whole, so the router is not asked.");
      }
    } catch (e) {
      e.details.forEach(function (d) {
        var slot = d.field === "router" ? $("router-ip-error") : d.field === "domain" ? $("router-domain-error") : null;
        if (slot) slot.textContent = d.message;
      });
      showError(e);
    }
    renderPreset();
  }

  // ---- start -------------------------------------------------------------------------------

  async function start() {
    $("login-form").addEventListener("submit", onLogin);
    $("setup-form").addEventListener("submit", onSetup);
    $("sign-out").addEventListener("click", onSignOut);
    $("blocking").addEventListener("click", onBlockingClick);
    $("router-switch").addEventListener("click", onRouterSwitch);
    $("lists-update").addEventListener("click", onListsUpdate);
    ["router-ip", "router-domain"].forEach(function (id) {
      $(id).addEventListener("input", function () { routerDirty = true; });
    });
    document.addEventListener("visibilitychange", function () { if (!document.hidden && me) refreshAll(); });
    if (cookie("burrow_refresh_hint")) { // signed in before: renew, whatever the access token's age
      try {
        await renewSession();
      } catch (e) {
        if (e.status !== 401) showError(e); // 401: spent or expired (the API dropped the cookies)
      }
    }
    if (csrfToken()) { // a session cookie from before a reload may still be valid
      try {
        me = await call("GET", "/api/auth/me");
        enter();
        return;
      } catch (e) {
        me = null;
        if (e.status !== 401) showError(e);
      }
    }
    showSignIn();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
