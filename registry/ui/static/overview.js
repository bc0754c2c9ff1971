// Overview: VENs and DERs by liveness, capacity by class and type, recent
// registrations and refusals; refreshed live from the change log stream.
import { api, el, LIVENESS, problem, stream, table, throttle, watts } from "./core.js";

const LIVE_KINDS = ["ven.liveness", "ven.registered", "ven.reregistered", "ven.registration_refused",
  "security.fingerprint_mismatch", "der.created", "der.removed", "der.status_changed", "der.changed",
  "ven.registration_cancelled"];

function card(label, n, cls, testid) {
  return el("div", { class: "card", "data-testid": testid },
    el("div", { class: `n ${cls || ""}` }, String(n)), el("div", { class: "l" }, label));
}

function capacityTable(title, bucket, testid) {
  const rows = Object.entries(bucket).map(([k, s]) => ({ k, ...s }));
  return el("div", {},
    el("h2", {}, title),
    table([
      { label: title.includes("class") ? "Device class" : "Device type", value: r => r.k },
      { label: "DERs", num: true, value: r => String(r.ders) },
      { label: "Σ max", num: true, value: r => watts(r.max_w) },
      { label: "Σ available", num: true, value: r => watts(r.available_w) },
    ], rows, null, testid));
}

export function overview(main) {
  const body = el("div", { "data-testid": "overview" }, el("p", { class: "muted" }, "Loading…"));
  const live = el("span", { class: "live off", "data-testid": "live" }, "○ connecting");
  main.append(el("h1", {}, "Overview ", live), body);
  let stopped = false;

  async function load() {
    try {
      const ov = await api("/overview");
      if (stopped) return;
      const v = ov.vens.by_liveness, d = ov.ders.by_liveness;
      body.replaceChildren(
        el("h2", {}, "VENs"),
        el("div", { class: "cards" },
          card("VENs", ov.vens.total, "", "vens-total"),
          LIVENESS.map(s => card(`VENs ${s}`, v[s] || 0, s, `vens-${s}`))),
        el("h2", {}, "DERs"),
        el("div", { class: "cards" },
          card("DERs", ov.ders.total, "", "ders-total"),
          LIVENESS.map(s => card(`DERs ${s}`, d[s] || 0, s, `ders-${s}`))),
        el("h2", {}, `Last ${Math.round(ov.recent.window_s / 60)} minutes`),
        el("div", { class: "cards" },
          card("registrations", ov.recent.registrations, "", "registrations"),
          card("refusals", ov.recent.refusals, ov.recent.refusals ? "offline" : "", "refusals")),
        el("div", { class: "split" },
          capacityTable("Capacity by device class", ov.by_class, "by-class"),
          capacityTable("Capacity by device type", ov.by_type, "by-type")),
        el("p", { class: "muted" }, `as of ${ov.at}`));
      performance.mark("vtn:overview");  // bench/dashboard_bench.py reads these marks
    } catch (e) { problem(e); }
  }
  const refresh = throttle(load, 2000);
  load();
  const s = stream({ kind: LIVE_KINDS.join(",") }, refresh, up => {
    live.className = up ? "live" : "live off";
    live.textContent = up ? "● live" : "○ reconnecting";
  });
  return () => { stopped = true; s.stop(); };
}
