// "Ask the router": local device names and reverse lookups go to the router (the conditional
// forwarding preset). Every field the API refuses is marked, not only the first. Admins only get
// the switch and the fields.

import {h, text} from "../dom.js";
import {clearFieldErrors, field, labels, markFieldErrors} from "../forms.js";

export function create(ctx) {
  const sw = h("button", {type: "button", id: "router-switch", class: "switch write", role: "switch",
    "aria-checked": "false", "aria-labelledby": "router-switch-label", disabled: true},
  h("span", {class: "knob", "aria-hidden": "true"}));
  const pill = h("span", {id: "router-on", class: "pill"}, "…");
  const router = field("router-ip", "Router address", "router",
    {class: "write", inputmode: "decimal", maxlength: "64", disabled: true});
  const domain = field("router-domain", "Local domain", "domain", {class: "write", maxlength: "255", disabled: true});
  const fields = [router, domain];
  const network = h("p", {class: "small", id: "router-network"});
  const el = h("section", {id: "router", class: "card", "aria-labelledby": "router-title"},
    h("h2", {id: "router-title"}, "Ask the router"),
    h("p", {class: "small"}, "Local device names and reverse lookups go to your router."),
    // A read-only account sees whether it is on and where names go, but no switch or field.
    ctx.canWrite ? h("div", {class: "switch-row"}, sw, h("span", {id: "router-switch-label"}, "Ask the router for local names"), pill)
      : h("p", {class: "switch-row"}, "Ask the router for local names: ", pill),
    ctx.canWrite ? h("form", {id: "router-form", novalidate: true}, router.wrap, domain.wrap, network) : network);

  let preset = null;
  let dirty = false; // the owner typed in the fields: a new state must not overwrite them
  let busy = false;

  function render() {
    if (!preset) return;
    const on = preset.enabled === true;
    sw.setAttribute("aria-checked", on ? "true" : "false");
    sw.disabled = !ctx.canWrite || busy;
    text(pill, on ? "On" : "Off");
    // While on, the fields show what is in use; turn it off to change them.
    router.input.disabled = domain.input.disabled = !ctx.canWrite || on;
    if (on || !dirty) {
      dirty = false;
      router.input.value = preset.router || preset.suggested_router || "";
      domain.input.value = preset.router ? preset.domain || "" : "lan";
    }
    let note = "";
    if (on) {
      note = `${preset.domain ? `Names under .${preset.domain} and reverse` : "Reverse"} lookups for ` +
        `${preset.network} go to ${preset.router}.`;
    } else if (preset.suggested_router) {
      note = `Your router appears to be ${preset.suggested_router}.`;
    }
    text(network, note);
  }

  for (const f of fields) f.input.addEventListener("input", () => { dirty = true; });

  sw.addEventListener("click", async () => {
    if (!ctx.canWrite || !preset || busy) return;
    const turnOn = sw.getAttribute("aria-checked") !== "true";
    clearFieldErrors(fields);
    busy = true;
    sw.disabled = true;
    try {
      let result;
      if (turnOn) {
        const body = {domain: domain.input.value.trim()};
        const ip = router.input.value.trim();
        if (ip) body.router = ip; // without it the API takes the default gateway
        result = await ctx.api.post("/api/conditionalforwarding/preset/router", body);
      } else {
        result = await ctx.api.del("/api/conditionalforwarding/preset/router");
      }
      ctx.clearError();
      dirty = false;
      ctx.live.set("routerPreset", {...result.preset, suggested_router: preset.suggested_router});
      if (turnOn && !result.preset.enabled) {
        ctx.notice("Saved, but conditional forwarding is switched off as a whole, so the router is not asked.");
      }
    } catch (e) {
      markFieldErrors(e, fields);
      ctx.showError(e, labels(fields));
    } finally {
      busy = false;
      render();
    }
  });

  const release = ctx.live.want("routerPreset");
  const unsubscribe = ctx.live.subscribe("routerPreset", (value) => {
    if (value) { preset = value; render(); }
  });
  return {el, destroy() { unsubscribe(); release(); }};
}
