// The curated list catalogue (GET /api/lists/catalogue): shared by the first-run guide
// (screens/welcome.js) and the lists screen (screens/lists.js).

import {count} from "./dom.js";

/** "about 80,000 names · 2.1 MB download" for a catalogue entry. */
export function approx(entry) {
  const mb = entry.approx_bytes / 1e6;
  return `about ${count(Math.round(entry.approx_entries / 1000) * 1000)} names · ${mb >= 1
    ? `${mb.toFixed(1)} MB` : `${Math.max(1, Math.round(entry.approx_bytes / 1000))} kB`} download`;
}
