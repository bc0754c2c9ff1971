"""Dashboard load times in a real browser: ``python bench/dashboard_bench.py --n 100000``.

Builds (once, kept under ``--db``) a SQLite store of N DERs with ``bench/api_bench.py``'s
generator (towns around Berlin, 80 % online) plus their VENs (one per three DERs),
serves it with ``vtn serve`` and loads the dashboard in headless chromium (Debian's,
driven by Playwright):

* overview: navigation start -> the numbers rendered (the page's ``vtn:overview`` mark),
  and the page's load event (Navigation Timing);
* DER search, first table page (50 rows, sorted by name, with the total): start ->
  ``vtn:ders-table``;
* map: start -> all N points fetched and indexed (in a worker) and drawn (``vtn:map``),
  then 12 zoom / pan steps, each timed from the view change to the clusters drawn
  (``vtn:map-render`` measures);
* for each screen the longest main-thread task while it loaded (Long Tasks API): how
  long the page could not react to the operator.

Baseline in the same run: the same API calls made with fetch from the same page (what
any client pays), so ``ratio`` is the page's own cost on top. Each figure is the median
of ``--runs`` fresh page loads; ``--markdown`` prints rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from api_bench import generate  # noqa: E402

from registry.api.auth import issue_token  # noqa: E402
from registry.models import Liveness, Ven  # noqa: E402
from registry.port import SERVICE, Batch  # noqa: E402
from tests.browser_support import CHROMIUM_ARGS, chromium_path  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from vtn.app import make_store  # noqa: E402
from vtn.config import Config, load_config  # noqa: E402

DERS_PAGE = ("/api/v1/ders?sort=device_name&limit=50&total=true&fields=device_id,device_name,"
             "device_class,device_type,liveness,max_capacity,available_capacity,ven_id,updated_at")


async def build(config: Config, n: int) -> None:
    store = make_store(config)
    await store.open()
    try:
        if await store.count_ders(SERVICE) == n:
            return
        await generate(store, n)
        vens = [Ven(ven_id=f"ven-{a:07d}", ven_name=f"osb-{a:07d}", account_id=f"acct-{a:07d}",
                    aggregator_id=f"agg-{a % 10:02d}", registered=True,
                    liveness=Liveness.ONLINE if a % 7 else Liveness.OFFLINE)
                for a in range((n + 2) // 3)]
        for i in range(0, len(vens), 20_000):
            await store.commit(Batch(vens=vens[i:i + 20_000]))
    finally:
        await store.close()


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "vtn.cli", "serve", "--data-dir", str(data_dir), "--port",
         str(port)], env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("vtn serve did not start")


# the longest main-thread task while the screen loads: how long the page could not react
LONG_TASKS = """window.__longest = 0;
new PerformanceObserver(l => { for (const e of l.getEntries())
  window.__longest = Math.max(window.__longest, e.duration); }).observe({type: "longtask"});"""

FETCH_MS = """async ([path, token]) => {
  const t0 = performance.now();
  const r = await fetch(path, {headers: {Authorization: `Bearer ${token}`}});
  await r.json();
  return performance.now() - t0;
}"""


def load(browser: Any, base: str, token: str, screen: str, mark: str, selector: str,
         timeout_ms: float = 120_000) -> dict[str, float]:
    # bypass_csp: wait_for_function evaluates its predicate with eval, which the page's
    # Content-Security-Policy (rightly) forbids
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    ctx.add_init_script(f"sessionStorage.setItem('vtn.token', {json.dumps(token)})")
    ctx.add_init_script(LONG_TASKS)
    page = ctx.new_page()
    page.goto(f"{base}/ui/#/{screen}")
    page.wait_for_selector(selector, timeout=timeout_ms)
    page.wait_for_function(f"performance.getEntriesByName('{mark}').length > 0",
                           timeout=timeout_ms)
    nav = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
      return {dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }""")
    out = {"ready_ms": page.evaluate(f"performance.getEntriesByName('{mark}')[0].startTime"),
           "load_ms": nav["load"], "dcl_ms": nav["dcl"], "page": page, "ctx": ctx,
           "longest_task_ms": page.evaluate("window.__longest")}
    return out


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def map_interaction(page: Any) -> list[float]:
    """Zoom in four steps, pan, zoom out: the render time of each new view (ms)."""
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate("performance.clearMeasures('vtn:map-render')")
    steps = 0
    for dx, dy, wheel in ((0, 0, -300), (0, 0, -300), (0, 0, -300), (0, 0, -300),
                          (200, 0, 0), (0, 150, 0), (-300, 0, 0), (0, -200, 0),
                          (0, 0, 300), (0, 0, 300), (0, 0, 300), (0, 0, 300)):
        page.mouse.move(cx, cy)
        if wheel:
            page.mouse.wheel(0, wheel)
        else:
            page.mouse.down()
            page.mouse.move(cx + dx, cy + dy, steps=5)
            page.mouse.up()
        steps += 1
        page.wait_for_function(
            f"performance.getEntriesByName('vtn:map-render').length >= {steps}", timeout=30_000)
        page.wait_for_timeout(350)  # let the zoom animation end before the next step
    return [e for e in page.evaluate(
        "performance.getEntriesByName('vtn:map-render').map(e => e.duration)")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--db", type=Path, default=None, help="data dir (kept; default /tmp)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    browser_path = chromium_path()
    if browser_path is None:
        raise SystemExit("no chromium: apt-get install -y chromium (or CHROMIUM=/path)")
    data_dir = args.db or Path(f"/tmp/dashboard-bench-{args.n}")
    config = load_config(None, data_dir=data_dir)
    asyncio.run(build(config, args.n))
    port = free_port()
    proc = serve(data_dir, port)
    base = f"http://127.0.0.1:{port}"
    token = issue_token(config, "service", ttl_s=3600)
    from playwright.sync_api import sync_playwright

    results: list[tuple[str, float, float, float]] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, headless=True,
                                         args=CHROMIUM_ARGS)
            screens = (("overview", "vtn:overview", "[data-testid=overview] .cards",
                        "/api/v1/overview"),
                       ("DER table, first page", "vtn:ders-table",
                        "[data-testid=der-table] tbody tr", DERS_PAGE),
                       ("map, all points", "vtn:map", "[data-testid=map-count][data-points]",
                        "/api/v1/map"))
            renders: list[float] = []
            for name, mark, selector, api_path in screens:
                screen = {"vtn:overview": "overview", "vtn:ders-table": "ders"}.get(mark, "map")
                rows, fetches = [], []
                for _ in range(args.runs):
                    r = load(browser, base, token, screen, mark, selector)
                    fetches.append(r["page"].evaluate(FETCH_MS, [api_path, token]))
                    if screen == "map" and not renders:
                        renders = map_interaction(r["page"])
                    r["ctx"].close()
                    rows.append(r)
                ready, api_ms = median(rows, "ready_ms"), statistics.median(fetches)
                results.append((name, ready, median(rows, "load_ms"), api_ms,
                                median(rows, "longest_task_ms")))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
    for name, ready, load_ms, api_ms, longest in results:
        if args.markdown:
            print(f"| {args.n:,} | {name} | {ready:.0f} | {load_ms:.0f} | {api_ms:.0f} | "
                  f"{ready / api_ms:.1f} | {longest:.0f} |")
        else:
            print(json.dumps({"n": args.n, "screen": name, "ready_ms": round(ready),
                              "load_event_ms": round(load_ms), "api_fetch_ms": round(api_ms),
                              "ratio": round(ready / api_ms, 2),
                              "longest_task_ms": round(longest)}))
    if renders:
        srt = sorted(renders)
        print(json.dumps({"n": args.n, "map_render_ms": {
            "steps": len(srt), "p50": round(statistics.median(srt), 1), "max": round(srt[-1], 1)}}))


if __name__ == "__main__":
    main()
