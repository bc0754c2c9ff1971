// VENs: last contact, liveness, pending outbox, certificate fingerprint, and the
// operator's actions (re-register, cancel registration) behind a confirmation.
import { api, confirmAction, el, LIVENESS, liveness, problem, query, stream, table, throttle,
  toast, when } from "./core.js";

const filter = { text: "", liveness: "" };

async function venDetail(panel, venId, role) {
  panel.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const [v, logs] = await Promise.all([api(`/vens/${encodeURIComponent(venId)}`),
      api(`/log/recent${query({ ven_id: venId, limit: 15 })}`)]);
    const act = async (path, what) => {
      if (!await confirmAction(`${what} ${v.ven_name}?`)) return;
      try {
        await api(`/vens/${encodeURIComponent(venId)}/${path}`, { method: "POST" });
        toast(`${what}: queued for ${v.ven_name}'s next poll`);
      } catch (e) { problem(e); }
    };
    panel.replaceChildren(
      el("h2", {}, v.ven_name),
      el("dl", { class: "kv", "data-testid": "ven-detail" },
        el("dt", {}, "venID"), el("dd", {}, v.ven_id),
        el("dt", {}, "role"), el("dd", {}, v.role),
        el("dt", {}, "registered"), el("dd", {}, v.registered ? `yes, ${when(v.registered_at)}` : "no"),
        el("dt", {}, "liveness"), el("dd", {}, liveness(v.liveness)),
        el("dt", {}, "last contact"), el("dd", {}, when(v.last_seen)),
        el("dt", {}, "tenant"), el("dd", {}, `${v.aggregator_id || "–"} / ${v.account_id || "–"}`),
        el("dt", {}, "certificate"), el("dd", {}, v.fingerprint || "none bound"),
        el("dt", {}, "poll every"), el("dd", {}, `${v.poll_freq_s} s`)),
      role === "prosumer" ? null : el("p", { class: "pager" },
        el("button", { type: "button", class: "secondary", disabled: !v.registered,
          onclick: () => act("reregister", "Request re-registration of") }, "Re-register"),
        el("button", { type: "button", class: "danger", disabled: !v.registered,
          onclick: () => act("cancel-registration", "Cancel the registration of") }, "Cancel registration")),
      el("h2", {}, `DERs (${v.ders.length})`),
      table([{ label: "Name", value: d => el("a", { href: `#/ders/${encodeURIComponent(d.device_id)}` }, d.device_name || d.device_id) },
             { label: "Class", value: d => d.device_class },
             { label: "Liveness", value: d => liveness(d.liveness) }], v.ders, null, "ven-ders"),
      el("h2", {}, "Log"),
      table([{ label: "seq", num: true, value: e => String(e.seq) },
             { label: "at", value: e => e.at.slice(11, 19) },
             { label: "kind", value: e => e.kind }], logs.items, null, "ven-log"));
  } catch (e) { panel.replaceChildren(el("p", { class: "error" }, e.message)); }
}

export function vens(main, [selected], claims) {
  const results = el("div");
  const count = el("p", { class: "muted", "data-testid": "ven-count" });
  const panel = el("aside", { class: "panel", "aria-label": "VEN detail" },
    el("p", { class: "muted" }, "Select a VEN."));
  let current = selected || null, stopped = false, items = [];

  function show() {
    const t = filter.text.toLowerCase();
    const rows = items.filter(v => (!t || v.ven_name.toLowerCase().includes(t) || v.ven_id.includes(t))
      && (!filter.liveness || v.liveness === filter.liveness));
    count.textContent = `${rows.length} of ${items.length} VENs`;
    results.replaceChildren(table([
      { label: "Name", value: v => v.ven_name },
      { label: "Liveness", value: v => liveness(v.liveness) },
      { label: "Last contact", value: v => when(v.last_seen) },
      { label: "Outbox", num: true, value: v => String(v.pending_outbox ?? 0) },
      { label: "Registered", cls: "hide-narrow", value: v => v.registered ? "yes" : "no" },
      { label: "Certificate", cls: "hide-narrow", value: v => v.fingerprint ? v.fingerprint.slice(0, 16) + "…" : "–" },
      { label: "Tenant", cls: "hide-narrow", value: v => v.aggregator_id || v.account_id || "–" },
    ], rows.map(v => ({ ...v, __id: v.ven_id })), (v, tr) => {
      current = v.ven_id;
      for (const r of results.querySelectorAll("tr.sel")) r.classList.remove("sel");
      tr.classList.add("sel");
      history.replaceState(null, "", `#/vens/${encodeURIComponent(v.ven_id)}`);
      venDetail(panel, v.ven_id, claims.role);
    }, "ven-table"));
    const sel = current && results.querySelector(`tr[data-id="${CSS.escape(current)}"]`);
    if (sel) sel.classList.add("sel");
  }

  async function load() {
    try {
      items = (await api("/vens")).items;
      if (!stopped) show();
    } catch (e) { problem(e); }
  }
  const text = el("input", { type: "search", id: "v-text", value: filter.text,
    oninput: e => { filter.text = e.target.value; show(); } });
  const live = el("select", { id: "v-live", onchange: e => { filter.liveness = e.target.value; show(); } },
    el("option", { value: "" }, "any"), LIVENESS.map(s => el("option", { value: s }, s)));
  live.value = filter.liveness;
  main.append(el("h1", {}, "VENs"),
    el("form", { class: "filters", role: "search", onsubmit: e => e.preventDefault() },
      el("label", { for: "v-text" }, "Name or id", text),
      el("label", { for: "v-live" }, "Liveness", live)),
    el("div", { class: "split" }, el("section", { "aria-label": "VEN list" }, count, results), panel));
  load();
  if (current) venDetail(panel, current, claims.role);
  const refresh = throttle(() => { load(); if (current) venDetail(panel, current, claims.role); }, 3000);
  const s = stream({ kind: "ven.liveness,ven.registered,ven.reregistered,ven.registration_cancelled,ven.cancel_requested,ven.reregistration_requested" }, refresh);
  return () => { stopped = true; s.stop(); };
}
