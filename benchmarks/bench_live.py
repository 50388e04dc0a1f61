"""Live latency and fan-out: an event appended to the spool → received by feed clients.

    .venv/bin/python -m benchmarks.bench_live                # 3 s at 500 ev/s; 20 subscribers
    .venv/bin/python -m benchmarks.bench_live --full         # 15 s; 200 subscribers, 10 s

The whole path is real: a spool, the :class:`Forwarder` (thread, as the hand-run plugin has),
RabbitMQ, one ``snakedeck consumer`` process (SQLite), a gateway process (gunicorn + gevent).
Each event carries its append time (``data.t``); a client's latency is its arrival time minus
that (one machine, one clock).

1. **latency**: one Socket.IO client and one plain WebSocket client of a run, events appended
   at 500/s. Target p50 ≤ 20 ms, p99 ≤ 100 ms.
2. **fan-out**: ``--subscribers`` plain WebSocket clients of one run (a tenth of them
   Socket.IO), 200 events/s, subscribed with ``batch`` as the dashboard is (``--unbatched``:
   one message per event). Target: every event delivered, p99 ≤ 250 ms. The gateway's RSS is
   read with them all connected.

Baseline, measured in the same run: the bare broker hop (pika publish → a second connection
consuming, same rate, same process), the floor any live path stands on.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import tempfile
import threading
import time
from pathlib import Path

import pika

from benchmarks.common import AMQP_URL, amqp_namespace, cpu_seconds, percentile, row, rss_mb
from benchmarks.pipeline_parts import start_consumers, stop_all
from runner.run import FORWARD_POLL
from snakedeck import envelope
from snakedeck.bus.amqp import AmqpBus
from snakedeck.forwarder import BUSY_POLL, Forwarder
from snakedeck.settings import Settings
from snakedeck.spool import SpoolWriter
from snakedeck.store import open_store
from tests.support.events import register
from tests.support.live_clients import GatewayProcess


class Latencies:
    """Arrival minus append time per (client, seq), thread-safe."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.seqs: dict[int, set[int]] = {}
        self._lock = threading.Lock()

    def seen(self, client: int, seq: int) -> None:
        """An event a counting client got (no latency: it does not parse the message)."""
        with self._lock:
            self.seqs.setdefault(client, set()).add(seq)

    def add(self, client: int, event: dict) -> None:
        now = time.time()
        t = (event.get("data") or {}).get("t")
        if t is None:
            return
        with self._lock:
            self.values.append((now - t) * 1000)
            self.seqs.setdefault(client, set()).add(event["seq"])

    def fmt(self) -> str:
        v = self.values
        return (
            f"p50 {percentile(v, 50):.1f} ms, p99 {percentile(v, 99):.1f} ms, "
            f"max {max(v, default=float('nan')):.1f} ms, n={len(v)}"
        )


SEQ = re.compile(r'"seq":(\d+)')


def ws_client(
    url: str, run_id: str, lat: Latencies, client: int, batch: bool = False, measure: bool = True
):
    """A plain WebSocket subscriber on a thread of this process. A measuring client parses
    every message (latency per event); a counting one only finds the events' seqs in the text
    (C speed), so 200 clients in one Python process do not starve each other of the GIL."""
    import websocket

    query = "?batch=1" if batch else ""
    ws = websocket.create_connection(
        url.replace("http://", "ws://", 1) + f"/ws/runs/{run_id}{query}", timeout=60
    )
    ws.settimeout(None)

    def read() -> None:
        while True:
            try:
                raw = ws.recv()
            except (websocket.WebSocketException, OSError):
                return
            if not raw:
                return
            if not measure:
                if raw.startswith('{"type":"event'):
                    for m in SEQ.finditer(raw):
                        lat.seen(client, int(m.group(1)))
                continue
            message = json.loads(raw)
            if message["type"] == "event":
                lat.add(client, message["data"])
            elif message["type"] == "events":
                for event in message["data"]:
                    lat.add(client, event)

    threading.Thread(target=read, daemon=True).start()
    return ws


def sio_client(url: str, run_id: str, lat: Latencies, client: int, batch: bool = False):
    import socketio

    c = socketio.Client(reconnection=False)
    c.on("event", lambda data: lat.add(client, data))
    c.on("events", lambda data: [lat.add(client, e) for e in data])
    c.connect(url, transports=["websocket"], wait_timeout=30)
    c.call("subscribe", {"run_id": run_id, "after_seq": 0, "batch": batch}, timeout=60)
    return c


