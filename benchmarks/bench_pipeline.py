"""Pipeline throughput: spool → Forwarder → RabbitMQ → consumer → SQLite, against raw pika.

    .venv/bin/python -m benchmarks.bench_pipeline            # 5,000 events, 1 round
    .venv/bin/python -m benchmarks.bench_pipeline --full     # 100,000 events, 3 rounds

The events are a synthetic run's (``tests/support/events.py``: what the plugin emits). Per
round, alternating:

- ``raw``: the same message bodies published with plain pika (a BlockingChannel, persistent
  messages, no confirms) into one durable queue while a second process consumes it
  (prefetch 1,000, one ``multiple`` ack per 500): what the broker and pika do with no work
  around them;
- ``snakedeck``: the events appended to a spool, a :class:`Forwarder` drains it (batches,
  publisher confirms, checkpoints) while one ``snakedeck consumer`` process persists them into
  SQLite (projection, jobs, counters, updates fan-out); timed until the store holds them all.

Target (issue 14): ≥ 0.6 of raw and ≥ 15,000 events/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

import pika

from benchmarks.common import AMQP_URL, Summary, amqp_namespace, row
from benchmarks.pipeline_parts import start_consumers, stop_all, wait_stored
from snakedeck import envelope
from snakedeck.bus.amqp import AmqpBus
from snakedeck.forwarder import Forwarder
from snakedeck.settings import Settings
from snakedeck.spool import SpoolWriter
from snakedeck.store import open_store
from tests.support.events import register, synthetic_run


def events_of(n: int, run_id: str) -> list[dict]:
    """About ``n`` events of one synthetic run (about 4.3 events per job)."""
    run = synthetic_run(run_id, samples=max(1, int(n / 8.6)), parallel=8)
    return run.events


def _raw_consume(queue: str, n: int, ready, done) -> None:
    """The raw consumer, in its own process like the snakedeck consumer."""
    c = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    cch = c.channel()
    cch.basic_qos(prefetch_count=1000)
    ready.set()
    for seen, (method, _props, _body) in enumerate(
        cch.consume(queue, inactivity_timeout=60), start=1
    ):
        if method is None:
            break
        if seen % 500 == 0 or seen == n:
            cch.basic_ack(method.delivery_tag, multiple=True)
        if seen == n:
            done.set()
            break
    cch.cancel()
    c.close()


def raw_round(namespace: str, bodies: list[bytes]) -> float:
    queue = f"{namespace}.rawbench"
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    ch.queue_purge(queue)
    ctx = multiprocessing.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_raw_consume, args=(queue, len(bodies), ready, done), daemon=True)
    proc.start()
    try:
        if not ready.wait(60):
            raise SystemExit("raw consumer did not start")
        props = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        start = time.perf_counter()
        for body in bodies:
            ch.basic_publish("", queue, body, props)
        if not done.wait(300):
            raise SystemExit("raw consumer did not get every message")
        elapsed = time.perf_counter() - start
    finally:
        proc.join(30)
        ch.queue_delete(queue)
        conn.close()
    return len(bodies) / elapsed


def snakedeck_round(namespace: str, events: list[dict], tmp: Path, k: int) -> float:
    run_id = f"pipe-{k}"
    settings = Settings(
        amqp_url=AMQP_URL, namespace=namespace, data_dir=tmp / f"d{k}", workflows_dir=tmp
    )
    settings.data_dir.mkdir(parents=True)
    store = open_store(settings)
    register(store, run_id)
    spool = tmp / f"spool-{k}.jsonl"
    with SpoolWriter(spool) as w:
        for e in events:
            w.append({**e, "run_id": run_id})
    bus = AmqpBus(AMQP_URL, namespace)
    bus.declare()
    procs = start_consumers(settings, 1)
    try:
        wait_consumers(namespace, 1, procs)
        fwd = Forwarder(spool, bus, batch_size=1000)
        start = time.perf_counter()
        if not fwd.drain(300):
            raise SystemExit(f"forwarder did not finish: {fwd.last_error}")
        end = wait_stored(store, len(events), 300, procs)
        return len(events) / (end - start)
    finally:
        stop_all(procs)
        bus.close()
        store.close()


def wait_consumers(namespace: str, count: int, procs, timeout: float = 60) -> None:
    """Until ``count`` consumers listen on the persist queue."""
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        ch = conn.channel()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            declared = ch.queue_declare(f"{namespace}.persist", passive=True)
            if declared.method.consumer_count >= count:
                return
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a consumer exited before it was ready")
            time.sleep(0.1)
        raise SystemExit("consumers did not come up")
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="100,000 events, 3 rounds")
    parser.add_argument("--events", type=int)
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args(argv)
    n = args.events or (100_000 if args.full else 5_000)
    rounds = args.rounds or (3 if args.full else 1)
    events = events_of(n, "pipe")
    bodies = [envelope.dumps(e).encode() for e in events]
    raw: list[float] = []
    ours: list[float] = []
    with amqp_namespace() as namespace, tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        for k in range(rounds):
            raw.append(raw_round(namespace, bodies))
            ours.append(snakedeck_round(namespace, events, Path(tmp), k))
            print(f"  round {k + 1}: raw {raw[-1]:,.0f} ev/s, snakedeck {ours[-1]:,.0f} ev/s")
    ratios = [o / r for o, r in zip(ours, raw, strict=True)]
    row(
        "pipeline throughput",
        f"{len(events):,} events: snakedeck {Summary.of(ours).fmt('ev/s', 0)}; "
        f"raw pika {Summary.of(raw).fmt('ev/s', 0)}",
        statistics.median(ratios),
        "raw pika publish+consume",
        "≥ 0.6 of raw, ≥ 15,000 ev/s",
    )


if __name__ == "__main__":
    main()
