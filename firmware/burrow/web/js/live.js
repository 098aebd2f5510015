// Live state: one WebSocket per page to /ws/events, polling only while it is not healthy, and
// a latest-wins store that screens subscribe to.
//
// A resource is one GET endpoint (RESOURCES below) kept in the store under its key while some
// screen wants it (want(key) returns the release function). It is loaded when first wanted, and
// then again only when something says it changed:
//   - an event on the stream whose type starts with one of its prefixes (a resource may instead
//     take the new value from the event itself: `apply`), or
//   - while the stream is not healthy, every `pollMs` (the fallback), and
//   - every `everyMs` in any case, for figures no event announces (the 24 h window sliding on,
//     the board's temperature).
// A resource with `throttleMs` loads at most that often for events: an event sooner after its
// last load is answered by one load when the time is up (the stream's stats.updated arrives
// every 2 s while queries flow; the page need not ask that often).
// The stream is healthy when it said hello and has sent something (an event or its heartbeat
// ping) within three heartbeats. Loads of one key never overlap: a change announced during a
// load starts one more load after it. An answer is dropped when the key was set (from an event)
// after its request left: the newest state wins, and one more load follows (an event may patch
// only part of a resource, as status.changed does the dashboard's; the rest must not stay old).
//
// The socket reconnects by itself after a close, with a backoff (1 s doubling to 30 s); on each
// open every loaded resource is loaded again (what changed while it was closed).

const HELLO_WAIT_MS = 5000; // an open stream that says nothing this long is not trusted
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const TICK_MS = 1000;
const START_WAIT_MS = 1500; // start() waits at most this long for the socket to open
const DEFAULT_HEARTBEAT_S = 20;

/** The endpoints the page keeps live, by key. */
export const RESOURCES = {
  dashboard: {path: "/api/dashboard", events: ["system.", "settings.", "config.", "stats.", "status."],
              pollMs: 30000, everyMs: 60000, throttleMs: 5000, apply: applyStatusEvent},
  // The chart's two ranges (./cards/activity.js): about 48 and 42 points. No everyMs: while the
  // stream is healthy only stats.updated (queries counted) loads them again.
  series24h: {path: "/api/stats/timeseries?since=24h&step=30m", events: ["stats."], pollMs: 60000,
              throttleMs: 15000},
  series7d: {path: "/api/stats/timeseries?since=7d&step=4h", events: ["stats."], pollMs: 300000,
             throttleMs: 60000},
  // `from: [key, field]`: first filled from that resource's answer when it is loading anyway (the
  // dashboard's one GET /api/dashboard carries these), loaded on its own otherwise or later.
  blocking: {path: "/api/blocking", events: ["blocking."], pollMs: 5000, apply: applyBlockingEvent,
             from: ["dashboard", "blocking"]},
  groups: {path: "/api/groups", events: ["group.", "client."], pollMs: 5000, // counts move with clients
           from: ["dashboard", "groups"]},
  clients: {path: "/api/clients", events: ["client.", "group."], pollMs: 5000},
  policies: {path: "/api/policies", events: ["policy."], pollMs: 10000},
  policySummaries: {path: "/api/policies/summaries", events: ["policy."], pollMs: 10000},
  lists: {path: "/api/lists", events: ["list.", "blocklist.", "lists.refresh_finished", "lists.index_swapped",
                                       "lists.index_loaded", "lists.download_finished"],
          pollMs: 30000, from: ["dashboard", "lists"]},
  whitelist: {path: "/api/whitelist", events: ["whitelist."], pollMs: 30000},
  denylist: {path: "/api/denylist", events: ["denylist."], pollMs: 30000},
  threatFeeds: {path: "/api/threat-feeds", events: ["threat_feed.", "list.", "lists.refresh_finished",
                                                    "lists.index_swapped", "lists.download_finished"], pollMs: 30000},
  rpz: {path: "/api/rpz", events: ["rpz.", "list.", "lists.refresh_finished", "lists.index_swapped"], pollMs: 30000},
  routerPreset: {path: "/api/conditionalforwarding/preset/router", events: ["forwarding."], pollMs: 5000,
                 from: ["dashboard", "router_preset"]},
  // the local records (zone "local" of the zone store) one per row, with the ids that edit them
  localRecords: {path: "/api/dns-records?zone=local", events: ["localrecord.", "dns_record.", "zone."],
                 pollMs: 10000},
  zones: {path: "/api/zones", events: ["zone.", "dns_record.", "localrecord."], pollMs: 10000},
  forwarding: {path: "/api/conditionalforwarding", events: ["forwarding."], pollMs: 10000},
  // The system screen: the status changes (status.changed) and anything else systemwide.
  system: {path: "/api/system", events: ["system.", "status.", "fault.", "config."], pollMs: 10000, everyMs: 15000},
};

