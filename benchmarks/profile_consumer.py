"""cProfile of the consumer's handler thread on a preloaded persist queue (SQLite).

    .venv/bin/python -m benchmarks.profile_consumer [--events 20000] [--top 25]

Fills a fresh namespace's persist queue with a synthetic run's events, then runs a
:class:`Consumer` in this process with its handler wrapped in one :class:`cProfile.Profile`
(the handler runs on one thread), until the store holds every event. Prints the wall time,
the time spent inside the handler, and the profile's top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from benchmarks.common import AMQP_URL, amqp_namespace
from benchmarks.pipeline_parts import wait_stored
from consumer.service import Consumer
from snakedeck import envelope
from snakedeck.bus import Outgoing
from snakedeck.bus.amqp import AmqpBus
from snakedeck.settings import Settings
from snakedeck.store import open_store
from tests.support.events import register, synthetic_run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="cumulative")
    args = parser.parse_args(argv)
    run = synthetic_run("prof", samples=max(1, int(args.events / 8.6)), parallel=8)
    with amqp_namespace() as namespace, tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        settings = Settings(
            amqp_url=AMQP_URL, namespace=namespace, data_dir=Path(tmp), workflows_dir=Path(tmp)
        )
        store = open_store(settings)
        register(store, run)
        bus = AmqpBus(AMQP_URL, namespace)
        bus.declare()
        msgs = [Outgoing(envelope.routing_key(e), e, envelope.message_id(e)) for e in run.events]
        for i in range(0, len(msgs), 1000):
            bus.publish_events(msgs[i : i + 1000])
        consumer = Consumer(settings, store, AmqpBus(AMQP_URL, namespace))
        prof = cProfile.Profile()
        inside = [0.0]
        handle = consumer.handle

        def profiled(deliveries) -> None:
            t0 = time.perf_counter()
            prof.enable()
            try:
                handle(deliveries)
            finally:
                prof.disable()
                inside[0] += time.perf_counter() - t0

        consumer.handle = profiled  # type: ignore[method-assign]
        start = time.perf_counter()
        consumer.start()
        end = wait_stored(store, len(run.events), 600)
        consumer.stop()
        wall = end - start
        print(
            f"{len(run.events):,} events in {wall:.2f} s = {len(run.events) / wall:,.0f} ev/s; "
            f"inside the handler {inside[0]:.2f} s ({inside[0] / wall:.0%})"
        )
        pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
        bus.close()
        store.close()


if __name__ == "__main__":
    main()
