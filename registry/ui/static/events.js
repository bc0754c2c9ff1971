// DR events: list, create (targets picked from a DER search or typed ids), modify,
// cancel; per-VEN opt state and the measured response over time.
import { api, confirmAction, DEVICE_CLASSES, el, problem, query, stream, table, throttle,
  toast, vendor, watts, when } from "./core.js";

function isoIn(minutes) {
  return new Date(Date.now() + minutes * 60000).toISOString().slice(0, 16);
}

function ids(text) {
  return text.split(/[\s,]+/).map(s => s.trim()).filter(Boolean);
}

function createForm(onCreated) {
  const f = {
    program: el("input", { id: "e-program", name: "program", value: "peak", required: true }),
    start: el("input", { id: "e-start", name: "start", type: "datetime-local", value: isoIn(0), required: true }),
    duration: el("input", { id: "e-duration", name: "duration", type: "number", min: "1", value: "30", required: true }),
    level: el("select", { id: "e-level", name: "level" }, ["0", "1", "2", "3"].map(v => el("option", { value: v }, v))),
    vens: el("textarea", { id: "e-vens", name: "ven_ids", rows: "2", placeholder: "venIDs, comma or space separated" }),
    devices: el("textarea", { id: "e-devices", name: "device_ids", rows: "3", placeholder: "device_ids" }),
    q: el("input", { id: "e-q", type: "search", placeholder: "name contains" }),
    group: el("select", { id: "e-group", name: "group" }, el("option", { value: "" }, "none")),
    cls: el("select", { id: "e-cls" }, el("option", { value: "" }, "any class"), DEVICE_CLASSES.map(c => el("option", { value: c }, c))),
  };
  f.level.value = "2";
  api("/groups").then(page => f.group.append(...page.items.map(g =>
    el("option", { value: g.group_id }, `${g.name} (${g.aggregator_id || "service"})`))))
    .catch(() => { f.group.disabled = true; });
  const picked = el("span", { class: "muted", "data-testid": "picked" });
  const pick = el("button", { type: "button", class: "secondary", onclick: async () => {
    try {
      const page = await api(`/ders${query({ q: f.q.value.trim(), device_class: f.cls.value,
        fields: "device_id", limit: 1000 })}`);
      const have = new Set(ids(f.devices.value));
      for (const d of page.items) have.add(d.device_id);
      f.devices.value = [...have].join("\n");
      picked.textContent = `${page.items.length} DERs added${page.next_cursor ? " (first 1000)" : ""}`;
    } catch (e) { problem(e); }
  } }, "Add matching DERs");
  const form = el("form", { class: "panel", "data-testid": "event-form", onsubmit: async e => {
    e.preventDefault();
    const body = {
      program: f.program.value.trim(),
      dtstart: new Date(f.start.value + "Z").toISOString(),
      targets: { ven_ids: ids(f.vens.value), device_ids: ids(f.devices.value),
        groups: f.group.value ? [f.group.value] : [] },
      signals: [{ signal_name: "SIMPLE", signal_type: "level",
        intervals: [{ duration_s: Number(f.duration.value) * 60, value: Number(f.level.value) }] }],
    };
    try {
      const ev = await api("/events", { method: "POST", body });
      toast(`Event ${ev.event_id} created for ${ev.summary.vens} VENs, ${ev.summary.ders} DERs`);
      onCreated(ev.event_id);
    } catch (err) { problem(err); }
  } },
    el("h2", {}, "New event"),
    el("div", { class: "filters" },
      el("label", { for: "e-program" }, "Program", f.program),
      el("label", { for: "e-start" }, "Start (UTC)", f.start),
      el("label", { for: "e-duration" }, "Minutes", f.duration),
      el("label", { for: "e-level" }, "SIMPLE level", f.level)),
    el("div", { class: "filters" },
      el("label", { for: "e-q" }, "Pick DERs: name", f.q),
      el("label", { for: "e-cls" }, "class", f.cls), pick, picked),
    el("label", { for: "e-group" }, "Target group", f.group),
    el("label", { for: "e-devices" }, "Target DERs", f.devices),
    el("label", { for: "e-vens" }, "Target VENs", f.vens),
    el("p", {}, el("button", { type: "submit" }, "Create event")));
  return form;
}

