// DER search: the discovery API's filters, sort and paging in a table, with a detail
// panel (status, last values, telemetry sparkline, its VEN, its log). The table
// follows liveness changes live.
import { api, DEVICE_CLASSES, DEVICE_TYPES, el, LIVENESS, liveness, problem, query, stream,
  table, throttle, vendor, watts, when } from "./core.js";

// the search, kept while the operator visits other screens (the map uses it too)
export const search = { q: "", device_class: "", device_type: "", liveness: "", ven_id: "",
  dr_availability: "", max_capacity_min: "", sort: "device_name", limit: "50" };
export const FILTER_KEYS = ["q", "device_class", "device_type", "liveness", "ven_id",
  "dr_availability", "max_capacity_min"];
const SORTS = [["device_name", "name"], ["-max_capacity", "max capacity ↓"],
  ["-available_capacity", "available capacity ↓"], ["liveness", "liveness"],
  ["-updated_at", "updated ↓"], ["ven_id", "VEN"]];

export function filterParams() {
  const p = {};
  for (const k of FILTER_KEYS) if (search[k] !== "") p[k] = search[k];
  return p;
}

function select(name, options, label) {
  const s = el("select", { name, id: `f-${name}` },
    el("option", { value: "" }, "any"),
    options.map(o => Array.isArray(o) ? el("option", { value: o[0] }, o[1]) : el("option", { value: o }, o)));
  s.value = search[name];
  return el("label", { for: `f-${name}` }, label, s);
}

function input(name, label, attrs = {}) {
  return el("label", { for: `f-${name}` }, label,
    el("input", { name, id: `f-${name}`, value: search[name], ...attrs }));
}

export function searchForm(onSubmit, withSort = true) {
  const sortSel = el("select", { name: "sort", id: "f-sort" },
    SORTS.map(([v, l]) => el("option", { value: v }, l)));
  sortSel.value = search.sort;
  const limitSel = el("select", { name: "limit", id: "f-limit" },
    ["25", "50", "100", "500"].map(v => el("option", { value: v }, v)));
  limitSel.value = search.limit;
  const form = el("form", { class: "filters", role: "search", "data-testid": "der-search",
    onsubmit: e => {
      e.preventDefault();
      for (const [k, v] of new FormData(form).entries()) search[k] = String(v).trim();
      onSubmit();
    } },
    input("q", "Name contains", { type: "search", placeholder: "boiler" }),
    select("device_class", DEVICE_CLASSES, "Class"),
    select("device_type", DEVICE_TYPES, "Type"),
    select("liveness", LIVENESS, "Liveness"),
    select("dr_availability", [["true", "yes"], ["false", "no"]], "DR available"),
    input("max_capacity_min", "Max ≥ (W)", { type: "number", min: "0", step: "any", size: "7" }),
    input("ven_id", "VEN id", { size: "14" }),
    withSort ? el("label", { for: "f-sort" }, "Sort", sortSel) : null,
    withSort ? el("label", { for: "f-limit" }, "Per page", limitSel) : null,
    el("button", { type: "submit" }, "Search"));
  return form;
}

async function sparkline(target, points) {
  if (!points.length) { target.replaceChildren(el("p", { class: "muted" }, "no telemetry yet")); return; }
  const byAt = new Map();
  for (const p of points) {
    const t = Date.parse(p.at) / 1000;
    byAt.set(t, (byAt.get(t) || 0) + p.avg_w);
  }
  const xs = [...byAt.keys()].sort((a, b) => a - b);
  const ys = xs.map(x => byAt.get(x));
  await vendor("uplot");
  target.replaceChildren();
  const width = Math.max(240, Math.min(target.clientWidth || 360, 520));
  new uPlot({ width, height: 120, legend: { show: false }, cursor: { show: true },
    scales: { x: { time: true } },
    axes: [{ size: 30 }, { size: 64, values: (u, v) => v.map(watts) }],
    series: [{}, { label: "W", stroke: "#1f5fbf", fill: "rgba(31,95,191,.12)", width: 1.5 }] },
    [xs, ys], target);
}

