"""How fast a big run's page is usable, measured in a real browser.

A synthetic run of ``--jobs`` jobs (``tests/support/events.py``: the event stream the Snakemake
plugin emits) is persisted through the store's projection into SQLite; a real gateway
(gunicorn + gevent, the production server) serves the dashboard; headless Chromium opens
``/dashboard/runs/<run_id>`` and we time, in the page's own clock, from navigation start
(``performance.timeOrigin``) to the first job rows rendered in the AG Grid. Also timed: the
jump to the last rows (sort by duration descending) and a state filter (the failed job).

    .venv/bin/python -m benchmarks.bench_dashboard [--jobs 10000 | --full] [--repeat 5]

A 1,000-job run's page is timed in the same run as the baseline. Targets (issue 14): first
rows ≤ 1.5 s at 100,000 jobs, a re-sort ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from selenium.webdriver.common.by import By  # noqa: E402

from benchmarks.common import AMQP_URL, amqp_namespace, row  # noqa: E402
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--full", action="store_true", help="a 100,000-job run")
    parser.add_argument("--repeat", type=int, default=5)
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
            header.click()
            header.click()  # asc, then desc
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
                f"{took:.2f} s from the clicks to the longest job's row (two clicks: asc, desc)",
                None,
                "",
                "≤ 0.5 s",
            )

            # Find the failing job of the other big run.
            driver.get(f"{gw.url}/dashboard/runs/{failing.run_id}")
            t = time.perf_counter()
            wait_for(driver, lambda d: "failed-job" in d.page_source, 30)
            print(f"failing run: failed-job link shown {time.perf_counter() - t:.2f} s after load")
            errors = console_errors(driver)
            print(f"browser console errors: {len(errors)}")
            for e in errors:
                print("  ", e.get("message", "")[:300])
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