async function responseChart(target, ev, resp) {
  const devices = [...new Set(ev.deliveries.flatMap(d => d.ders))].slice(0, 25);
  if (!devices.length) { target.replaceChildren(); return; }
  const hours = Math.min(24 * 7, Math.max(1, (Date.now() - Date.parse(resp.baseline_start)) / 3.6e6 + 0.1));
  const series = await Promise.all(devices.map(id =>
    api(`/ders/${encodeURIComponent(id)}/telemetry?hours=${hours.toFixed(2)}`).catch(() => ({ points: [] }))));
  const sum = new Map();
  for (const s of series) for (const p of s.points) {
    const t = Date.parse(p.at) / 1000;
    sum.set(t, (sum.get(t) || 0) + p.avg_w);
  }
  const xs = [...sum.keys()].sort((a, b) => a - b);
  if (xs.length < 2) { target.replaceChildren(el("p", { class: "muted" }, "not enough telemetry yet")); return; }
  await vendor("uplot");
  target.replaceChildren();
  const start = Date.parse(resp.event_start) / 1000;
  const end = resp.event_end ? Date.parse(resp.event_end) / 1000 : Infinity;
  new uPlot({ width: Math.max(260, Math.min(target.clientWidth || 500, 640)), height: 180,
    scales: { x: { time: true } },
    axes: [{}, { size: 60, values: (u, v) => v.map(watts) }],
    series: [{}, { label: `load of ${devices.length} targeted DERs`, stroke: "#1f5fbf", width: 1.5 },
      { label: "during the event", stroke: "#c62828", width: 2 }] },
    [xs, xs.map(x => sum.get(x)), xs.map(x => (x >= start && x < end ? sum.get(x) : null))], target);
}

