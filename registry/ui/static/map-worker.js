// The map's data off the page's thread: fetch every point, index them with
// Supercluster, answer cluster queries per view. The page stays interactive while
// 100k points load and index.
importScripts("vendor/supercluster-8.0.1/supercluster.min.js");

let index = null;

async function load({ id, url, token }) {
  const t0 = performance.now();
  const resp = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (!resp.ok) {
    let problem = { title: resp.statusText };
    try { problem = await resp.json(); } catch { /* not JSON */ }
    postMessage({ type: "error", id, status: resp.status, problem });
    return;
  }
  const body = await resp.json();
  const fetchMs = performance.now() - t0;
  const counts = { online: 0, stale: 0, offline: 0 };
  let s = 90, w = 180, n = -90, e = -180;
  const features = body.points.map(([device, lat, lon, live, cls]) => {
    counts[live] = (counts[live] || 0) + 1;
    if (lat < s) s = lat; if (lat > n) n = lat; if (lon < w) w = lon; if (lon > e) e = lon;
    return { type: "Feature", geometry: { type: "Point", coordinates: [lon, lat] },
      properties: { id: device, liveness: live, cls } };
  });
  const t1 = performance.now();
  index = new Supercluster({ radius: 60, maxZoom: 16,
    map: p => ({ online: p.liveness === "online" ? 1 : 0, stale: p.liveness === "stale" ? 1 : 0,
      offline: p.liveness === "offline" ? 1 : 0 }),
    reduce: (a, b) => { a.online += b.online; a.stale += b.stale; a.offline += b.offline; } });
  index.load(features);
  postMessage({ type: "loaded", id, count: features.length, counts,
    bounds: features.length ? [[s, w], [n, e]] : null, fetchMs,
    indexMs: performance.now() - t1 });
}

function clusters({ id, bbox, zoom }) {
  const items = (index ? index.getClusters(bbox, zoom) : []).map(f => {
    const [lon, lat] = f.geometry.coordinates;
    const p = f.properties;
    return p.cluster
      ? { lat, lon, cluster: true, count: p.point_count, abbr: p.point_count_abbreviated,
          zoom: index.getClusterExpansionZoom(p.cluster_id), online: p.online, stale: p.stale,
          offline: p.offline }
      : { lat, lon, cluster: false, id: p.id, liveness: p.liveness, cls: p.cls };
  });
  postMessage({ type: "clusters", id, items });
}

self.onmessage = ({ data }) => {
  if (data.type === "load") {
    load(data).catch(e => postMessage({ type: "error", id: data.id, problem: { title: String(e) } }));
  } else if (data.type === "clusters") {
    clusters(data);
  }
};
