// The board: temperature, memory, disk, uptime and what was written to the SD card today,
// from GET /api/dashboard's `system` (as /api/system has them; the dashboard resource of
// ../live.js is loaded again at least every minute, so the temperature keeps up).

import {h, text} from "../dom.js";
import {bytes} from "./upstreams.js";

export function create(ctx) {
  const temp = h("dd", {id: "sys-temp"}, "–");
  const memory = h("dd", {id: "sys-memory"}, "–");
  const disk = h("dd", {id: "sys-disk"}, "–");
  const uptime = h("dd", {id: "sys-uptime"}, "–");
  const writes = h("dd", {id: "sys-writes"}, "–");
  const note = h("p", {class: "small", id: "sys-note"});
  const el = h("section", {id: "system", class: "card", "aria-labelledby": "system-title"},
    h("h2", {id: "system-title"}, "The board"),
    h("dl", {class: "figures"},
      h("div", h("dt", "Temperature"), temp),
      h("div", h("dt", "Memory used"), memory),
      h("div", h("dt", "Disk used"), disk),
      h("div", h("dt", "Up for"), uptime),
      h("div", h("dt", "SD writes today"), writes)),
    note);

  function render(d, error) {
    const s = d && {...d.system, uptime: d.uptime};
    if (!s) {
      if (error) text(note, "The board's figures could not be read.");
      return;
    }
    const t = s.temperature;
    const measured = t && typeof t.celsius === "number";
    text(temp, measured ? `${t.celsius.toFixed(1)} °C` : "not measured");
    temp.classList.toggle("words", !measured);
    const m = s.memory;
    text(memory, m ? `${Number(m.percent).toFixed(0)} % of ${bytes(m.total)}` : "–");
    const dk = s.disk;
    text(disk, dk ? `${Number(dk.percent).toFixed(0)} % of ${bytes(dk.total)}` : "–");
    text(uptime, s.uptime || "–");
    const w = s.storage_writes;
    if (w && typeof w.bytes_today === "number") {
      text(writes, bytes(w.bytes_today));
      writes.classList.remove("words");
      const since = new Date(w.today_since * 1000);
      const midnight = since.getHours() === 0 && since.getMinutes() === 0;
      text(note, `SD writes: everything written to ${w.device} today` +
        (midnight ? "." : `, counted since ${since.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})}.`));
    } else {
      text(writes, "not measured");
      writes.classList.add("words");
      text(note, "This machine does not report its disk's writes.");
    }
  }

  const release = ctx.live.want("dashboard");
  const unsubscribe = ctx.live.subscribe("dashboard", render);
  return {el, destroy() { unsubscribe(); release(); }};
}