// The board's status LED changed (live-only "status.changed", data {state, reasons, led}): the
// new status goes into the resource without a request; other events load it again.
function applyStatusEvent(event, current) {
  if (event.type !== "status.changed" || !current) return undefined;
  const d = event.data || {};
  if (typeof d.state !== "string") return undefined;
  return {...current, status: {state: d.state, reasons: Array.isArray(d.reasons) ? d.reasons : [], led: d.led || d.state}};
}

// A pause or resume made through the API carries the new state in its event (data.after): no
// request is needed. Anything else (the board's button) makes the page ask again.
function applyBlockingEvent(event, current) {
  const d = event.data || {};
  const after = d.after;
  if (!after || typeof after !== "object" || typeof after.enabled !== "boolean") return undefined;
  if (d.group === null || d.group === undefined) return after;
  if (!current) return undefined;
  const groups = {...(current.groups || {})};
  if (after.enabled) delete groups[d.group];
  else groups[d.group] = {enabled: false, paused_until: after.paused_until, remaining_seconds: after.remaining_seconds};
  return {...current, groups};
}

export class Live {
  constructor(request, resources = RESOURCES) {
    this.request = request;
    this.resources = resources;
    this.values = new Map(); // key → {value, error, version, received (ms)}
    this.subscribers = new Map(); // key → Set(fn)
    this.wanted = new Map(); // key → number of screens wanting it
    this.loading = new Map(); // key → Promise of the load in flight
    this.again = new Set(); // keys to load once more after the load in flight
    this.lastStart = new Map(); // key → when its last load started (ms)
    this.stale = new Set(); // keys loaded once, changed (or maybe changed) while no screen wanted them
    this.deferred = new Map(); // key → timer of a throttled load
    this.seeding = new Set(); // keys waiting for the load of their `from` resource to fill them
    this.listeners = []; // [prefix, fn] for raw events
    this.socket = null;
    this.healthy = false;
    this.helloAt = 0;
    this.lastMessage = 0;
    this.heartbeatMs = DEFAULT_HEARTBEAT_S * 1000;
    this.attempts = 0;
    this.reconnectTimer = null;
    this.tickTimer = null;
    this.running = false;
    this.stopped = false; // stop() was called: no load starts any more
    this.state = {mode: "connecting", offline: false};
    this.onVisible = () => { if (!document.hidden && this.running) this.tick(); };
  }

  // ---- the store ------------------------------------------------------------------------------

  get(key) {
    const v = this.values.get(key);
    return v ? v.value : undefined;
  }

  set(key, value, error = null) {
    const old = this.values.get(key);
    const entry = {value: error ? old && old.value : value, error, version: (old ? old.version : 0) + 1,
                   received: Date.now()};
    this.values.set(key, entry);
    for (const fn of this.subscribers.get(key) || []) fn(entry.value, error, entry.received);
  }

  /** fn(value, error, receivedAt) now (if there is a value) and on every change; returns unsubscribe. */
  subscribe(key, fn) {
    if (!this.subscribers.has(key)) this.subscribers.set(key, new Set());
    this.subscribers.get(key).add(fn);
    const v = this.values.get(key);
    if (v) fn(v.value, v.error, v.received);
    return () => this.subscribers.get(key).delete(fn);
  }

