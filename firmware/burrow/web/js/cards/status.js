// Status: the board's status LED mirrored as a dot with its meaning, the 24 h figures (queries,
// blocked, block rate, cache hit rate, average answer time), version and uptime, and what is
// wrong (the board's status reasons: failing upstreams, faults that need a person — the same
// reasons /readyz gives). All from GET /api/dashboard, kept live by ../live.js: the stream's
// stats.updated loads it again, status.changed puts the new status in without a request.

import {count, h, replace, show, text} from "../dom.js";

/** What the LED shows for each state (board/status.py PATTERNS), in words. */
export const LED_MEANINGS = {
  ready: ["green", "steady", "Working: answering and blocking."],
  booting: ["grey", "slow blink", "Starting up."],
  link_down: ["red", "slow blink", "No network: no cable, no carrier or no address."],
  no_upstream: ["red", "steady", "No upstream DNS server answers: only blocked and cached names work."],
  upstream_degraded: ["amber", "steady", "Some upstream DNS servers are failing; the others answer."],
  paused: ["blue", "steady", "Blocking is paused; names are answered as usual."],
  fault: ["red", "fast blink", "Something needs a person (see below)."],
  reset_armed: ["purple", "fast blink", "Factory reset armed: press the button again to confirm."],
};

export function ledMeaning(led) {
  return LED_MEANINGS[led] || ["grey", "unknown", `Status: ${led}.`];
}

/** "12.5 ms", "0.4 ms", "–" */
export function millis(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n)) return "–";
  return `${n >= 10 ? n.toFixed(0) : n.toFixed(1)} ms`;
}

export function percent(value) {
  return `${Number(value || 0).toFixed(1)} %`;
}

export function create(ctx) {
  const queries = h("dd", {id: "stat-queries"}, "–");
  const blocked = h("dd", {id: "stat-blocked"}, "–");
  const rate = h("dd", {id: "stat-rate"}, "–");
  const cacheRate = h("dd", {id: "stat-cache"}, "–");
  const avg = h("dd", {id: "stat-avg"}, "–");
  const dot = h("span", {id: "led-dot", class: "led", "data-led": "unknown", role: "img",
    "aria-label": "Status light: not known yet"});
  const ledText = h("span", {id: "led-meaning"}, "Checking the status…");
  const health = h("p", {class: "small", id: "health"}, "–");
  const state = h("p", {id: "health-state", class: "state-line", hidden: true});
  const problems = h("ul", {id: "health-problems", class: "problems", hidden: true});
  const el = h("section", {id: "status", class: "card", "aria-labelledby": "status-title"},
    h("p", {class: "led-row", id: "led"}, dot, ledText),
    h("h2", {id: "status-title"}, "Last 24 hours"),
    h("dl", {class: "figures"},
      h("div", h("dt", "Queries"), queries),
      h("div", h("dt", "Blocked"), blocked),
      h("div", h("dt", "Blocked %"), rate),
      h("div", h("dt", "From cache"), cacheRate),
      h("div", h("dt", "Average answer"), avg)),
    state, problems, health);
  let drawn = false;

  function render(d, error) {
    if (error && !d) {
      text(health, "The status could not be read.");
      return;
    }
    if (!d) return;
    const s = d.stats || {};
    text(queries, count(s.total_queries));
    text(blocked, count(s.blocked_queries));
    text(rate, percent(s.block_rate));
    text(cacheRate, percent(s.cache_hit_rate));
    text(avg, millis(s.avg_response_ms));
    text(health, `Burrow ${d.version}, up ${d.uptime}`);
    const status = d.status || {};
    const led = status.led || status.state || "unknown";
    const [colour, pattern, meaning] = ledMeaning(led);
    dot.dataset.led = led;
    dot.setAttribute("aria-label", `Status light: ${colour}, ${pattern}`);
    text(ledText, meaning);
    const wrong = whatIsWrong(d);
    replace(problems, wrong.map((line) => h("li", line)));
    show(problems, wrong.length > 0);
    text(state, wrong.length ? (wrong.length === 1 ? "Something needs attention:" : "Some things need attention:")
      : "Everything is working.");
    state.classList.toggle("bad", wrong.length > 0);
    show(state, true);
    if (!drawn) {
      drawn = true;
      // The first figures on screen: what scripts/bench-page measures (docs/benchmarks.md).
      if (!performance.getEntriesByName("dashboard-figures").length) performance.mark("dashboard-figures");
    }
  }

  const release = ctx.live.want("dashboard");
  const unsubscribe = ctx.live.subscribe("dashboard", render);
  return {el, destroy() { unsubscribe(); release(); }};
}

/** The board's status reasons (not the pause: its card shows that), then each failing upstream. */
export function whatIsWrong(d) {
  const out = [];
  const status = d.status || {};
  for (const reason of status.reasons || []) {
    if (/^blocking paused/.test(reason)) continue;
    out.push(reason.charAt(0).toUpperCase() + reason.slice(1) + ".");
  }
  for (const u of d.upstreams || []) {
    if (u.healthy === false) {
      out.push(`Upstream ${u.address} is failing${u.last_error ? `: ${u.last_error}` : ""}.`);
    }
  }
  return out;
}
