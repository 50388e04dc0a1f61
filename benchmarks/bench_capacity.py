"""Capacity simulation (issue 13, item 5): the events of 100 runners through RabbitMQ into the
SQLite store with 1, 2 and 4 consumers.

    .venv/bin/python -m benchmarks.bench_capacity            # 10^5 events in all
    .venv/bin/python -m benchmarks.bench_capacity --full     # 10^6 events in all

The load generator builds 100 synthetic runs (``tests/support/events.py``: what the plugin
emits; about 4.3 events per job) and publishes them as 100 forwarders would: interleaved in
batches of 50 events per run, persistent, with publisher confirms (``AmqpBus.publish_events``,
20 batches in flight).
For each consumer count, on a fresh store and an empty persist queue, the generator first fills
the queue (its own rate is printed: one Python publisher), then ``k`` ``snakedeck consumer``
processes are started and timed, from when all of them listen, until the store holds every
event: the consumers' drain rate, what a deployment with that many consumers absorbs.
Printed: events/s per consumer count and the ratio to one consumer (the baseline, measured in
the same run).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.bench_pipeline import wait_consumers
from benchmarks.common import AMQP_URL, amqp_namespace, row
from benchmarks.pipeline_parts import start_consumers, stop_all, wait_stored
from snakedeck import envelope
from snakedeck.bus import Outgoing
from snakedeck.bus.amqp import AmqpBus
from snakedeck.settings import Settings
from snakedeck.store import open_store
from tests.support.events import register, synthetic_run

RUNNERS = 100
BATCH = 50
IN_FLIGHT = 20


def runs_for(total: int) -> list:
    per_run = total / RUNNERS
    samples = max(1, int(per_run / 8.6))
    return [synthetic_run(f"cap-{i:03d}", samples=samples, parallel=8, seed=i) for i in range(100)]


def interleaved(runs: list) -> list[list[Outgoing]]:
    """Batches as 100 forwarders would publish them, round-robin over the runs."""
    batches = []
    for k in range(0, max(len(r.events) for r in runs), BATCH):
        for run in runs:
            part = run.events[k : k + BATCH]
            if part:
                batches.append(
                    [Outgoing(envelope.routing_key(e), e, envelope.message_id(e)) for e in part]
                )
    return batches


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="10^6 events in all")
    parser.add_argument("--events", type=int)
    parser.add_argument("--consumers", type=int, nargs="*", default=[1, 2, 4])
    args = parser.parse_args(argv)
    total = args.events or (1_000_000 if args.full else 100_000)
    runs = runs_for(total)
    n = sum(len(r.events) for r in runs)
    batches = interleaved(runs)
    print(f"{RUNNERS} runs, {n:,} events, {len(batches):,} batches of up to {BATCH}")
    rates: dict[int, float] = {}
    with amqp_namespace() as namespace, tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        bus = AmqpBus(AMQP_URL, namespace)
        bus.declare()
        try:
            for k in args.consumers:
                settings = Settings(
                    amqp_url=AMQP_URL,
                    namespace=namespace,
                    data_dir=Path(tmp) / f"k{k}",
                    workflows_dir=Path(tmp),
                )
                settings.data_dir.mkdir()
                store = open_store(settings)
                register(store, *runs)
                t0 = time.perf_counter()
                for i in range(0, len(batches), IN_FLIGHT):  # 20 forwarders' batches at once
                    bus.publish_events([m for b in batches[i : i + IN_FLIGHT] for m in b])
                pub = n / (time.perf_counter() - t0)
                procs = start_consumers(settings, k)
                try:
                    wait_consumers(namespace, k, procs)
                    start = time.perf_counter()  # from when all k listen: not their imports
                    end = wait_stored(store, n, 3600, procs)
                    rates[k] = n / (end - start)
                finally:
                    stop_all(procs)
                    store.close()
                states = {}
                check = open_store(settings)
                for r in runs:
                    doc = check.get_run(r.run_id) or {}
                    states[doc.get("state")] = states.get(doc.get("state"), 0) + 1
                check.close()
                print(
                    f"  {k} consumer(s): {rates[k]:,.0f} events/s "
                    f"(generator published {pub:,.0f} events/s); run states {states}",
                    flush=True,
                )
        finally:
            bus.close()
    base = rates[args.consumers[0]]
    for k, rate in rates.items():
        row(
            f"capacity, {k} consumer(s), {RUNNERS} runners",
            f"{n:,} events: {rate:,.0f} events/s persisted ({rate / k:,.0f} per consumer)",
            rate / base,
            f"{args.consumers[0]} consumer(s)",
            "issue 13: the table backs docs/operations.md",
        )


if __name__ == "__main__":
    main()
