"""How fast a big run's page is usable, measured in a real browser.

A synthetic run of ``--jobs`` jobs (``tests/support/events.py``: the event stream the Snakemake
plugin emits) is persisted through the store's projection into SQLite; a real gateway
(gunicorn + gevent, the production server) serves the dashboard; headless Chromium opens
``/dashboard/runs/<run_id>`` and we time, in the page's own clock, from navigation start
(``performance.timeOrigin``) to the first job rows rendered in the AG Grid. Also timed: the
jump to the last rows (sort by duration descending) and a state filter (the failed job).
Then live updates: a third big run is seeded short of its end (RUNNING), one real consumer
process persists the rest of its events as they are published to RabbitMQ at ``--live-rate``
events/s, the gateway pushes them to the open page, and the page's own clock records every
animation frame's gap and every long task (> 50 ms) while they arrive.

    .venv/bin/python -m benchmarks.bench_dashboard [--jobs 10000 | --full] [--repeat 5]

A 1,000-job run's page is timed in the same run as the baseline; for the frames, the same page
with nothing arriving. Targets (issue 14): first rows ≤ 1.5 s at 100,000 jobs, a re-sort
≤ 0.5 s, no frame over 100 ms while a live update arrives.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from selenium.webdriver.common.by import By  # noqa: E402

from benchmarks.common import AMQP_URL, amqp_namespace, percentile, row  # noqa: E402
from benchmarks.pipeline_parts import start_consumers, stop_all  # noqa: E402
from snakedeck import envelope  # noqa: E402
from snakedeck.bus import Outgoing  # noqa: E402
from snakedeck.bus.amqp import AmqpBus  # noqa: E402
from snakedeck.settings import Settings  # noqa: E402
from tests.browser.helpers import (  # noqa: E402
    console_errors,
    grid_rows,
    seed_run,
    start_chrome,
    wait_for,
)
from tests.support.events import samples_for, synthetic_run  # noqa: E402
from tests.support.live_clients import GatewayProcess  # noqa: E402

FIRST_ROWS_JS = """
const done = arguments[arguments.length - 1];
function check() {
  const rows = document.querySelectorAll('#jobs-grid .ag-center-cols-container .ag-row');
  const real = Array.from(rows).filter(r => r.textContent.trim().length > 0);
  if (real.length > 0) { done(performance.now()); } else { requestAnimationFrame(check); }
}
check();
"""


# Every animation frame's gap and every long task, on the page's clock, from now on.
FRAMES_JS = """
performance.clearResourceTimings();
performance.setResourceTimingBufferSize(100000);
const f = (window.__sdFrames = {gaps: [], long: [], last: performance.now(), on: true});
function tick(t) { f.gaps.push(t - f.last); f.last = t; if (f.on) requestAnimationFrame(tick); }
requestAnimationFrame(tick);
new PerformanceObserver(l => { for (const e of l.getEntries()) f.long.push(e.duration); })
  .observe({type: 'longtask'});
"""
FRAMES_DONE_JS = """
const f = window.__sdFrames; f.on = false;
const calls = performance.getEntriesByType('resource')
  .filter(e => e.name.includes('_dash-update-component')).length;
