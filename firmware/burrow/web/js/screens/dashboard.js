// The dashboard: the status (the LED mirrored, the 24 h figures, what is wrong), pause, the
// chart of queries over time, the top lists, upstream servers, block lists, the board, and the
// router preset. Each card is its own module in ../cards/ made with create(ctx) → {el,
// destroy()}; a later screen can reuse one. Everything is live through ../live.js (one
// /ws/events stream); the first figures come from one GET /api/dashboard.

import * as activityCard from "../cards/activity.js";
import * as listsCard from "../cards/lists.js";
import * as pauseCard from "../cards/pause.js";
import * as routerCard from "../cards/router_preset.js";
import * as statusCard from "../cards/status.js";
import * as systemCard from "../cards/system.js";
import * as topsCard from "../cards/tops.js";
import * as upstreamsCard from "../cards/upstreams.js";

let cards = [];

export function mount(el, ctx) {
  // Pause stays second: in reach right below the status, on the phone's first screen.
  cards = [statusCard, pauseCard, activityCard, topsCard, upstreamsCard, listsCard, systemCard, routerCard]
    .map((card) => card.create(ctx));
  el.append(...cards.map((c) => c.el));
}

export function unmount() {
  for (const c of cards) c.destroy();
  cards = [];
}