async function eventDetail(panel, eventId, role, reload) {
  panel.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const resp = await api(`/events/${encodeURIComponent(eventId)}`, { raw: true });
    const etag = resp.headers.get("ETag");
    const ev = await resp.json();
    const measured = await api(`/events/${encodeURIComponent(eventId)}/response`).catch(() => null);
    const open = !["completed", "cancelled"].includes(ev.status_now) && role !== "prosumer";
    const level = el("select", { id: "m-level" }, ["0", "1", "2", "3"].map(v => el("option", { value: v }, v)));
    level.value = String(ev.signals[0]?.intervals[0]?.value ?? 1);
    const chart = el("div", { "data-testid": "response-chart" });
    panel.replaceChildren(
      el("h2", {}, `${ev.program} · ${ev.event_id}`),
      el("dl", { class: "kv" },
        el("dt", {}, "status"), el("dd", { "data-testid": "event-status" }, ev.status_now),
        el("dt", {}, "start"), el("dd", {}, when(ev.dtstart)),
        el("dt", {}, "duration"), el("dd", {}, `${Math.round(ev.duration_s / 60)} min`),
        el("dt", {}, "value now"), el("dd", {}, ev.values_now.map(v => `${v.signal_name} ${v.value}`).join(", ") || "–"),
        el("dt", {}, "modification"), el("dd", {}, String(ev.modification_number)),
        el("dt", {}, "answers"), el("dd", { "data-testid": "event-totals" },
          `${ev.totals.opted_in} optIn, ${ev.totals.opted_out} optOut, ${ev.totals.pending} pending, ${ev.totals.no_response} no response`)),
      open ? el("form", { class: "pager", onsubmit: async e => {
        e.preventDefault();
        const signals = ev.signals.map(s => ({ signal_name: s.signal_name, signal_type: s.signal_type,
          intervals: s.intervals.map(i => ({ duration_s: i.duration_s, value: Number(level.value) })) }));
        try {
          await api(`/events/${encodeURIComponent(eventId)}`, { method: "PATCH", body: { signals },
            headers: { "If-Match": etag } });
          toast("Event modified"); reload();
        } catch (err) { problem(err); }
      } }, el("label", { for: "m-level", class: "inline" }, "level ", level),
        el("button", { type: "submit", class: "secondary" }, "Modify"),
        el("button", { type: "button", class: "danger", onclick: async () => {
          if (!await confirmAction(`Cancel event ${ev.event_id}?`)) return;
          try {
            await api(`/events/${encodeURIComponent(eventId)}/cancel`, { method: "POST" });
            toast("Event cancelled"); reload();
          } catch (err) { problem(err); }
        } }, "Cancel event")) : null,
      el("h2", {}, "VENs"),
      table([
        { label: "VEN", value: d => el("a", { href: `#/vens/${encodeURIComponent(d.ven_id)}` }, d.ven_id.slice(0, 12)) },
        { label: "DERs", num: true, value: d => String(d.ders.length) },
        { label: "delivered", value: d => d.delivered_at ? `mod ${d.delivered_mod} ${d.delivered_at.slice(11, 19)}` : "not yet" },
        { label: "opt", value: d => el("span", { "data-opt": d.opt || "" }, d.opt || "–") },
        { label: "response", value: d => d.response },
        { label: "delivered W", num: true, value: d => {
          const v = measured && measured.vens.find(x => x.ven_id === d.ven_id);
          return v ? watts(v.delivered_w) : "–";
        } },
      ], ev.deliveries, null, "deliveries"),
      el("h2", {}, "Measured response"),
      el("p", { "data-testid": "measured" }, measured ? `baseline ${watts(measured.total.baseline_w)}, during ` +
        `${watts(measured.total.event_w)}, delivered ${watts(measured.total.delivered_w)} ` +
        `(${measured.total.ders_measured} of ${measured.total.ders} DERs measured)` : "–"),
      chart);
    if (measured) responseChart(chart, ev, measured);
  } catch (e) { panel.replaceChildren(el("p", { class: "error" }, e.message)); }
}

export function events(main, [selected], claims) {
  const list = el("div");
  const panel = el("aside", { class: "panel", "aria-label": "event detail" },
    el("p", { class: "muted" }, "Select an event."));
  let current = selected || null, stopped = false;
  const open = id => {
    current = id;
    history.replaceState(null, "", `#/events/${encodeURIComponent(id)}`);
    eventDetail(panel, id, claims.role, reload);
  };
  async function load() {
    try {
      const page = await api("/events?limit=200");
      if (stopped) return;
      const items = page.items.slice().sort((a, b) => b.dtstart.localeCompare(a.dtstart));
      list.replaceChildren(table([
        { label: "Program", value: e => e.program },
        { label: "Status", value: e => e.status_now },
        { label: "Start", value: e => when(e.dtstart) },
        { label: "Min", num: true, value: e => String(Math.round(e.duration_s / 60)) },
        { label: "Targets", cls: "hide-narrow", value: e => `${e.targets.ven_ids.length} VENs, ${e.targets.device_ids.length} DERs, ${(e.targets.groups || []).length} groups` },
      ], items.map(e => ({ ...e, __id: e.event_id })), e => open(e.event_id), "event-table"));
    } catch (e) { problem(e); }
  }
  function reload() { load(); if (current) eventDetail(panel, current, claims.role, reload); }
  main.append(el("h1", {}, "Events"),
    el("div", { class: "split" },
      el("section", { "aria-label": "events" }, list,
        claims.role === "prosumer" ? null : createForm(id => { load(); open(id); })),
      panel));
  load();
  if (current) eventDetail(panel, current, claims.role, reload);
  const s = stream({ kind: "event.created,event.modified,event.cancelled,event.status,event.opt" },
    throttle(reload, 2000));
  return () => { stopped = true; s.stop(); };
}
