"""How fast a 10,000-job run's page is usable, measured in a real browser.

A synthetic run of 10,000 jobs (``tests/support/events.py``: the event stream the Snakemake
plugin emits) is persisted through the store's projection into SQLite; a real gateway
(gunicorn + gevent, the production server) serves the dashboard; headless Chromium opens
``/dashboard/runs/<run_id>`` and we time, in the page's own clock, from navigation start
(``performance.timeOrigin``) to the first job rows rendered in the AG Grid. Also timed: the
jump to the last rows (sort by duration descending) and a state filter (the failed job).

    .venv/bin/python benchmarks/bench_dashboard.py [--jobs 10000] [--repeat 5]

Target: first rows visible in under 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from selenium.webdriver.common.by import By  # noqa: E402

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    data = Path(tempfile.mkdtemp(prefix="sd-bench-dash-"))
    settings = Settings(
        data_dir=data, workflows_dir=REPO / "workflows", namespace=f"sdbench-{uuid.uuid4().hex[:6]}"
    )
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
            firsts = []
            for _ in range(args.repeat):
                driver.get("about:blank")
                driver.get(url)
                first = driver.execute_async_script(FIRST_ROWS_JS)
                firsts.append(first / 1000.0)
            print(
                f"run page of {run.total} jobs, navigation → first job rows rendered: "
                f"median {statistics.median(firsts):.2f} s, "
                f"min {min(firsts):.2f} s, max {max(firsts):.2f} s over {len(firsts)} loads"
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
            print(f"sort by duration (desc) → rows: {time.perf_counter() - t:.2f} s")

            # Find the failing job of the other 10,000-job run.
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