def updates_tap(namespace: str, lat: Latencies) -> threading.Event:
    """Listen to the updates fanout as a gateway does: when each event's update arrives
    (splits the latency into the consumer's part and the gateway's). Set the event to stop."""
    stop = threading.Event()
    ready = threading.Event()

    def listen() -> None:
        c = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        ch = c.channel()
        q = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        ch.queue_bind(q, f"{namespace}.updates")
        ready.set()
        for method, _p, body in ch.consume(q, auto_ack=True, inactivity_timeout=0.2):
            if stop.is_set():
                break
            if method is None:
                continue
            for event in json.loads(body).get("events") or []:
                lat.add(0, event)
        c.close()

    threading.Thread(target=listen, daemon=True).start()
    ready.wait(10)
    return stop


def append_paced(spool: Path, run_id: str, rate: int, seconds: float) -> int:
    """Append ``rate`` events/s for ``seconds`` in 10 ms ticks; how many were appended."""
    n = 0
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    start = time.perf_counter()
    with SpoolWriter(spool) as w:
        while time.perf_counter() - start < seconds:
            for _ in range(per_tick):
                n += 1
                w.append(envelope.make(run_id, "log", msg=f"line {n}", data={"t": time.time()}))
            next_at = start + (n / per_tick) * tick
            time.sleep(max(0.0, next_at - time.perf_counter()))
    return n


def broker_baseline(namespace: str, rate: int, seconds: float) -> Latencies:
    lat = Latencies()
    queue = f"{namespace}.latbench"
    pub = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    pch = pub.channel()
    pch.queue_declare(queue, durable=True)
    ready = threading.Event()

    def consume() -> None:
        c = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        ch = c.channel()
        ready.set()
        for method, _p, body in ch.consume(queue, auto_ack=True, inactivity_timeout=2):
            if method is None:
                break
            lat.add(0, json.loads(body))
        c.close()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    ready.wait(10)
    props = pika.BasicProperties(delivery_mode=2)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        n += 1
        pch.basic_publish("", queue, json.dumps({"seq": n, "data": {"t": time.time()}}), props)
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
    t.join(30)
    pch.queue_delete(queue)
    pub.close()
    return lat


def source(spool: Path, run_id: str, rate: int, seconds: float, namespace: str, out) -> None:
    """The run's side, in a process of its own (the clients' threads must not slow the pace):
    append events at ``rate`` and forward them as the hand-run plugin's thread does."""
    bus = AmqpBus(AMQP_URL, namespace)
    fwd = Forwarder(spool, bus, batch_size=500)
    stop = threading.Event()
    # As the runner forwards (runner/run.py): FORWARD_POLL, and BUSY_POLL while events flow.
    thread = threading.Thread(target=fwd.run, args=(stop, FORWARD_POLL, BUSY_POLL), daemon=True)
    thread.start()
    n = append_paced(spool, run_id, rate, seconds)
    deadline = time.time() + 30
    while fwd.backlog_bytes() and time.time() < deadline:
        time.sleep(0.05)
    out.put(n)
    stop.set()
    thread.join(30)
    bus.close()


def client_group(url, run_id, specs, batch, commands, results) -> None:
    """Some of the phase's clients, in a process of their own (one Python process cannot parse
    200 clients' messages: the clients, not the gateway, would be measured). Reports when its
    clients are subscribed; told how many events were appended, waits until each has them all
    (60 s at most) and reports the latencies and each client's count."""
    lat = Latencies()
    clients = [
        sio_client(url, run_id, lat, i, batch)
        if kind == "sio"
        else ws_client(url, run_id, lat, i, batch, measure=measure)
        for kind, i, measure in specs
    ]
    results.put(("ready", len(clients)))
    n = commands.get()
    deadline = time.time() + 60
    while time.time() < deadline and any(len(lat.seqs.get(i, ())) < n for _, i, _ in specs):
        time.sleep(0.1)
    for c in clients:
        (c.disconnect if hasattr(c, "disconnect") else c.close)()
    results.put(("done", lat.values, {i: len(lat.seqs.get(i, ())) for _, i, _ in specs}))