  /** Keep `key` loaded and live while wanted; returns the release function. */
  want(key) {
    if (!this.resources[key]) throw new Error(`live: no resource ${key}`);
    this.wanted.set(key, (this.wanted.get(key) || 0) + 1);
    // A value kept from an earlier screen is shown at once, and asked for again when an event
    // announced a change meanwhile (nothing listened for it then) or no stream was there to say.
    const stale = this.stale.delete(key) || !this.healthy;
    const from = this.resources[key].from;
    if (!this.values.has(key) && from && this.loading.has(from[0])) {
      this.seeding.add(key); // the answer on its way carries it (see seedFrom)
    } else if ((!this.values.has(key) || stale) && !this.loading.has(key)) {
      this.refresh(key);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = this.wanted.get(key) - 1;
      if (n > 0) this.wanted.set(key, n); else this.wanted.delete(key);
    };
  }

  /** Raw events whose type starts with `prefix` (for example "lists."); returns unsubscribe. */
  on(prefix, fn) {
    const pair = [prefix, fn];
    this.listeners.push(pair);
    return () => { this.listeners = this.listeners.filter((p) => p !== pair); };
  }

  /** Load `key` now (or once more after the load in flight); resolves when the store has it. */
  refresh(key) {
    if (this.loading.has(key)) {
      this.again.add(key);
      return this.loading.get(key);
    }
    const def = this.resources[key];
    const started = Date.now();
    const version = this.values.has(key) ? this.values.get(key).version : 0;
    this.lastStart.set(key, started);
    const load = this.request("GET", def.path)
      .then((value) => {
        const now = this.values.get(key);
        if (!now || now.version === version) this.set(key, value);
        else this.again.add(key); // an event set it meanwhile: this answer may be older, the next is not
        this.seedFrom(key, value);
        this.setOffline(false);
      })
      .catch((error) => {
        if (!this.running && error.status === 401) return;
        if (error.status === 0) this.setOffline(true);
        this.set(key, undefined, error);
      })
      .finally(() => {
        this.loading.delete(key);
        this.seedFrom(key, undefined); // what its answer did not fill loads on its own
        if (this.again.delete(key) && !this.stopped) this.refresh(key);
      });
    this.loading.set(key, load);
    return load;
  }

  /** Fill the keys waiting for `source`'s answer from its fields; with no value (a failed load,
   * or a field the answer lacks) they are loaded on their own. */
  seedFrom(source, value) {
    for (const key of [...this.seeding]) {
      const [from, field] = this.resources[key].from;
      if (from !== source) continue;
      this.seeding.delete(key);
      if (value && value[field] !== undefined && !this.values.has(key)) this.set(key, value[field]);
      else if (!this.values.has(key) && this.wanted.has(key) && !this.stopped) this.refresh(key);
    }
  }

  /** Load `key` for an event: now, or once its throttleMs since the last load has passed. */
  refreshSoon(key) {
    const def = this.resources[key];
    const wait = def.throttleMs ? (this.lastStart.get(key) || 0) + def.throttleMs - Date.now() : 0;
    if (wait <= 0) {
      this.refresh(key);
    } else if (!this.deferred.has(key)) {
      this.deferred.set(key, setTimeout(() => {
        this.deferred.delete(key);
        if (!this.stopped && this.wanted.has(key)) this.refresh(key);
      }, wait));
    }
  }

  // ---- the connection -------------------------------------------------------------------------

  /** Open the stream and start the clock; resolves once the socket opened (or soon anyway). */
  start() {
    if (this.running) return Promise.resolve();
    this.running = true;
    this.tickTimer = setInterval(() => this.tick(), TICK_MS);
    document.addEventListener("visibilitychange", this.onVisible);
    const opened = new Promise((resolve) => {
      this.whenOpen = resolve;
      setTimeout(resolve, START_WAIT_MS);
    });
    this.connect();
    return opened;
  }

  /** Close everything and forget every value (signing out). */
  stop() {
    this.running = false;
    this.stopped = true;
    clearInterval(this.tickTimer);
    clearTimeout(this.reconnectTimer);
    for (const timer of this.deferred.values()) clearTimeout(timer);
    this.deferred.clear();
    this.seeding.clear();
    document.removeEventListener("visibilitychange", this.onVisible);
    if (this.socket) {
      const ws = this.socket;
      this.socket = null;
      ws.close();
    }
    this.healthy = false;
    this.values.clear();
    this.wanted.clear();
    this.again.clear();
    this.listeners = [];
    this.setState({mode: "connecting", offline: false});
  }

