// Block lists: how many domains from how many lists, each list's size and freshness, lists
// whose last update failed, an empty box's way forward, and an update's live progress (the
// lists.* events on /ws/events). The lists screen shows it too (opts.embedded: the empty box
// then points at the add form right below it). "Update lists now" is an admin's: a viewer has none.

import {count, h, plural, replace, show, text} from "../dom.js";

export function create(ctx, opts = {}) {
  const domains = h("span", {id: "lists-domains"}, "–");
  const updated = h("p", {class: "small", id: "lists-updated"});
  const empty = h("div", {id: "lists-empty", class: "empty", hidden: true},
    h("p", "No block list is set up yet, so Burrow blocks nothing. Add a list of ad and tracker " +
      "domains to start blocking."),
    opts.embedded ? (ctx.canWrite ? h("p", "Add one with the form below.") : null)
      : h("p", h("a", {href: "#/lists", class: "button-link"}, "Add block lists")));
  const progress = h("p", {class: "small progress", id: "lists-progress", role: "status", hidden: true});
  const failed = h("p", {class: "field-error", id: "lists-failed", hidden: true});
  const failures = h("ul", {id: "lists-errors", class: "problems", hidden: true});
  const update = ctx.canWrite ? h("button", {type: "button", class: "write", id: "lists-update"},
    "Update lists now") : null;
  const each = h("ul", {id: "lists-each", class: "plain-list small", hidden: true});
  const el = h("section", {id: "lists", class: "card", "aria-labelledby": "lists-title"},
    h("h2", {id: "lists-title"}, "Block lists"),
    h("p", {class: "state"}, domains), each, updated, empty, progress, failed, failures,
    update ? h("div", {class: "actions"}, update) : null);

  let busy = false; // the progress line shows an update in progress (not its outcome)
  let failedNow = new Set(); // names whose download failed in the update running now
  const downloading = new Map(); // list id → name: downloads running now (a refresh that starts
  // meanwhile, e.g. the scheduler woken again, must not hide what is actually happening)

  function runningLine() {
    const names = [...downloading.values()];
    return names.length ? `Downloading ${names[names.length - 1]}…` : "Updating block lists…";
  }

  function showProgress(line, running, bad = false) {
    busy = running;
    text(progress, line);
    progress.classList.toggle("bad", bad);
    show(progress, !!line);
  }

  function render(answer, error) {
    if (!answer) {
      if (error) text(domains, "The block lists could not be read.");
      return;
    }
    const lists = answer.lists || [];
    const index = answer.index || {};
    const block = lists.filter((l) => l.kind === "block" && l.enabled);
    const broken = block.filter((l) => l.last_error);
    const working = block.length - broken.length;
    text(domains, block.length ? `${count(index.domains)} domains from ${plural(working, "block list", "block lists")}`
      + (broken.length ? `; ${plural(broken.length, "list", "lists")} failed` : "") : "No block lists yet");
    show(empty, block.length === 0);
    replace(each, block.map((l) => h("li", h("strong", l.name), `: ${freshness(l)}`)));
    show(each, block.length > 0);
    text(updated, index.index_created ? `Index built ${new Date(index.index_created * 1000).toLocaleString()}`
      : block.length ? "No index built yet." : "");
    replace(failures, broken.map((l) => h("li", `${l.name}: the last update failed (${l.last_error}). `,
      l.last_success ? "Its copy from before keeps blocking." : "It has never loaded, so it blocks nothing yet.")));
    show(failures, broken.length > 0);
    const last = index.last_refresh;
    const lastFailed = last && last.status === "failed" ? last.error || "unknown error" : "";
    text(failed, lastFailed ? `The last update failed: ${lastFailed}. The lists from before keep blocking.` : "");
    show(failed, !!lastFailed);
    // An answer can be older than the events already seen (asked before the update began): it
    // may say "not running" and clear the line, and the next one "running" again — the
    // downloads named by the events stay the line's words meanwhile.
    if (index.running && !busy) showProgress(runningLine(), true);
    else if (!index.running && busy) showProgress("", false);
  }

  // lists.* events from the list manager (filtering/manager.py): what an update is doing now.
  function onEvent(event) {
    const kind = event.type.slice("lists.".length);
    const d = event.data || {};
    if (kind === "refresh_started") {
      failedNow = new Set();
      showProgress(runningLine(), true);
    } else if (kind === "download_started") {
      downloading.set(d.id ?? d.name, d.name || "a list");
      showProgress(`Downloading ${d.name || "a list"}…`, true);
    } else if (kind === "download_finished") {
      downloading.delete(d.id ?? d.name);
      if (d.status === "failed") {
        failedNow.add(d.name || "a list");
        showProgress(`Downloading ${d.name || "a list"} failed${d.error ? `: ${d.error}` : ""}`, true, true);
      }
    } else if (kind === "compile_started") {
      showProgress(`Compiling ${plural(d.lists, "list", "lists")}…`, true);
    } else if (kind === "compile_progress") {
      if (d.phase === "list_started") showProgress(`Compiling ${d.name || "a list"}…`, true);
      else if (d.phase === "progress") showProgress(`Compiling: ${count(d.rules)} rules read…`, true);
      else if (d.phase === "writing") showProgress(`Writing the index: ${count(d.rules)} rules…`, true);
      else if (d.phase === "finished") showProgress(`Index written: ${count(d.entries)} entries…`, true);
    } else if (kind === "index_swapped") {
      showProgress(`New index live: ${count(d.entries)} entries…`, true);
    } else if (kind === "refresh_finished") {
      downloading.clear();
      const names = [...failedNow];
      if (d.status === "failed") {
        showProgress("", false); // #lists-failed says why
      } else if (names.length) {
        showProgress(`Update failed for ${names.join(", ")}; the other lists are up to date: ` +
          `${count(d.entries)} domains.`, false, true);
      } else {
        showProgress(`Update finished: ${count(d.entries)} domains` +
          (typeof d.seconds === "number" ? ` in ${d.seconds.toFixed(1)} s.` : "."), false);
      }
    }
  }

  if (update) update.addEventListener("click", async () => {
    if (!ctx.canWrite) return;
    update.disabled = true;
    try {
      await ctx.api.post("/api/blocklist/reload");
      ctx.clearError();
    } catch (e) {
      ctx.showError(e);
    }
    update.disabled = false;
    ctx.live.refresh("lists");
  });

  const release = ctx.live.want("lists");
  const unsubscribe = ctx.live.subscribe("lists", render);
  const unlisten = ctx.live.on("lists.", onEvent);
  return {el, destroy() { unlisten(); unsubscribe(); release(); }};
}

/** "1 day ago", "3 hours ago", "just now": how old a time (unix seconds) is, in words. */
export function age(seconds, now = Date.now()) {
  const s = Math.max(0, Math.round(now / 1000 - seconds));
  if (s < 90) return "just now";
  const [size, unit] = s < 5400 ? [60, "minute"] : s < 129600 ? [3600, "hour"] : [86400, "day"];
  return `${plural(Math.round(s / size), unit, unit + "s")} ago`;
}

/** One list's size and freshness: "148,000 domains, updated 3 hours ago". */
export function freshness(l) {
  const size = typeof l.entries === "number" ? `${plural(l.entries, "domain", "domains")}` : "not loaded yet";
  const when = l.last_success ? `updated ${age(l.last_success)}` : "never updated";
  return `${size}, ${when}` + (l.last_error ? " (the last update failed)" : "");
}
