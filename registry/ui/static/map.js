// Map: every DER with a location as a point coloured by liveness, clustered
// (Supercluster, so 100k points stay interactive), filtered like the DER table. Tiles
// come from the configured URL; without one the points sit on a plain background, so
// the map works with no internet.
import { api, el, problem, query, stream, throttle, vendor } from "./core.js";
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
  let stopped = false, map = null, renderer = null, layer = null, index = null, fitted = false;

  function init() {
    map = L.map(box, { preferCanvas: true, worldCopyJump: true, zoomControl: true })
      .setView([51, 10], 5);
    renderer = L.canvas({ padding: 0.3 });
    layer = L.layerGroup().addTo(map);
    map.on("moveend", render);
  }

  function render() {
    layer.clearLayers();
    if (!index) return;
    const t0 = performance.now();
    const b = map.getBounds();
    const zoom = Math.round(map.getZoom());
    const bbox = [Math.max(-180, b.getWest()), Math.max(-85, b.getSouth()),
      Math.min(180, b.getEast()), Math.min(85, b.getNorth())];
    for (const f of index.getClusters(bbox, zoom)) {
      const [lon, lat] = f.geometry.coordinates;
      const p = f.properties;
      if (p.cluster) {
        const n = p.point_count;
        const size = n < 100 ? 28 : n < 10000 ? 36 : 46;
        const icon = L.divIcon({ className: "", iconSize: [size, size],
          html: `<div class="cluster" style="width:${size}px;height:${size}px;background:${clusterColour(p)}">${p.point_count_abbreviated}</div>` });
        L.marker([lat, lon], { icon, keyboard: true, title: `${n} DERs` })
          .on("click", () => map.setView([lat, lon], Math.min(index.getClusterExpansionZoom(p.cluster_id), 18)))
          .addTo(layer);
      } else {
        L.circleMarker([lat, lon], { renderer, radius: 6, weight: 1, color: "#fff",
          fillColor: COLOURS[p.liveness] || "#555", fillOpacity: 0.9 })
          .bindPopup(`<a href="#/ders/${encodeURIComponent(p.id)}">${p.id.slice(0, 12)}…</a><br>${p.cls} · ${p.liveness}`)
          .addTo(layer);
      }
    }
    performance.measure("vtn:map-render", { start: t0 });  // clusters of the new view
  }

  async function load() {
    try {
      await vendor("leaflet", "supercluster");
      if (stopped) return;
      if (!map) init();
      if (!settings) settings = await fetch("config.json").then(r => r.json());
      if (settings.tile_url && !map._tiles) {
        map._tiles = L.tileLayer(settings.tile_url, { maxZoom: 19,
          attribution: settings.tile_attribution || "" }).addTo(map);
      }
      const t0 = performance.now();
      const data = await api(`/map${query(filterParams())}`);
      if (stopped) return;
      const features = data.points.map(([id, lat, lon, live, cls]) => ({ type: "Feature",
        geometry: { type: "Point", coordinates: [lon, lat] },
        properties: { id, liveness: live, cls } }));
      index = new Supercluster({ radius: 60, maxZoom: 16,
        map: p => ({ online: p.liveness === "online" ? 1 : 0, stale: p.liveness === "stale" ? 1 : 0,
          offline: p.liveness === "offline" ? 1 : 0 }),
        reduce: (a, b) => { a.online += b.online; a.stale += b.stale; a.offline += b.offline; } });
      index.load(features);
      const counts = { online: 0, stale: 0, offline: 0 };
      for (const f of features) counts[f.properties.liveness] = (counts[f.properties.liveness] || 0) + 1;
      status.textContent = `${features.length} DERs with a location (online ${counts.online}, ` +
        `stale ${counts.stale}, offline ${counts.offline}) · ${Math.round(performance.now() - t0)} ms` +
        (settings.tile_url ? "" : " · no tile server configured (api.ui_tile_url)");
      status.dataset.points = String(features.length);
      if (!fitted && features.length) {
        let s = 90, w = 180, n = -90, e = -180;
        for (const f of features) {
          const [lon, lat] = f.geometry.coordinates;
          s = Math.min(s, lat); n = Math.max(n, lat); w = Math.min(w, lon); e = Math.max(e, lon);
        }
        map.fitBounds([[s, w], [n, e]], { padding: [20, 20], maxZoom: 14 });
        fitted = true;
      }
      render();
      performance.mark("vtn:map");
    } catch (e) { problem(e); status.textContent = e.message; }
  }

  load();
  const s = stream({ kind: "ven.liveness,der.created,der.removed" }, throttle(load, 5000));
  return () => { stopped = true; s.stop(); if (map) map.remove(); };
}
