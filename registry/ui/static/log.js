// Log: the change log, newest first, live from the stream, filtered by kind, VEN, DER.
import { el, problem, api, query, stream, table } from "./core.js";

const filter = { kind: "", ven_id: "", device_id: "" };
const KEEP = 300;

export function logScreen(main) {
  const rows = [];
  const body = el("div");
  const live = el("span", { class: "live off", "data-testid": "live" }, "○ connecting");
  let s = null, stopped = false;

  function params() {
    const p = {};
    for (const [k, v] of Object.entries(filter)) if (v) p[k] = v;
    return p;
  }
  function show() {
    body.replaceChildren(table([
      { label: "seq", num: true, value: e => String(e.seq) },
      { label: "at", value: e => e.at.replace("T", " ").slice(0, 19) },
      { label: "kind", value: e => e.kind },
      { label: "VEN", cls: "hide-narrow", value: e => e.ven_id ? el("a", { href: `#/vens/${encodeURIComponent(e.ven_id)}` }, e.ven_id.slice(0, 10)) : "–" },
      { label: "DER", cls: "hide-narrow", value: e => e.device_id ? el("a", { href: `#/ders/${encodeURIComponent(e.device_id)}` }, e.device_id.slice(0, 10)) : "–" },
      { label: "data", value: e => JSON.stringify(e.data).slice(0, 120) },
    ], rows, null, "log-table"));
  }
  async function start() {
    if (s) s.stop();
    rows.length = 0;
    try {
      const recent = await api(`/log/recent${query({ ...params(), limit: 100 })}`);
      if (stopped) return;
      rows.push(...recent.items);
      show();
      const from = rows.length ? rows[0].seq : null;
      s = stream(params(), e => {
        rows.unshift(e);
        if (rows.length > KEEP) rows.length = KEEP;
        show();
      }, up => { live.className = up ? "live" : "live off"; live.textContent = up ? "● live" : "○ reconnecting"; }, from);
    } catch (e) { problem(e); }
  }
  const input = (k, label) => el("label", { for: `l-${k}` }, label,
    el("input", { id: `l-${k}`, name: k, value: filter[k], size: k === "kind" ? 24 : 16 }));
  const form = el("form", { class: "filters", role: "search", onsubmit: e => {
    e.preventDefault();
    for (const [k, v] of new FormData(form).entries()) filter[k] = String(v).trim();
    start();
  } }, input("kind", "Kinds (comma list)"), input("ven_id", "VEN id"), input("device_id", "DER id"),
    el("button", { type: "submit" }, "Filter"));
  main.append(el("h1", {}, "Log ", live), form, body);
  start();
  return () => { stopped = true; if (s) s.stop(); };
}
