// Queries and blocked over time: a uPlot chart with a 24 h / 7 d switch, and its text
// alternative (a summary sentence and the figures as a table) for screen readers and anyone
// who prefers numbers. Data: GET /api/stats/timeseries through the live store (series24h /
// series7d in ../live.js: loaded again when the stream says the counts changed).
//
// uPlot (vendored by scripts/build_web.py) is imported here only, when the card is first
// drawn, with its stylesheet added as a <link> (the CSP allows style-src 'self'; uPlot sizes
// its elements through element.style, which the CSP does not restrict).

import {count, h, replace, text} from "../dom.js";

const RANGES = {
  "24h": {key: "series24h", label: "24 hours", words: "the last 24 hours"},
  "7d": {key: "series7d", label: "7 days", words: "the last 7 days"},
};
const HEIGHT = 180;

let uplotModule = null; // Promise of the uPlot module, shared by every card

function loadUplot() {
  if (!uplotModule) {
    const css = new URL("../../vendor/uplot/uPlot.min.css", import.meta.url).href;
    if (![...document.querySelectorAll("link[rel=stylesheet]")].some((l) => l.href === css)) {
      document.head.append(h("link", {rel: "stylesheet", href: css}));
    }
    uplotModule = import("../../vendor/uplot/uPlot.esm.min.js").then((m) => m.default)
      .catch((e) => { uplotModule = null; throw e; });
  }
  return uplotModule;
}

function colour(el, name, fallback) {
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

/** "14:00" for a day's points, "Mon 14:00" for a week's. */
function when(ms, range) {
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
  return range === "7d" ? `${d.toLocaleDateString([], {weekday: "short"})} ${time}` : time;
}

/** The chart's text alternative: totals and the busiest step, in one sentence. */
export function summarize(points, range) {
  const words = RANGES[range].words;
  if (!points.length) return `No figures for ${words} yet.`;
  let total = 0;
  let blocked = 0;
  let busiest = points[0];
  for (const p of points) {
    total += p.total;
    blocked += p.blocked;
    if (p.total > busiest.total) busiest = p;
  }
  if (!total) return `No queries in ${words}.`;
  return `In ${words}: ${count(total)} queries, ${count(blocked)} of them blocked. ` +
    `Busiest: ${when(Date.parse(busiest.timestamp), range)} with ${count(busiest.total)} queries.`;
}

export function create(ctx) {
  const buttons = Object.entries(RANGES).map(([range, r]) => h("button", {
    type: "button", class: "range", id: `range-${range}`, "data-range": range, "aria-pressed": "false",
  }, r.label));
  const chartBox = h("div", {id: "activity-chart", class: "chart", "aria-hidden": "true"});
  const summary = h("p", {id: "activity-summary", class: "small", "aria-live": "polite"}, "Loading the figures…");
  const tbody = h("tbody");
  const caption = h("caption", "Queries and blocked queries");
  const table = h("table", {id: "activity-table", class: "figures-table"}, caption,
    h("thead", h("tr", h("th", {scope: "col"}, "From"), h("th", {scope: "col"}, "Queries"),
      h("th", {scope: "col"}, "Blocked"))), tbody);
  const el = h("section", {id: "activity", class: "card", "aria-labelledby": "activity-title"},
    h("h2", {id: "activity-title"}, "Queries over time"),
    h("div", {class: "actions", role: "group", "aria-label": "Time range"}, buttons),
    chartBox, summary,
    h("details", {class: "table-details"}, h("summary", "The figures as a table"), table));

  let range = "24h";
  let release = () => {};
  let unsubscribe = () => {};
  let plot = null;
  let data = null; // the shown range's points
  let destroyed = false;
  let seq = 0;

  function size() {
    return {width: Math.max(200, chartBox.clientWidth || 300), height: HEIGHT};
  }

  async function draw(points, forRange) {
    const mine = ++seq;
    const x = points.map((p) => Date.parse(p.timestamp) / 1000);
    const series = [x, points.map((p) => p.total), points.map((p) => p.blocked)];
    let uPlot;
    try {
      uPlot = await loadUplot();
    } catch {
      if (mine === seq) text(summary, `${summarize(points, forRange)} (The chart did not load; the figures are below.)`);
      return;
    }
    if (destroyed || mine !== seq) return;
    if (plot) {
      plot.setData(series);
    } else {
      const line = colour(el, "--line", "#888");
      const muted = colour(el, "--muted", "#666");
      const axis = {stroke: muted, grid: {stroke: line, width: 1}, ticks: {stroke: line, width: 1}};
      plot = new uPlot({
        ...size(),
        cursor: {show: false},
        legend: {show: true, live: false},
        scales: {x: {time: true}, y: {range: (u, min, max) => [0, Math.max(1, max)]}},
        axes: [axis, {...axis, size: 48}],
        series: [
          {},
          {label: "Queries", stroke: colour(el, "--accent", "#2f6b2a"), width: 2},
          {label: "Blocked", stroke: colour(el, "--error", "#a11d1d"), width: 2},
        ],
      }, series, chartBox);
    }
    if (!performance.getEntriesByName("dashboard-chart").length) performance.mark("dashboard-chart");
  }

  function render(answer, error) {
    if (!answer) {
      if (error) text(summary, `The figures could not be read: ${ctx.api.humanMessage(error)}`);
      return;
    }
    data = answer.points || [];
    text(summary, summarize(data, range));
    text(caption, `Queries and blocked queries, ${RANGES[range].words}, per ${answer.step || "step"}`);
    replace(tbody, data.filter((p) => p.total > 0).map((p) => h("tr",
      h("th", {scope: "row"}, when(Date.parse(p.timestamp), range)),
      h("td", count(p.total)), h("td", count(p.blocked)))));
    if (!tbody.children.length) tbody.append(h("tr", h("td", {colspan: "3"}, "No queries yet.")));
    draw(data, range);
  }

  function choose(next) {
    range = next;
    for (const b of buttons) b.setAttribute("aria-pressed", b.dataset.range === next ? "true" : "false");
    unsubscribe();
    release();
    const key = RANGES[next].key;
    release = ctx.live.want(key);
    unsubscribe = ctx.live.subscribe(key, render);
  }

  el.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-range]");
    if (b && b.dataset.range !== range) choose(b.dataset.range);
  });
  const resize = new ResizeObserver(() => { if (plot) plot.setSize(size()); });
  resize.observe(chartBox);
  choose(range);

  return {el, destroy() {
    destroyed = true;
    resize.disconnect();
    unsubscribe();
    release();
    if (plot) plot.destroy();
    plot = null;
  }};
}