def phase(
    gw, settings, store, tmp, name, rate, seconds, n_ws, n_sio, batch=False, measured=0, groups=1
):
    """``measured`` WebSocket clients parse every message for latency (0: all); the rest count
    events only. Socket.IO clients always parse (python-socketio does). The clients are spread
    over ``groups`` processes."""
    run_id = f"live-{name}"
    register(store, run_id)
    tapped = Latencies()
    stop_tap = updates_tap(settings.namespace, tapped)
    step = max(1, n_ws // measured) if measured else 1
    specs = [("sio", i, True) for i in range(n_sio)]
    specs += [("ws", n_sio + i, i % step == 0) for i in range(n_ws)]
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    workers = []
    for g in range(min(groups, len(specs))):
        commands = ctx.Queue()
        args = (gw.url, run_id, specs[g::groups], batch, commands, results)
        workers.append((ctx.Process(target=client_group, args=args, daemon=True), commands))
        workers[-1][0].start()
    for _ in workers:
        assert results.get(timeout=180)[0] == "ready"
    time.sleep(1.0)  # every subscriber registered before the first event
    cpu0, wall0 = cpu_seconds(gw._proc.pid), time.monotonic()
    spool = Path(tmp) / f"{run_id}.jsonl"
    spool.touch()
    out = ctx.Queue()
    proc = ctx.Process(target=source, args=(spool, run_id, rate, seconds, settings.namespace, out))
    proc.start()
    n = out.get(timeout=seconds + 120)
    proc.join(60)
    gateway_rss = rss_mb(gw._proc.pid)
    for _, commands in workers:
        commands.put(n)
    lat = Latencies()
    counts: dict[int, int] = {}
    for _ in workers:
        _, values, seen = results.get(timeout=180)
        lat.values.extend(values)
        counts.update(seen)
    gateway_cpu = (cpu_seconds(gw._proc.pid) - cpu0) / (time.monotonic() - wall0)
    stop_tap.set()
    for worker, _ in workers:
        worker.join(30)
    complete = sum(1 for c in counts.values() if c == n)
    return lat, n, complete, len(specs), (gateway_rss, gateway_cpu), tapped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--subscribers", type=int)
    parser.add_argument(
        "--unbatched",
        action="store_true",
        help="fan-out clients take one message per event (no ``batch``), as before batches",
    )
    parser.add_argument(
        "--client-processes",
        type=int,
        default=4,
        help="processes the fan-out clients are spread over (default 4)",
    )
    args = parser.parse_args(argv)
    seconds = args.seconds or (15 if args.full else 3)
    subscribers = args.subscribers or (200 if args.full else 20)
    with amqp_namespace() as namespace, tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        settings = Settings(
            amqp_url=AMQP_URL,
            namespace=namespace,
            data_dir=Path(tmp) / "data",
            workflows_dir=GatewayProcess.workflows_dir(),
        )
        settings.data_dir.mkdir()
        store = open_store(settings)
        bus = AmqpBus(AMQP_URL, namespace)
        bus.declare()
        consumers = start_consumers(settings, 1)
        try:
            base = broker_baseline(namespace, 500, min(seconds, 5))
            with GatewayProcess(settings) as gw:
                idle_rss = rss_mb(gw._proc.pid)
                lat, n, complete, clients, _, tapped = phase(
                    gw, settings, store, tmp, "latency", 500, seconds, 1, 1
                )
                sio = lat.values  # both clients together
                row(
                    "live latency (Socket.IO + WebSocket, 500 ev/s)",
                    f"{n:,} events, {complete}/{clients} clients got all: {lat.fmt()}; "
                    f"of which spool → update published (forwarder, broker, consumer, store): "
                    f"{tapped.fmt()}; bare broker hop {base.fmt()}",
                    percentile(sio, 99) / percentile(base.values, 99),
                    "p99 of the bare broker hop",
                    "p50 ≤ 20 ms, p99 ≤ 100 ms",
                )
                n_sio = max(1, subscribers // 10)
                lat, n, complete, clients, (rss, cpu), _ = phase(
                    gw,
                    settings,
                    store,
                    tmp,
                    "fanout",
                    200,
                    min(seconds, 10),
                    subscribers - n_sio,
                    n_sio,
                    batch=not args.unbatched,
                    measured=10,
                    groups=args.client_processes,
                )
                how = "one message per event" if args.unbatched else "batch subscribers"
                row(
                    f"fan-out ({clients} {how}, 200 ev/s)",
                    f"{n:,} events, {complete}/{clients} subscribers got every event: {lat.fmt()}"
                    f"; the gateway used {cpu:.2f} of a core",
                    percentile(lat.values, 99) / percentile(base.values, 99),
                    "p99 of the bare broker hop",
                    "every event, p99 ≤ 250 ms",
                )
                row(
                    f"memory, gateway RSS with {clients} subscribers",
                    f"{rss:.0f} MB (idle {idle_rss:.0f} MB)",
                    rss / idle_rss if idle_rss else None,
                    "the idle gateway",
                    "≤ 300 MB",
                )
        finally:
            stop_all(consumers)
            bus.close()
            store.close()


if __name__ == "__main__":
    main()
