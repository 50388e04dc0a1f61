"""End to end: submit → COMPLETE through gateway, runner, RabbitMQ and consumer, against plain
``snakemake`` on the same workflow.

    .venv/bin/python -m benchmarks.bench_e2e                 # 40 jobs, 2 rounds
    .venv/bin/python -m benchmarks.bench_e2e --full          # 200 jobs, 7 rounds

The deployment is the one the integration tests use (``tests/support/live_clients.py``):
the consumer and the real runner in this process, a gateway process (gunicorn + gevent),
SQLite, the shared RabbitMQ in a fresh namespace (deleted afterwards). The workflow is the
overhead benchmark's trivial one (``--jobs`` touch-a-file jobs), registered as ``trivial``.
Per round, alternating: plain ``snakemake --cores 2`` in a fresh directory (the baseline),
and a ``POST /api/v1/runs`` timed until the run's WebSocket feed pushes COMPLETE.

Target (issue 14): ≤ 1.05.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from benchmarks.bench_overhead import run_once
from benchmarks.common import AMQP_URL, Summary, amqp_namespace, row, write_trivial_workflow
from snakedeck.settings import Settings
from tests.support.live_clients import Pipeline

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}


def submit_and_wait(url: str, jobs: int, timeout: float = 600) -> float:
    """Seconds from ``POST /api/v1/runs`` to the run's COMPLETE, as an API subscriber sees it:
    pushed on the run's WebSocket feed (``batch=1``, as the dashboard subscribes). Polling
    ``GET /runs/{id}`` every 50 ms instead cost the gateway and this process about 0.7 s of CPU
    per 8 s run, taken from the 2 cores Snakemake runs on; ``GET`` confirms the end."""
    import websocket

    start = time.perf_counter()
    resp = requests.post(
        f"{url}/api/v1/runs", json={"workflow": "trivial", "config": {"jobs": jobs}}, timeout=30
    )
    resp.raise_for_status()
    run_id = resp.json()["run_id"]
    ws = websocket.create_connection(
        url.replace("http://", "ws://", 1) + f"/ws/runs/{run_id}?batch=1", timeout=timeout
    )
    try:
        state = ""
        while state not in TERMINAL:
            raw = ws.recv()
            if not raw:
                raise SystemExit(f"run {run_id}: the gateway closed its feed")
            if raw.startswith('{"type":"run"'):
                state = json.loads(raw)["data"]["state"]
        elapsed = time.perf_counter() - start
    finally:
        ws.close()
    stored = requests.get(f"{url}/api/v1/runs/{run_id}", timeout=30).json()["state"]
    if state != "COMPLETE" or stored != "COMPLETE":
        raise SystemExit(f"run {run_id} ended {state} (the API says {stored})")
    return elapsed


@contextmanager
def deployment() -> Iterator[tuple[Pipeline, str]]:
    """The e2e deployment, warmed up by one small run: the pipeline and its namespace."""
    with amqp_namespace() as namespace, tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        workflows = Path(tmp) / "workflows"
        write_trivial_workflow(workflows)
        settings = Settings(
            amqp_url=AMQP_URL,
            namespace=namespace,
            data_dir=Path(tmp) / "data",
            workflows_dir=workflows,
            cores=2,
        )
        settings.data_dir.mkdir()
        pipeline = Pipeline(settings).start(runner=True)
        try:
            submit_and_wait(pipeline.url, 5)  # warm-up: first run, first imports
            yield pipeline, namespace
        finally:
            pipeline.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="200 jobs, 7 rounds")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args(argv)
    jobs = args.jobs or (200 if args.full else 40)
    rounds = args.rounds or (7 if args.full else 2)
    plain: list[float] = []
    ours: list[float] = []
    with deployment() as (pipeline, namespace):
        for i in range(rounds):
            first, second = ("plain", "ours") if i % 2 == 0 else ("ours", "plain")
            for mode in (first, second):
                if mode == "plain":
                    plain.append(run_once("plain", jobs, namespace)[0])
                else:
                    ours.append(submit_and_wait(pipeline.url, jobs))
            print(f"  round {i + 1}: plain {plain[-1]:.2f} s, submit→COMPLETE {ours[-1]:.2f} s")
    ratios = [o / p for o, p in zip(ours, plain, strict=True)]
    row(
        "end to end (submit → COMPLETE)",
        f"{jobs + 1} jobs: {Summary.of(ours).fmt('s')}; plain {Summary.of(plain).fmt('s')}; "
        f"pair ratios {min(ratios):.3f}-{max(ratios):.3f}",
        statistics.median(ratios),
        "plain snakemake",
        "≤ 1.05",
    )


if __name__ == "__main__":
    main()
