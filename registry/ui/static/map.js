// Map: every DER with a location as a point coloured by liveness, clustered by
// Supercluster in a worker (map-worker.js), so 100k points load and stay interactive,
// filtered like the DER table. Tiles come from the configured URL; without one the
// points sit on a plain background, so the map works with no internet.
import { API, ApiError, el, problem, query, stream, throttle, token, vendor } from "./core.js";
import { filterParams, searchForm } from "./ders.js";

const COLOURS = { online: "#1a7f37", stale: "#b26b00", offline: "#c62828" };
let settings = null;

function clusterColour(p) {
  if (p.offline > 0 && p.offline >= p.online) return COLOURS.offline;
  if (p.stale > p.online) return COLOURS.stale;
  return p.offline > 0 ? "#7a6a1a" : COLOURS.online;
}

export function mapScreen(main) {
  const status = el("p", { class: "muted", "data-testid": "map-count", "aria-live": "polite" }, "Loading…");
  const box = el("div", { id: "map", "data-testid": "map", role: "region", "aria-label": "DER map" });
  const form = searchForm(() => load(), false);
  main.append(el("h1", {}, "Map"), form, status, box);
  let stopped = false, map = null, renderer = null, layer = null, fitted = false;
  let seq = 0, loadId = 0, viewId = 0, loadStart = 0;
  const asked = new Map();  // request id -> performance.now() when the view was asked for
  const worker = new Worker(new URL("static/map-worker.js", document.baseURI));

  function init() {
    map = L.map(box, { preferCanvas: true, worldCopyJump: true, zoomControl: true })
      .setView([51, 10], 5);
    renderer = L.canvas({ padding: 0.3 });
    layer = L.layerGroup().addTo(map);
    map.on("moveend", askView);
  }

  function askView() {
    const b = map.getBounds();
    viewId = ++seq;
    asked.set(viewId, performance.now());
    worker.postMessage({ type: "clusters", id: viewId, zoom: Math.round(map.getZoom()),
      bbox: [Math.max(-180, b.getWest()), Math.max(-85, b.getSouth()),
        Math.min(180, b.getEast()), Math.min(85, b.getNorth())] });
  }

  function draw(items) {
    layer.clearLayers();
    for (const p of items) {
      if (p.cluster) {
        const size = p.count < 100 ? 28 : p.count < 10000 ? 36 : 46;
        const icon = L.divIcon({ className: "", iconSize: [size, size],
          html: `<div class="cluster" style="width:${size}px;height:${size}px;background:${clusterColour(p)}">${p.abbr}</div>` });
        L.marker([p.lat, p.lon], { icon, keyboard: true, title: `${p.count} DERs` })
          .on("click", () => map.setView([p.lat, p.lon], Math.min(p.zoom, 18)))
          .addTo(layer);
      } else {
        L.circleMarker([p.lat, p.lon], { renderer, radius: 6, weight: 1, color: "#fff",
          fillColor: COLOURS[p.liveness] || "#555", fillOpacity: 0.9 })
          .bindPopup(() => el("div", {},  // built as nodes: nothing from the API is parsed as HTML
            el("a", { href: `#/ders/${encodeURIComponent(p.id)}` }, `${p.id.slice(0, 12)}…`),
            el("br"), `${p.cls} · ${p.liveness}`))
          .addTo(layer);
      }
    }
  }

  worker.onmessage = ({ data }) => {
    if (stopped) return;
    if (data.type === "error") {
      if (data.status === 401) window.dispatchEvent(new CustomEvent("vtn:unauthorized"));
      const err = new ApiError(data.status || 0, data.problem || {});
      problem(err); status.textContent = err.message;
    } else if (data.type === "loaded" && data.id === loadId) {
      const c = data.counts;
      status.textContent = `${data.count} DERs with a location (online ${c.online || 0}, ` +
        `stale ${c.stale || 0}, offline ${c.offline || 0}) · loaded in ` +
        `${Math.round(performance.now() - loadStart)} ms` +
        (settings.tile_url ? "" : " · no tile server configured (api.ui_tile_url)");
      status.dataset.points = String(data.count);
      performance.measure("vtn:map-fetch", { start: loadStart, duration: data.fetchMs });
      performance.measure("vtn:map-index", { start: loadStart + data.fetchMs, duration: data.indexMs });
      if (!fitted && data.bounds) {
        map.fitBounds(data.bounds, { padding: [20, 20], maxZoom: 14, animate: false });
        fitted = true;
      }
      askView();
      performance.mark("vtn:map");
    } else if (data.type === "clusters" && data.id === viewId) {
      draw(data.items);
      performance.measure("vtn:map-render", { start: asked.get(data.id) });  // ask -> drawn
      asked.clear();
    }
  };

  async function load() {
    try {
      await vendor("leaflet");
      if (stopped) return;
      if (!map) init();
      if (!settings) settings = await fetch("config.json").then(r => r.json());
      if (settings.tile_url && !map._tiles) {
        map._tiles = L.tileLayer(settings.tile_url, { maxZoom: 19,
          attribution: settings.tile_attribution || "" }).addTo(map);
      }
      loadStart = performance.now();
      loadId = ++seq;
      worker.postMessage({ type: "load", id: loadId, token: token(),
        url: new URL(`${API}/map${query(filterParams())}`, location.origin).href });
    } catch (e) { problem(e); status.textContent = e.message; }
  }

  load();
  const s = stream({ kind: "ven.liveness,der.created,der.removed" }, throttle(load, 5000));
  return () => { stopped = true; s.stop(); worker.terminate(); if (map) map.remove(); };
}