  connect() {
    if (!this.running || this.socket || typeof WebSocket === "undefined") return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/events");
    this.socket = ws;
    this.helloAt = 0;
    const openedAt = Date.now();
    this.openedAt = openedAt;
    ws.onopen = () => {
      if (this.socket !== ws) return;
      if (this.whenOpen) { this.whenOpen(); this.whenOpen = null; }
      // Anything loaded before this stream subscribed may have changed unseen: load it again.
      for (const key of this.wanted.keys()) {
        if ((this.lastStart.get(key) || 0) < openedAt) this.refresh(key);
      }
      this.markUnwantedStale();
    };
    ws.onmessage = (msg) => {
      if (this.socket !== ws) return;
      let m;
      try { m = JSON.parse(msg.data); } catch { return; }
      this.lastMessage = Date.now();
      if (m && m.type === "hello") {
        this.helloAt = this.lastMessage;
        this.heartbeatMs = (Number(m.heartbeat) || DEFAULT_HEARTBEAT_S) * 1000;
        this.attempts = 0;
      } else if (m && m.type === "lost") {
        for (const key of this.wanted.keys()) this.refresh(key); // events were dropped for us
        this.markUnwantedStale();
      } else if (m && m.type === "event" && m.data && typeof m.data.type === "string") {
        this.dispatch(m.data);
      }
      this.checkHealth();
    };
    ws.onclose = () => {
      if (this.whenOpen) { this.whenOpen(); this.whenOpen = null; }
      if (this.socket !== ws) return;
      this.socket = null;
      this.checkHealth();
      if (!this.running) return;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempts);
      this.attempts += 1;
      this.reconnectTimer = setTimeout(() => this.connect(), delay * (0.75 + Math.random() / 2));
    };
  }

  markUnwantedStale() {
    for (const key of this.values.keys()) if (!this.wanted.has(key)) this.stale.add(key);
  }

  dispatch(event) {
    for (const [prefix, fn] of this.listeners) {
      if (event.type.startsWith(prefix)) fn(event);
    }
    for (const key of this.values.keys()) {
      const def = this.resources[key];
      if (def && !this.wanted.has(key) && def.events.some((p) => event.type.startsWith(p))) this.stale.add(key);
    }
    for (const key of this.wanted.keys()) {
      const def = this.resources[key];
      if (!def.events.some((p) => event.type.startsWith(p))) continue;
      const value = def.apply ? def.apply(event, this.get(key)) : undefined;
      if (value !== undefined) this.set(key, value);
      else this.refreshSoon(key);
    }
  }

  checkHealth() {
    const now = Date.now();
    const open = !!this.socket && this.socket.readyState === WebSocket.OPEN;
    const healthy = open && this.helloAt > 0 && now - this.lastMessage < 3 * this.heartbeatMs;
    if (open && this.helloAt > 0 && !healthy) {
      this.socket.close(); // silent too long: a dead connection; onclose reconnects
    }
    if (healthy !== this.healthy) {
      this.healthy = healthy;
    }
    const connecting = !healthy && open && !this.helloAt && now - this.openedAt < HELLO_WAIT_MS;
    this.setState({mode: healthy ? "live" : connecting ? "connecting" : "polling"});
  }

  setOffline(offline) {
    if (offline !== this.state.offline) this.setState({offline});
  }

  setState(change) {
    const next = {...this.state, ...change};
    if (next.mode === this.state.mode && next.offline === this.state.offline) return;
    this.state = next;
    for (const fn of this.subscribers.get("live") || []) fn(next);
  }

  /** Once a second: the stream's health, the fallback polls and the slow refreshes. */
  tick() {
    this.checkHealth();
    if (document.hidden) return;
    const now = Date.now();
    for (const key of this.wanted.keys()) {
      const def = this.resources[key];
      const last = this.lastStart.get(key) || 0;
      const due = (!this.healthy && def.pollMs && now - last >= def.pollMs)
        || (def.everyMs && now - last >= def.everyMs);
      if (due && !this.loading.has(key)) this.refresh(key);
    }
  }
}
