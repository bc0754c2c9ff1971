// Entry point: sign-in, the hash router, and the screen lifecycle (each screen
// renders into <main> and returns a function that stops its streams and timers).
import { api, claims, el, problem, setToken, token } from "./core.js";

// each screen's module loads the first time it is shown (the overview needs only its own)
const SCREENS = {
  overview: () => import("./overview.js").then(m => m.overview),
  ders: () => import("./ders.js").then(m => m.ders),
  map: () => import("./map.js").then(m => m.mapScreen),
  vens: () => import("./vens.js").then(m => m.vens),
  groups: () => import("./groups.js").then(m => m.groupsScreen),
  events: () => import("./events.js").then(m => m.events),
  log: () => import("./log.js").then(m => m.logScreen),
};
let routed = 0;
const main = document.getElementById("main");
let cleanup = null;

function signIn(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  const area = el("textarea", { id: "token", name: "token", required: true, autocomplete: "off",
    spellcheck: "false", "aria-describedby": "token-help" });
  const error = el("p", { class: "error", id: "signin-error", role: "alert" }, message || "");
  const form = el("form", { class: "signin panel", onsubmit: async e => {
    e.preventDefault();
    setToken(area.value.trim());
    try {
      await api("/overview");
      route();
    } catch (err) {
      setToken(null);
      error.textContent = err.status === 401 ? "This token is not accepted (expired, or signed "
        + "with another key)." : String(err.message || err);
    }
  } },
    el("h1", {}, "Sign in"),
    el("label", { for: "token" }, "Bearer token"),
    area,
    el("p", { class: "muted", id: "token-help" },
      "A token of the API's roles: ", el("code", {}, "vtn token issue --role service"),
      " (or --role aggregator --aggregator ID, --role prosumer --account ID)."),
    error,
    el("button", { type: "submit" }, "Sign in"));
  main.replaceChildren(form);
  area.focus();
}

async function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  const mine = ++routed;
  if (!token()) { signIn(); return; }
  const c = claims();
  document.getElementById("nav").hidden = false;
  document.getElementById("signout").hidden = false;
  const scope = c.role === "aggregator" ? ` · ${c.aggregator_id}`
    : c.role === "prosumer" ? ` · ${c.account_id}` : "";
  document.getElementById("who").textContent = `${c.sub || "?"} (${c.role || "?"}${scope})`;
  const [name, ...rest] = (location.hash.replace(/^#\/?/, "") || "overview").split("/");
  const load = SCREENS[name] || SCREENS.overview;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.replaceChildren();
  try {
    const screen = await load();
    if (mine !== routed) return;  // another route started meanwhile
    cleanup = screen(main, rest.map(decodeURIComponent), c) || null;
  } catch (e) { problem(e); }
}

window.addEventListener("hashchange", route);
window.addEventListener("vtn:unauthorized", () => {
  setToken(null);
  if (cleanup) { cleanup(); cleanup = null; }
  signIn("Your token expired or was refused: sign in again.");
});
document.getElementById("signout").addEventListener("click", () => {
  setToken(null);
  route();
});
route();
