// DER groups: list, status roll-up and members, create one from the DER search's
// filters, delete (confirmed). Groups are the API's (/api/v1/groups), scoped like it.
import { api, confirmAction, el, liveness, problem, table, toast, watts } from "./core.js";
import { filterParams } from "./ders.js";

const LISTS = ["device_class", "device_type", "liveness", "ven_id"];

// the DER search's filters as a group's JSON filters (lists as arrays)
function searchFilters() {
  const out = {};
  for (const [k, v] of Object.entries(filterParams())) {
    if (LISTS.includes(k)) out[k] = String(v).split(",");
    else if (k === "dr_availability") out[k] = v === "true";
    else if (k === "max_capacity_min") out[k] = Number(v);
    else out[k] = v;
  }
  return out;
}

async function groupDetail(panel, group, role, reload) {
  panel.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try {
    const id = encodeURIComponent(group.group_id);
    const [st, members] = await Promise.all([api(`/groups/${id}/status`),
      api(`/groups/${id}/members?limit=100`)]);
    const live = st.liveness || {};
    panel.replaceChildren(
      el("h2", {}, group.name),
      el("dl", { class: "kv", "data-testid": "group-status" },
        el("dt", {}, "owner"), el("dd", {}, group.aggregator_id || "service"),
        el("dt", {}, "filters"), el("dd", {}, group.filters ? JSON.stringify(group.filters) : "static"),
        el("dt", {}, "members"), el("dd", { "data-testid": "group-members" }, String(st.members)),
        el("dt", {}, "liveness"), el("dd", {}, `online ${live.online || 0}, stale ${live.stale || 0}, offline ${live.offline || 0}`),
        el("dt", {}, "DR available"), el("dd", {}, String(st.dr_available)),
        el("dt", {}, "in an active event"), el("dd", {}, String(st.in_active_event)),
        el("dt", {}, "Σ max / available"), el("dd", {}, `${watts(st.total?.max_capacity_w)} / ${watts(st.total?.available_capacity_w)}`)),
      role === "prosumer" || group.name === "all" ? null : el("p", {},
        el("button", { type: "button", class: "danger", onclick: async () => {
          if (!await confirmAction(`Delete group ${group.name}?`)) return;
          try {
            await api(`/groups/${id}`, { method: "DELETE" });
            toast(`Group ${group.name} deleted`); reload();
          } catch (e) { problem(e); }
        } }, "Delete group")),
      el("h2", {}, `Members${members.next_cursor ? " (first 100)" : ""}`),
      table([
        { label: "DER", value: d => el("a", { href: `#/ders/${encodeURIComponent(d.device_id)}` }, d.device_id.slice(0, 12)) },
        { label: "Class", value: d => d.device_class },
        { label: "Liveness", value: d => liveness(d.liveness) },
        { label: "Max", num: true, value: d => watts(d.max_capacity) },
      ], members.items, null, "group-member-table"));
  } catch (e) { panel.replaceChildren(el("p", { class: "error" }, e.message)); }
}

export function groupsScreen(main, _args, claims) {
  const list = el("div");
  const panel = el("aside", { class: "panel", "aria-label": "group detail" },
    el("p", { class: "muted" }, "Select a group."));
  let stopped = false;
  async function load() {
    try {
      const page = await api("/groups");
      if (stopped) return;
      list.replaceChildren(table([
        { label: "Name", value: g => g.name },
        { label: "Owner", value: g => g.aggregator_id || "service" },
        { label: "Kind", value: g => g.filters ? (g.includes || g.excludes ? "mixed" : "dynamic") : "static" },
        { label: "Filters", cls: "hide-narrow", value: g => g.filters ? JSON.stringify(g.filters).slice(0, 60) : "–" },
      ], page.items.map(g => ({ ...g, __id: g.group_id })), g => groupDetail(panel, g, claims.role, load),
      "group-table"));
    } catch (e) {
      list.replaceChildren(el("p", { class: "error" }, e.status === 403 ? "Groups are for service and aggregator tokens." : e.message));
    }
  }
  const name = el("input", { id: "g-name", required: true, maxlength: "64", placeholder: "evs-north" });
  const owner = el("input", { id: "g-owner", placeholder: "aggregator id (empty: service)" });
  const form = el("form", { class: "panel", "data-testid": "group-form", onsubmit: async e => {
    e.preventDefault();
    const body = { name: name.value.trim(), filters: searchFilters() };
    if (claims.role === "service" && owner.value.trim()) body.aggregator_id = owner.value.trim();
    try {
      const g = await api("/groups", { method: "POST", body });
      toast(`Group ${g.name} created`);
      await load();
      groupDetail(panel, g, claims.role, load);
    } catch (err) { problem(err); }
  } },
    el("h2", {}, "New group from the DER search"),
    el("p", { class: "muted" }, "Filters: ", el("code", {}, JSON.stringify(searchFilters())),
      " (set them on the DERs screen)."),
    el("div", { class: "filters" },
      el("label", { for: "g-name" }, "Name", name),
      claims.role === "service" ? el("label", { for: "g-owner" }, "Owner", owner) : null,
      el("button", { type: "submit" }, "Create group")));
  main.append(el("h1", {}, "Groups"),
    el("div", { class: "split" },
      el("section", { "aria-label": "groups" }, list, claims.role === "prosumer" ? null : form),
      panel));
  load();
  return () => { stopped = true; };
}