return {gaps: f.gaps, long: f.long, calls: calls, last_seq: (window.snakedeck || {}).lastSeq || 0};
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--full", action="store_true", help="a 100,000-job run")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--live-rate", type=int, default=200, help="events/s for the frames")
    parser.add_argument("--live-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    args.jobs = args.jobs or (100_000 if args.full else 10_000)

    with amqp_namespace() as namespace:
        return measure(args, namespace)


def first_rows(driver, url: str, repeat: int) -> list[float]:
    """Seconds from navigation start to the first job rows rendered, ``repeat`` loads."""
    times = []
    for _ in range(repeat):
        driver.get("about:blank")
        driver.get(url)
        times.append(driver.execute_async_script(FIRST_ROWS_JS) / 1000.0)
    return times


def measure(args: argparse.Namespace, namespace: str) -> int:
    data = Path(tempfile.mkdtemp(prefix="sd-bench-dash-"))
    settings = Settings(
        data_dir=data, workflows_dir=REPO / "workflows", amqp_url=AMQP_URL, namespace=namespace
    )
    small = synthetic_run("bench1k", samples=samples_for(1000), fail_job=None)
    seed_run(settings, small)
    samples = samples_for(args.jobs)
    fail_job = samples + 1  # one align job near the end fails: the one to find
    run = synthetic_run("bench10k", samples=samples, fail_job=None)
    t0 = time.perf_counter()
    seed_run(settings, run)
    print(f"seeded {run.total} jobs, {len(run.events)} events in {time.perf_counter() - t0:.1f} s")
    failing = synthetic_run("bench10k-fail", samples=samples, fail_job=fail_job)
    seed_run(settings, failing)
    live = synthetic_run("bench10k-live", samples=samples, fail_job=None)
    to_send = int(args.live_rate * args.live_seconds)
    cut = max(1, len(live.events) - to_send - 50)  # the run's last events are never sent
    seed_run(settings, replace(live, events=live.events[:cut]))
    live_events = live.events[cut : cut + to_send]

    with GatewayProcess(settings) as gw:
        driver, _profile = start_chrome()
        driver.set_script_timeout(60)
        try:
            url = f"{gw.url}/dashboard/runs/{run.run_id}"
            driver.get(url)  # warm-up: the first load also compiles the JS bundles
            driver.execute_async_script(FIRST_ROWS_JS)
            console_errors(driver)
            firsts = first_rows(driver, url, args.repeat)
            base = first_rows(driver, f"{gw.url}/dashboard/runs/{small.run_id}", args.repeat)
            print(
                f"run page of {run.total} jobs, navigation → first job rows rendered: "
                f"median {statistics.median(firsts):.2f} s, "
                f"min {min(firsts):.2f} s, max {max(firsts):.2f} s over {len(firsts)} loads"
            )
            row(
                f"big runs, browser ({run.total:,} jobs): first job rows",
                f"median {statistics.median(firsts):.2f} s (min-max {min(firsts):.2f}-"
                f"{max(firsts):.2f}, n={len(firsts)}); {small.total:,}-job run median "
                f"{statistics.median(base):.2f} s",
                statistics.median(firsts) / statistics.median(base),
                f"the {small.total:,}-job run's page",
                "≤ 1.5 s",
            )

            # Sort by duration, longest first: the grid asks the service for a new first page.
            header = driver.find_element(
                By.CSS_SELECTOR, "#jobs-grid .ag-header-cell[col-id=duration]"
            )
            t = time.perf_counter()
            header.click()  # one click: longest first (the column's first sort order)
            wait_for(
                driver,
                lambda d: (
                    "min"
                    in (
                        d.find_elements(By.CSS_SELECTOR, "#jobs-grid .ag-row [col-id=duration]")
                        or [None]
                    )[0].text
                    if grid_rows(d)
                    else False
                ),
                30,
            )
            took = time.perf_counter() - t
            print(f"sort by duration (desc) → rows: {took:.2f} s")
            row(
                f"big runs, browser ({run.total:,} jobs): re-sort by duration",
                f"{took:.2f} s from the click to the longest job's row",
                None,
                "",
                "≤ 0.5 s",
            )

            # Find the failing job of the other big run.
            driver.get(f"{gw.url}/dashboard/runs/{failing.run_id}")
            t = time.perf_counter()
            wait_for(driver, lambda d: "failed-job" in d.page_source, 30)
            print(f"failing run: failed-job link shown {time.perf_counter() - t:.2f} s after load")
            frames(driver, gw.url, settings, live.run_id, live_events, args)
            errors = console_errors(driver)
            print(f"browser console errors: {len(errors)}")
            for e in errors:
                print("  ", e.get("message", "")[:300])
        finally:
            driver.quit()
    return 0


def watch_frames(driver, seconds: float, during=None) -> dict:
    """Frame gaps and long tasks on the open page over ``seconds`` (``during`` runs meanwhile)."""
    driver.execute_script(FRAMES_JS)
    t0 = time.perf_counter()
    if during is not None:
        during()
    time.sleep(max(0.0, seconds - (time.perf_counter() - t0)))
    return driver.execute_script(FRAMES_DONE_JS)


def frames(driver, url: str, settings: Settings, run_id: str, events: list, args) -> None:
    """A RUNNING big run's page while its events arrive live, against the same page idle."""
    bus = AmqpBus(AMQP_URL, settings.namespace)
    bus.declare()
    consumers = start_consumers(settings, 1)
    try:
        driver.get(f"{url}/dashboard/runs/{run_id}")
        driver.execute_async_script(FIRST_ROWS_JS)
        time.sleep(2.0)  # the page's own start-up settles
        idle = watch_frames(driver, args.live_seconds)

        def publish() -> None:
            per_tick = max(1, args.live_rate // 20)
            start = time.perf_counter()
            for i in range(0, len(events), per_tick):
                part = events[i : i + per_tick]
                bus.publish_events(
                    [Outgoing(envelope.routing_key(e), e, envelope.message_id(e)) for e in part]
                )
                lag = start + (i + per_tick) / args.live_rate - time.perf_counter()
                if lag > 0:
                    time.sleep(lag)

        busy = watch_frames(driver, args.live_seconds + 3.0, publish)  # + the tail's arrival
    finally:
        stop_all(consumers)
        bus.close()
    for name, seen in (("idle", idle), ("live", busy)):
        gaps = seen["gaps"][1:] or [0.0]
        print(
            f"frames, {name}: {len(gaps)} frames, gap p50 {percentile(gaps, 50):.0f} ms, "
            f"p99 {percentile(gaps, 99):.0f} ms, max {max(gaps):.0f} ms, "
            f"{sum(g > 100 for g in gaps)} over 100 ms; long tasks {len(seen['long'])}, "
            f"longest {max(seen['long'] or [0]):.0f} ms; {seen['calls']} callback requests"
        )
    last = events[-1]["seq"] if events else 0
    gaps = busy["gaps"][1:] or [0.0]
    idle_gaps = idle["gaps"][1:] or [0.0]
    row(
        f"big runs, browser ({args.jobs:,}-job run): frames while updates arrive",
        f"{len(events):,} events at {args.live_rate}/s, page reached seq {busy['last_seq']:,} "
        f"of {last:,}: longest frame {max(gaps):.0f} ms, {sum(g > 100 for g in gaps)} of "
        f"{len(gaps)} frames over 100 ms, {busy['calls']} callback requests; idle page longest "
        f"{max(idle_gaps):.0f} ms",
        max(gaps) / max(max(idle_gaps), 1.0),
        "the same page idle (longest frame)",
        "no frame over 100 ms",
    )


if __name__ == "__main__":
    raise SystemExit(main())
