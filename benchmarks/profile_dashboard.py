"""Where a run page's first paint goes: every request of one load, on the page's own clock.

``bench_dashboard`` times navigation → first job rows; this says what fills that time. A
synthetic run is seeded into SQLite, a real gateway (gunicorn + gevent) serves the dashboard,
headless Chromium loads the run page (after a warm-up load, as a returning user would), and
the script prints, in start order, every resource the page fetched (start, end, size) and, for
each Dash callback request, the outputs it asked for, as a wrapper around ``fetch`` installed
before the page's own scripts saw them. Also: the navigation's own milestones and the main
thread's long tasks.

    .venv/bin/python -m benchmarks.profile_dashboard [--jobs 1000] [--loads 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_dashboard import FIRST_ROWS_JS  # noqa: E402
from benchmarks.common import AMQP_URL, amqp_namespace  # noqa: E402
from snakedeck.settings import Settings  # noqa: E402
from tests.browser.helpers import seed_run, start_chrome  # noqa: E402
from tests.support.events import samples_for, synthetic_run  # noqa: E402
from tests.support.live_clients import GatewayProcess  # noqa: E402

# Installed before any page script: records each callback request's outputs and timing, and
# the main thread's long tasks (> 50 ms), on performance.now()'s clock.
RECORDER_JS = """
window.__sd = {callbacks: [], long: []};
const origFetch = window.fetch;
window.fetch = function(input, init) {
  const url = typeof input === 'string' ? input : input.url;
  if (!url.includes('_dash-update-component')) { return origFetch.apply(this, arguments); }
  let output = '?';
  try { output = JSON.parse(init.body).output; } catch (e) {}
  const rec = {output: String(output).slice(0, 90), start: performance.now(), end: null};
  window.__sd.callbacks.push(rec);
  return origFetch.apply(this, arguments).then(r => { rec.end = performance.now(); return r; });
};
try {
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) {
      window.__sd.long.push({start: e.startTime, duration: e.duration});
    }
  }).observe({type: 'longtask', buffered: true});
} catch (e) {}
"""

COLLECT_JS = """
const nav = performance.getEntriesByType('navigation')[0];
return {
  nav: {responseEnd: nav.responseEnd, domInteractive: nav.domInteractive,
        domContentLoaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd},
  resources: performance.getEntriesByType('resource').map(e => ({
    name: e.name, start: e.startTime, end: e.responseEnd, size: e.decodedBodySize,
    transfer: e.transferSize, kind: e.initiatorType})),
  callbacks: window.__sd.callbacks,
  long: window.__sd.long,
};
"""


def short(url: str) -> str:
    path = url.split("://", 1)[-1].split("/", 1)[-1]
    return "/" + path.split("?", 1)[0][-70:]


def report(load: dict[str, Any], first_rows_ms: float) -> None:
    nav = load["nav"]
    print(
        f"  html {nav['responseEnd']:7.0f} ms  domInteractive {nav['domInteractive']:7.0f}  "
        f"DOMContentLoaded {nav['domContentLoaded']:7.0f}  load {nav['load']:7.0f}  "
        f"first job rows {first_rows_ms:7.0f}"
    )
    cbs = {round(c["start"]): c for c in load["callbacks"]}
    for res in sorted(load["resources"], key=lambda e: e["start"]):
        if res["start"] > first_rows_ms:
            continue
        label = short(res["name"])
        if "_dash-update-component" in res["name"]:
            match = min(cbs.items(), key=lambda kv: abs(kv[0] - res["start"]), default=None)
            label = f"callback → {match[1]['output']}" if match else label
        cached = " (cache)" if res["transfer"] == 0 and res["size"] else ""
        print(
            f"  {res['start']:7.0f} → {res['end']:7.0f} ms  {res['end'] - res['start']:6.0f} ms"
            f"  {res['size'] / 1024:8.1f} KiB{cached}  {label}"
        )
    busy = [t for t in load["long"] if t["start"] < first_rows_ms]
    total = sum(t["duration"] for t in busy)
    print(f"  main-thread long tasks before first rows: {len(busy)}, {total:.0f} ms in all")
    for t in busy:
        print(f"    {t['start']:7.0f} ms  {t['duration']:5.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=3)
    args = parser.parse_args(argv)
    with amqp_namespace() as namespace:
        data = Path(tempfile.mkdtemp(prefix="sd-prof-dash-"))
        settings = Settings(
            data_dir=data, workflows_dir=REPO / "workflows", amqp_url=AMQP_URL, namespace=namespace
        )
        run = synthetic_run("profdash", samples=samples_for(args.jobs), fail_job=None)
        seed_run(settings, run)
        with GatewayProcess(settings) as gw:
            driver, _profile = start_chrome()
            driver.set_script_timeout(60)
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER_JS})
            url = f"{gw.url}/dashboard/runs/{run.run_id}"
            try:
                driver.get(url)  # warm-up: caches and compiled bundles, as for a returning user
                driver.execute_async_script(FIRST_ROWS_JS)
                firsts = []
                for n in range(args.loads):
                    driver.get("about:blank")
                    driver.get(url)
                    first = driver.execute_async_script(FIRST_ROWS_JS)
                    firsts.append(first)
                    print(f"load {n + 1} of the {run.total:,}-job run page:")
                    report(driver.execute_script(COLLECT_JS), first)
                print(
                    f"first job rows: median {statistics.median(firsts):.0f} ms "
                    f"(min {min(firsts):.0f}, max {max(firsts):.0f}, n={len(firsts)})"
                )
            finally:
                driver.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
