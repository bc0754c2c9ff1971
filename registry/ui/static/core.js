// What every screen shares: the signed-in token, API calls, the live log stream,
// DOM helpers and formatting. The page only ever calls /api/v1 with the operator's
// bearer token; the API scopes every answer to it.

const TOKEN_KEY = "vtn.token";
export const API = "/api/v1";

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
}

// The claims of the token, for display only (the server decides what it may see).
export function claims() {
  try {
    const part = (token() || "").split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch { return {}; }
}

export class ApiError extends Error {
  constructor(status, problem) {
    const fields = (problem.errors || []).map(e => `${e.field}: ${e.message}`).join("; ");
    super(`${problem.title || status}${problem.detail ? ": " + problem.detail : ""}` +
          (fields ? ` (${fields})` : ""));
    this.status = status; this.problem = problem;
  }
}

export async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const h = { Authorization: `Bearer ${token()}`, ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  const resp = await fetch(API + path, { method, headers: h,
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (resp.status === 401) { window.dispatchEvent(new CustomEvent("vtn:unauthorized")); }
  if (!resp.ok) {
    let problem = { title: resp.statusText };
    try { problem = await resp.json(); } catch { /* not JSON */ }
    throw new ApiError(resp.status, problem);
  }
  if (raw) return resp;
  return resp.status === 204 ? null : resp.json();
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    q.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

// The change log as Server-Sent Events, read with fetch (EventSource cannot send a
// bearer token), from `from` (a seq; default: the log's tail, i.e. from now on).
// Reconnects with the last seq seen; stop() ends it.
export function stream(params, onEntry, onState = () => {}, from = null) {
  let stopped = false, after = from, ctrl = null;
  async function run() {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        if (after === null) after = (await api("/overview/tail")).last_seq;
        const headers = { Authorization: `Bearer ${token()}` };
        if (after !== null) headers["Last-Event-ID"] = String(after);
        const resp = await fetch(API + "/log/stream" + query(params),
                                 { headers, signal: ctrl.signal });
        if (!resp.ok) throw new Error(`stream ${resp.status}`);
        onState(true);
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const frame = buf.slice(0, i); buf = buf.slice(i + 2);
            let data = null, id = null;
            for (const line of frame.split("\n")) {
              if (line.startsWith("data: ")) data = line.slice(6);
              else if (line.startsWith("id: ")) id = line.slice(4);
            }
            if (id !== null) after = Number(id);
            if (data) onEntry(JSON.parse(data));
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState(false);
      if (!stopped) await new Promise(r => setTimeout(r, 2000));
    }
  }
  run();
  return { stop() { stopped = true; if (ctrl) ctrl.abort(); } };
}

// Calls fn at most once per `ms`, the last call always runs.
export function throttle(fn, ms) {
  let timer = null, pending = false;
  return () => {
    if (timer) { pending = true; return; }
    fn();
    timer = setTimeout(function tick() {
      timer = null;
      if (pending) { pending = false; fn(); timer = setTimeout(tick, ms); }
    }, ms);
  };
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function watts(w) {
  if (w === null || w === undefined) return "–";
  const a = Math.abs(w);
  if (a >= 1e9) return (w / 1e9).toFixed(2) + " GW";
  if (a >= 1e6) return (w / 1e6).toFixed(2) + " MW";
  if (a >= 1e3) return (w / 1e3).toFixed(1) + " kW";
  return w.toFixed(0) + " W";
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  const ago = Math.abs(s) < 90 ? `${s}s` : Math.abs(s) < 5400 ? `${Math.round(s / 60)}m`
    : Math.abs(s) < 172800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
  return `${d.toISOString().replace("T", " ").slice(0, 19)} (${s >= 0 ? ago + " ago" : "in " + ago.replace("-", "")})`;
}

export function liveness(state) {
  return el("span", { class: state, "data-liveness": state }, el("span", { class: `dot ${state}`,
    "aria-hidden": "true" }), state);
}

export function toast(text, isError = false) {
  const box = document.getElementById("toast");
  const item = el("div", { class: isError ? "error" : "" }, text);
  box.append(item);
  setTimeout(() => item.remove(), isError ? 8000 : 4000);
}

export function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise(resolve => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-ok").focus();
  });
}

// A table whose rows are clickable and keyboard reachable (Enter / Space selects).
export function table(columns, rows, onSelect, testid) {
  const head = el("tr", {}, columns.map(c => el("th", { class: c.num ? "num" : c.cls, scope: "col" }, c.label)));
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr", onSelect ? { tabindex: "0" } : {},
      columns.map(c => {
        const v = c.value(row);
        return el("td", { class: c.num ? "num" : c.cls }, v instanceof Node ? v : (v ?? "–"));
      }));
    if (row.__id) tr.dataset.id = row.__id;
    if (onSelect) {
      tr.addEventListener("click", () => onSelect(row, tr));
      tr.addEventListener("keydown", e => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onSelect(row, tr); }
      });
    }
    body.append(tr);
  }
  return el("div", { class: "scroll" }, el("table", { "data-testid": testid }, el("thead", {}, head), body));
}

export function problem(e) {
  toast(e instanceof ApiError ? e.message : String(e), true);
}

// The vendored libraries, loaded once on first use so the overview needs none of them.
const VENDOR = {
  leaflet: ["vendor/leaflet-1.9.4/leaflet.js", "vendor/leaflet-1.9.4/leaflet.css"],
  supercluster: ["vendor/supercluster-8.0.1/supercluster.min.js"],
  uplot: ["vendor/uplot-1.6.31/uPlot.iife.min.js", "vendor/uplot-1.6.31/uPlot.min.css"],
};
const loaded = new Map();
export function vendor(...names) {
  return Promise.all(names.flatMap(name => VENDOR[name]).map(file => {
    if (!loaded.has(file)) {
      loaded.set(file, new Promise((resolve, reject) => {
        const url = new URL(`static/${file}`, document.baseURI).href;
        const node = file.endsWith(".css")
          ? el("link", { rel: "stylesheet", href: url }) : el("script", { src: url });
        node.addEventListener("load", resolve);
        node.addEventListener("error", () => reject(new Error(`could not load ${file}`)));
        document.head.append(node);
      }));
    }
    return loaded.get(file);
  }));
}

export const DEVICE_CLASSES = ["hvacDevice", "dhwDevice", "lightingLoad", "pvSystem",
  "storageDevice", "evCharger", "otherLoad"];
export const DEVICE_TYPES = ["Demand", "Generation", "Storage"];
export const LIVENESS = ["online", "stale", "offline"];
