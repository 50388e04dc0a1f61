"""Persist cost against run size: events/s for runs of growing size, SQLite and Mongo.

    .venv/bin/python -m benchmarks.bench_persist             # 1,000 and 5,000 jobs
    .venv/bin/python -m benchmarks.bench_persist --full      # 1,000, 10,000, 100,000 jobs

Each run's synthetic events (``tests/support/events.py``) go through ``Store.persist`` in
batches of 500, as the consumer sends them. Printed per backend and size: events/s over the
whole run, the first and last tenth of its batches (a batch's cost that grows with the run
shows as last/first > 1), and the ratio of the run's rate to the smallest run's (the baseline,
measured in the same process just before). Mongo is mongoeco's wire server, the stand-in the
tests use, or the real MongoDB named by ``SNAKEDECK_TEST_MONGO_URI``, at smaller sizes (100 and
200 jobs; 200 and 1,000 with ``--full``) in batches of 100: the stand-in checks its unique
indexes by scanning every stored document on each insert, so its cost per event grows with
the collection whatever the client does. The commands snakedeck sends per batch are counted
too (pymongo command monitoring): they stay flat, the stand-in's time does not.

Target (issue 14): flat within 20 % from 1k to 100k on SQLite; the Mongo figure explained.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from pymongo import monitoring

from benchmarks.common import row
from snakedeck.store import StoreError
from tests.support.events import register, samples_for, synthetic_run

BATCH = 500


class CommandCounter(monitoring.CommandListener):
    """Counts the commands a Mongo client sends (pymongo's command monitoring): constant per
    batch means snakedeck's work per batch does not grow with the run."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event) -> None:
        self.count += 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


COMMANDS = CommandCounter()


def persist_run(store, jobs: int, batch: int = BATCH) -> tuple[float, float, float, int, str]:
    """Overall events/s, first-tenth and last-tenth batch events/s, the event count, and the
    Mongo commands per batch (first and last tenth)."""
    run = synthetic_run(f"p{jobs}-{uuid.uuid4().hex[:6]}", samples=samples_for(jobs), parallel=8)
    register(store, run)
    events = run.events
    times = []
    commands = []
    for i in range(0, len(events), batch):
        before = COMMANDS.count
        t0 = time.perf_counter()
        store.persist(events[i : i + batch])
        times.append((time.perf_counter() - t0, len(events[i : i + batch])))
        commands.append(COMMANDS.count - before)
    tenth = max(1, len(times) // 10)
    per_batch = (
        f"; Mongo commands per batch: first tenth {statistics.mean(commands[:tenth]):.1f}, "
        f"last tenth {statistics.mean(commands[-tenth:]):.1f}"
        if any(commands)
        else ""
    )

    def rate(part: list[tuple[float, int]]) -> float:
        return sum(n for _, n in part) / sum(t for t, _ in part)

    doc = store.get_run(run.run_id)
    assert doc is not None and doc["state"] == run.final_state, "the run did not settle"
    return rate(times), rate(times[:tenth]), rate(times[-tenth:]), len(events), per_batch


def open_backend(name: str, tmp: Path):
    if name == "sqlite":
        from snakedeck.store.sqlite import SqliteStore

        store = SqliteStore(tmp / f"{uuid.uuid4().hex[:6]}.db")
        store.ensure_schema()
        return store, None
    from snakedeck.store.mongo import MongoStore
    from tests.support.services import MongoWireServer

    uri = os.environ.get("SNAKEDECK_TEST_MONGO_URI")
    server = None
    if not uri:
        server = MongoWireServer().start()
        uri = server.uri
    monitoring.register(COMMANDS)
    store = MongoStore(uri, f"sdbench_{uuid.uuid4().hex[:8]}")
    store.ensure_schema()
    return store, server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1k, 10k and 100k jobs")
    parser.add_argument("--sizes", type=int, nargs="*")
    parser.add_argument("--mongo-max-jobs", type=int)
    parser.add_argument("--mongo-batch", type=int, default=100)
    parser.add_argument("--backends", nargs="*", default=["sqlite", "mongo"])
    args = parser.parse_args(argv)
    sizes = args.sizes or ([1_000, 10_000, 100_000] if args.full else [1_000, 5_000])
    mongo_sizes = [200, 1_000] if args.full else [100, 200]
    mongo_max = args.mongo_max_jobs or (1_000 if args.full else 200)
    target = {"sqlite": "flat within 20 % 1k->100k", "mongo": "explained"}
    with tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        for backend in args.backends:
            store, server = open_backend(backend, Path(tmp))
            real = "real MongoDB" if backend == "mongo" and server is None else ""
            label = backend if backend == "sqlite" else f"mongo ({real or 'wire server'})"
            try:
                base = None
                for jobs in sizes if backend == "sqlite" else mongo_sizes:
                    if backend == "mongo" and jobs > mongo_max:
                        print(f"  {label}: {jobs:,} jobs skipped (--mongo-max-jobs {mongo_max})")
                        continue
                    batch = BATCH if backend == "sqlite" else args.mongo_batch
                    try:
                        overall, first, last, n, per_batch = persist_run(store, jobs, batch)
                    except StoreError as exc:  # the stand-in's inserts outgrow the timeout
                        row(f"persist cost, {label}, {jobs:,} jobs", f"failed: {exc}")
                        continue
                    base = base or overall
                    row(
                        f"persist cost, {label}, {jobs:,} jobs",
                        f"{n:,} events: {overall:,.0f} ev/s; first tenth {first:,.0f} ev/s, "
                        f"last tenth {last:,.0f} ev/s (last/first {last / first:.2f}), "
                        f"batches of {batch}{per_batch}",
                        overall / base,
                        f"the smallest run ({label})",
                        target[backend],
                    )
            finally:
                store.close()
                if server is not None:
                    server.stop()


if __name__ == "__main__":
    main()
