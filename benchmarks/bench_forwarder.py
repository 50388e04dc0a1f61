"""How fast events reach RabbitMQ with publisher confirms, many in flight.

Reproduce (RabbitMQ at SNAKEDECK_TEST_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/):

    .venv/bin/python benchmarks/bench_forwarder.py            # 20,000 events
    .venv/bin/python benchmarks/bench_forwarder.py --events 50000 --batch 1000

Measures three paths on a fresh namespace (deleted afterwards):

1. ``AmqpBus.publish_events`` in batches (confirmed, persistent messages);
2. the whole ``Forwarder``: spool lines read, numbered, published, checkpointed;
3. for contrast, a BlockingChannel with confirms, one round trip per message (what the
   forwarder avoids), on a 2,000-event sample.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pika

from snakedeck import envelope
from snakedeck.bus import Outgoing
from snakedeck.bus.amqp import AmqpBus
from snakedeck.forwarder import Forwarder
from snakedeck.spool import SpoolWriter

URL = os.environ.get("SNAKEDECK_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def sample_event(i: int, run_id: str = "bench-run") -> dict:
    """A job_finished-sized envelope (~300 bytes of JSON), like most of a real run's events."""
    return envelope.make(
        run_id,
        "job_finished",
        msg=f"Finished job {i}.",
        data={"jobid": i, "rule": "align", "wildcards": {"sample": f"s{i % 97}"}, "threads": 1},
        seq=i + 1,
    )


def bench_publish_events(bus: AmqpBus, n: int, batch: int) -> float:
    msgs = [
        Outgoing(envelope.routing_key(e), e, envelope.message_id(e))
        for e in (sample_event(i) for i in range(n))
    ]
    bus.publish_events(msgs[:batch])  # connect and warm up outside the timing
    t0 = time.perf_counter()
    for k in range(0, n, batch):
        bus.publish_events(msgs[k : k + batch])
    return n / (time.perf_counter() - t0)


def bench_forwarder(bus: AmqpBus, n: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        spool = Path(tmp) / "bench.jsonl"
        with SpoolWriter(spool) as w:
            for i in range(n):
                w.append(envelope.make("bench-fwd", "log", msg=f"line {i}", data={"i": i}))
        fwd = Forwarder(spool, bus, batch_size=batch)
        t0 = time.perf_counter()
        if not fwd.drain(300):
            raise SystemExit(f"forwarder did not finish: {fwd.last_error}")
        elapsed = time.perf_counter() - t0
        assert fwd.confirmed_seq == n, fwd.confirmed_seq
    return n / elapsed


def bench_one_by_one(bus: AmqpBus, n: int) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    ch = conn.channel()
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
    bodies = [envelope.dumps(sample_event(i)).encode() for i in range(n)]
    t0 = time.perf_counter()
    for body in bodies:
        ch.basic_publish(bus.topology.events, "run.bench-run.job_finished", body, props)
    rate = n / (time.perf_counter() - t0)
    conn.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    namespace = f"sdbench-{uuid.uuid4().hex[:8]}"
    bus = AmqpBus(URL, namespace)
    try:
        bus.declare()
        print(f"RabbitMQ {bus.where}, namespace {namespace}, {args.events} events")
        rate = bench_publish_events(bus, args.events, args.batch)
        print(f"publish_events, batches of {args.batch}, confirmed: {rate:,.0f} events/s")
        rate = bench_forwarder(bus, args.events, args.batch)
        print(f"Forwarder spool -> RabbitMQ, checkpointed:    {rate:,.0f} events/s")
        rate = bench_one_by_one(bus, 2000)
        print(f"one confirm round trip per message (contrast): {rate:,.0f} events/s")
        depth = bus.queue_depth("persist")
        print(
            f"persist queue holds {depth} messages (expected {2 * args.events + args.batch + 2000})"
        )
    finally:
        bus.delete_topology()
        bus.close()


if __name__ == "__main__":
    main()
