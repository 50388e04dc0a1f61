"""Persist a synthetic 10,000-job run into the SQLite store the way the consumer does (batches of
500 events), then time the two reads the dashboard makes most: job list page 1 and get_run.

Reproduce (from the repository root):

    .venv/bin/python -m benchmarks.bench_store            # 10,000 jobs, batches of 500
    .venv/bin/python -m benchmarks.bench_store --jobs 2000 --batch 100

Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from snakedeck.store import JobFilter
from snakedeck.store.sqlite import SqliteStore
from tests.support.events import register, samples_for, synthetic_run


def _median_ms(fn: Callable[[], object], repeat: int = 50) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    run = synthetic_run("bench", samples=samples_for(args.jobs), parallel=8)
    events = run.events
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "snakedeck.db")
        store.ensure_schema()
        register(store, run)
        start = time.perf_counter()
        batch_times = []
        for i in range(0, len(events), args.batch):
            t0 = time.perf_counter()
            store.persist(events[i : i + args.batch])
            batch_times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        doc = store.get_run("bench")
        assert doc is not None and doc["state"] == "COMPLETE", "the synthetic run did not finish"

        page_ms = _median_ms(lambda: store.list_jobs("bench", JobFilter(), page_size=100))
        slow_ms = _median_ms(
            lambda: store.list_jobs("bench", JobFilter(), sort="-duration", page_size=100)
        )
        filtered_ms = _median_ms(
            lambda: store.list_jobs("bench", JobFilter(rule="align", q="s0004"), page_size=100)
        )
        run_ms = _median_ms(lambda: store.get_run("bench"))
        store.close()

    print(f"SQLite store, {run.total:,} jobs, {len(events):,} events, batches of {args.batch}")
    print(f"  persist: {elapsed:.2f} s  ->  {len(events) / elapsed:,.0f} events/s")
    print(
        f"  per batch: median {statistics.median(batch_times) * 1000:.1f} ms,"
        f" max {max(batch_times) * 1000:.1f} ms"
    )
    print(f"  list_jobs page 1 (100, by jobid):      {page_ms:.2f} ms (median of 50)")
    print(f"  list_jobs page 1 (100, by -duration):  {slow_ms:.2f} ms")
    print(f"  list_jobs rule=align q=s0004:          {filtered_ms:.2f} ms")
    print(f"  get_run:                               {run_ms:.3f} ms")


if __name__ == "__main__":
    main()
