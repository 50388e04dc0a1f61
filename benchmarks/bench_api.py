"""Big runs through the API: a 100,000-job run's document and job pages, and the gateway's
memory with subscribers of that run.

    .venv/bin/python -m benchmarks.bench_api                 # 10,000 jobs, 20 subscribers
    .venv/bin/python -m benchmarks.bench_api --full          # 100,000 jobs, 200 subscribers

A synthetic run (``tests/support/events.py``) is persisted into SQLite through the store's
projection; a real gateway (gunicorn + gevent) serves it. Timed over HTTP, each ``--repeat``
times, interleaved: ``GET /api/v1/runs/{id}``; ``/jobs`` first pages filtered by rule and by
rule and state, sorted by ``-duration``; the page after (its ``page_token``); the baseline is
``GET /healthz`` on the same gateway (the cost of HTTP and the framework alone). Then
``--subscribers`` plain WebSocket clients subscribe to the run from its last seq and the
gateway's RSS is read.

Targets (issue 14): p99 ≤ 50 ms; gateway RSS ≤ 300 MB with 200 subscribers and the run open.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.common import AMQP_URL, amqp_namespace, percentile, row, rss_mb
from snakedeck.settings import Settings
from snakedeck.store import open_store
from tests.support.events import register, samples_for, synthetic_run
from tests.support.live_clients import GatewayProcess


def seed(settings: Settings, jobs: int) -> tuple[str, int]:
    run = synthetic_run("big", samples=samples_for(jobs), parallel=8)
    store = open_store(settings)
    try:
        register(store, run)
        for i in range(0, len(run.events), 2000):
            store.persist(run.events[i : i + 2000])
    finally:
        store.close()
    return run.run_id, len(run.events)


def timed(session: requests.Session, url: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    resp = session.get(url, timeout=60)
    ms = (time.perf_counter() - t0) * 1000
    resp.raise_for_status()
    return ms, resp.json()


def fmt(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--subscribers", type=int)
    args = parser.parse_args(argv)
    jobs = args.jobs or (100_000 if args.full else 10_000)
    repeat = args.repeat or (100 if args.full else 30)
    subscribers = args.subscribers or (200 if args.full else 20)
    with amqp_namespace() as namespace, tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        settings = Settings(
            amqp_url=AMQP_URL,
            namespace=namespace,
            data_dir=Path(tmp) / "data",
            workflows_dir=GatewayProcess.workflows_dir(),
        )
        settings.data_dir.mkdir()
        t0 = time.perf_counter()
        run_id, n_events = seed(settings, jobs)
        print(f"seeded {jobs:,} jobs, {n_events:,} events in {time.perf_counter() - t0:.1f} s")
        with GatewayProcess(settings) as gw:
            try:
                measure(gw, run_id, n_events, jobs, repeat, subscribers)
            except Exception:
                print("gateway log (last lines):\n" + gw.log()[-4000:])
                raise


def measure(
    gw: GatewayProcess, run_id: str, n_events: int, jobs: int, repeat: int, subscribers: int
) -> None:
    api = f"{gw.url}/api/v1/runs/{run_id}"
    urls = {
        "healthz": f"{gw.url}/healthz",
        "run": api,
        "jobs rule=align -duration": f"{api}/jobs?rule=align&sort=-duration",
        "jobs rule=align state=done -duration": (
            f"{api}/jobs?rule=align&state=done&sort=-duration"
        ),
    }
    times: dict[str, list[float]] = {k: [] for k in [*urls, "next page"]}
    session = requests.Session()
    for url in urls.values():  # warm up
        timed(session, url)
    for _ in range(repeat):
        for name, url in urls.items():
            ms, body = timed(session, url)
            times[name].append(ms)
            token = body.get("next_page_token") if isinstance(body, dict) else None
            if name == "jobs rule=align state=done -duration" and token:
                ms, _ = timed(session, f"{url}&page_token={token}")
                times["next page"].append(ms)
    base = percentile(times["healthz"], 99)
    for name in [*list(urls)[1:], "next page"]:
        row(
            f"big-run API ({jobs:,} jobs): {name}",
            f"{fmt(times[name])}, n={len(times[name])}; healthz {fmt(times['healthz'])}",
            percentile(times[name], 99) / base,
            "p99 of GET /healthz",
            "p99 ≤ 50 ms",
        )
    import websocket

    idle = rss_mb(gw._proc.pid)
    clients = [
        websocket.create_connection(
            gw.url.replace("http://", "ws://", 1) + f"/ws/runs/{run_id}?after_seq={n_events}",
            timeout=60,
        )
        for _ in range(subscribers)
    ]
    time.sleep(2)
    for _ in range(5):  # pages served with every subscriber connected
        timed(session, urls["jobs rule=align -duration"])
    rss = rss_mb(gw._proc.pid)
    for c in clients:
        c.close()
    row(
        f"memory, gateway RSS, {subscribers} subscribers + the {jobs:,}-job run open",
        f"{rss:.0f} MB (after the API timings, before the subscribers: {idle:.0f} MB)",
        rss / idle if idle else None,
        "the same gateway before the subscribers",
        "≤ 300 MB",
    )


if __name__ == "__main__":
    main()
