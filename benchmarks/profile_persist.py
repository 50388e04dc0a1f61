"""Where a big run's persist time goes, early against late: cProfile of its first and last batches.

    .venv/bin/python -m benchmarks.profile_persist                # 100,000 jobs, SQLite
    .venv/bin/python -m benchmarks.profile_persist --jobs 20000

A synthetic run's events (``tests/support/events.py``) go through ``Store.persist`` in batches
of 500 into a fresh SQLite store, as in ``bench_persist``. The first tenth of the batches and
the last tenth (without the run's final batch, which also recounts) are profiled; printed are
both tenths' wall times and the functions whose cumulative time grew the most between them:
what in a batch costs more as the run grows.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from snakedeck.store.sqlite import SqliteStore
from tests.support.events import register, samples_for, synthetic_run

BATCH = 500


def _profiled(store: SqliteStore, batches: list[list[dict]]) -> tuple[dict[str, float], float]:
    profile = cProfile.Profile()
    profile.enable()
    start = time.perf_counter()
    for batch in batches:
        store.persist(batch)
    elapsed = time.perf_counter() - start
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    cumulative = {f"{Path(f).name}:{line}:{fn}": v[3] for (f, line, fn), v in stats.items()}
    return cumulative, elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        store = SqliteStore(Path(tmp) / "persist.db")
        store.ensure_schema()
        run = synthetic_run(f"prof{args.jobs}", samples=samples_for(args.jobs), parallel=8)
        register(store, run)
        batches = [run.events[i : i + BATCH] for i in range(0, len(run.events), BATCH)]
        tenth = max(1, len(batches) // 10)
        first, first_s = _profiled(store, batches[:tenth])
        for batch in batches[tenth : -tenth - 1]:
            store.persist(batch)
        last, last_s = _profiled(store, batches[-tenth - 1 : -1])
        store.persist(batches[-1])
    print(
        f"{len(run.events):,} events, {len(batches)} batches of {BATCH}: first {tenth} batches "
        f"{first_s:.2f} s, last {tenth} (before the final one) {last_s:.2f} s "
        f"(last/first {last_s / first_s:.2f})"
    )
    grown = sorted((last.get(k, 0.0) - first.get(k, 0.0), k) for k in set(first) | set(last))
    print("cumulative seconds, first tenth -> last tenth, the most grown:")
    for delta, name in reversed(grown[-args.top :]):
        print(f"  {delta:+7.3f}  {first.get(name, 0.0):7.3f} -> {last.get(name, 0.0):7.3f}  {name}")


if __name__ == "__main__":
    main()