export async function derDetail(panel, deviceId) {
  panel.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const [d, tel, logs] = await Promise.all([
      api(`/ders/${encodeURIComponent(deviceId)}`),
      api(`/ders/${encodeURIComponent(deviceId)}/telemetry?hours=6`),
      api(`/log/recent${query({ device_id: deviceId, limit: 15 })}`)]);
    const chart = el("div", { class: "spark", "data-testid": "sparkline" });
    panel.replaceChildren(
      el("h2", {}, d.device_name || d.device_id),
      el("dl", { class: "kv", "data-testid": "der-detail" },
        el("dt", {}, "device_id"), el("dd", {}, d.device_id),
        el("dt", {}, "liveness"), el("dd", { "data-testid": "der-liveness" }, liveness(d.liveness)),
        el("dt", {}, "class / type"), el("dd", {}, `${d.device_class} / ${d.device_type}`),
        el("dt", {}, "capacity"), el("dd", {}, `max ${watts(d.max_capacity)}, available ${watts(d.available_capacity)}`),
        el("dt", {}, "availability"), el("dd", {}, `${d.availability ? "on" : "off"}, DR ${d.dr_availability ? "yes" : "no"}, market ${d.marketplace_availability ? "yes" : "no"}`),
        el("dt", {}, "VEN"), el("dd", {}, el("a", { href: `#/vens/${encodeURIComponent(d.ven_id)}` }, d.ven_id)),
        el("dt", {}, "tenant"), el("dd", {}, `${d.aggregator_id || "–"} / ${d.account_id || "–"}`),
        el("dt", {}, "location"), el("dd", {}, d.location ? `${d.location.lat.toFixed(5)}, ${d.location.lon.toFixed(5)}` : "–"),
        el("dt", {}, "updated"), el("dd", {}, when(d.updated_at))),
      el("h2", {}, "Status"),
      el("pre", {}, JSON.stringify(d.status, null, 1)),
      el("h2", {}, "Last values"),
      el("pre", {}, JSON.stringify(d.last_values, null, 1)),
      el("h2", {}, "Load, last 6 h"), chart,
      el("h2", {}, "Log"),
      table([{ label: "seq", num: true, value: e => String(e.seq) },
             { label: "at", value: e => e.at.slice(11, 19) },
             { label: "kind", value: e => e.kind }], logs.items, null, "der-log"));
    await sparkline(chart, tel.points);
  } catch (e) {
    panel.replaceChildren(el("p", { class: "error" }, e.message));
  }
}

export function ders(main, [selected]) {
  const status = el("p", { class: "muted", "data-testid": "der-count", "aria-live": "polite" });
  const results = el("div");
  const panel = el("aside", { class: "panel", "aria-label": "DER detail", "data-testid": "der-panel" },
    el("p", { class: "muted" }, "Select a DER."));
  const prev = el("button", { type: "button", class: "secondary", disabled: true }, "‹ Prev");
  const next = el("button", { type: "button", class: "secondary", disabled: true }, "Next ›");
  const cursors = [null];  // cursor of each page seen; the last is the current page's
  let nextCursor = null, current = selected || null, stopped = false;

  async function load() {
    const p = { ...filterParams(), sort: search.sort, limit: search.limit, total: "true",
      fields: "device_id,device_name,device_class,device_type,liveness,max_capacity,available_capacity,ven_id,updated_at",
      cursor: cursors[cursors.length - 1] };
    try {
      const page = await api(`/ders${query(p)}`);
      if (stopped) return;
      nextCursor = page.next_cursor;
      const first = (cursors.length - 1) * Number(search.limit);
      status.textContent = page.total === 0 ? "No DER matches." :
        `${first + 1}–${first + page.items.length} of ${page.total} DERs`;
      results.replaceChildren(table([
        { label: "Name", value: d => d.device_name || d.device_id },
        { label: "Class", value: d => d.device_class },
        { label: "Type", cls: "hide-narrow", value: d => d.device_type },
        { label: "Liveness", value: d => liveness(d.liveness) },
        { label: "Max", num: true, value: d => watts(d.max_capacity) },
        { label: "Available", num: true, cls: "hide-narrow", value: d => watts(d.available_capacity) },
        { label: "VEN", cls: "hide-narrow", value: d => d.ven_id.slice(0, 8) },
      ], page.items.map(d => ({ ...d, __id: d.device_id })), (d, tr) => {
        current = d.device_id;
        for (const r of results.querySelectorAll("tr.sel")) r.classList.remove("sel");
        tr.classList.add("sel");
        history.replaceState(null, "", `#/ders/${encodeURIComponent(d.device_id)}`);
        derDetail(panel, d.device_id);
      }, "der-table"));
      const sel = current && results.querySelector(`tr[data-id="${CSS.escape(current)}"]`);
      if (sel) sel.classList.add("sel");
      performance.mark("vtn:ders-table");
      prev.disabled = cursors.length <= 1;
      next.disabled = !nextCursor;
    } catch (e) { problem(e); status.textContent = e.message; }
  }

  prev.addEventListener("click", () => { cursors.pop(); load(); });
  next.addEventListener("click", () => { if (nextCursor) { cursors.push(nextCursor); load(); } });
  const form = searchForm(() => { cursors.length = 1; load(); });
  main.append(el("h1", {}, "DERs"), form,
    el("div", { class: "split" },
      el("section", { "aria-label": "results" }, status, results, el("div", { class: "pager" }, prev, next)),
      panel));
  load();
  if (current) derDetail(panel, current);
  const refresh = throttle(() => { load(); if (current) derDetail(panel, current); }, 3000);
  const s = stream({ kind: "ven.liveness,der.status_changed,der.changed,der.created,der.removed" }, refresh);
  return () => { stopped = true; s.stop(); };
}
