"""Where an end-to-end run's time goes: its timeline and the CPU each process of the stack spent.

    .venv/bin/python -m benchmarks.profile_e2e                 # 200 jobs, 2 runs
    .venv/bin/python -m benchmarks.profile_e2e --jobs 40 --runs 1

The deployment is ``bench_e2e``'s (consumer and runner in this process, a gunicorn gateway,
SQLite, the shared RabbitMQ in a fresh namespace). Per run it prints:

- the timeline from ``POST /api/v1/runs``: RUNNING, Snakemake's ``workflow_started``, the last
  ``job_finished``, COMPLETE as the store records it and as the run's WebSocket feed pushes it;
- the CPU seconds (user + system) the stack spent meanwhile: this process (runner, consumer),
  the gateway and RabbitMQ's ``beam.smp``, and the busiest threads of this process. On a 2-core
  machine that CPU is taken from Snakemake and its jobs: what ``bench_e2e`` measures beyond
  plain Snakemake is mostly this;
- then a plain ``snakemake`` of the same workflow with its stderr timestamped: how long it takes
  from its last line to its exit (its own shutdown, which the runner waits for like anyone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
import requests

from benchmarks.bench_e2e import TERMINAL, deployment
from benchmarks.common import TRIVIAL_SNAKEFILE
from tests.support.live_clients import Pipeline


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def profile_run(pipeline: Pipeline, jobs: int) -> None:
    import websocket

    me = psutil.Process()
    stack = {
        "runner + consumer (this process)": [me],
        "gateway": me.children(recursive=True),
        "RabbitMQ": [p for p in psutil.process_iter(["name"]) if p.info["name"] == "beam.smp"],
    }
    before = {name: _cpu(procs) for name, procs in stack.items()}
    threads_before = {t.id: t.user_time + t.system_time for t in me.threads()}

    t0 = time.time()
    resp = requests.post(
        f"{pipeline.url}/api/v1/runs",
        json={"workflow": "trivial", "config": {"jobs": jobs}},
        timeout=30,
    )
    resp.raise_for_status()
    run_id = resp.json()["run_id"]
    ws = websocket.create_connection(
        pipeline.url.replace("http://", "ws://", 1) + f"/ws/runs/{run_id}?batch=1", timeout=600
    )
    state = ""
    try:
        while state not in TERMINAL:
            raw = ws.recv()
            if raw.startswith('{"type":"run"'):
                state = json.loads(raw)["data"]["state"]
    finally:
        ws.close()
    pushed = time.time()
    after = {name: _cpu(procs) for name, procs in stack.items()}
    names = {t.native_id: t.name for t in threading.enumerate()}
    busiest = sorted(
        (
            (t.user_time + t.system_time - threads_before.get(t.id, 0.0), names.get(t.id, t.id))
            for t in me.threads()
        ),
        reverse=True,
    )[:5]

    marks: dict[str, float] = {}
    for event in pipeline.store.list_events(run_id, limit=1_000_000):
        kind = event["type"]
        at = _epoch(event["ts"]) - t0
        if kind == "run_state":
            marks.setdefault(f"state {event['data']['state']}", at)
        elif kind == "workflow_started":
            marks.setdefault("workflow_started (Snakemake)", at)
        elif kind == "job_finished":
            marks["last job_finished"] = at
    print(f"run {run_id}: {state}")
    for label, at in sorted(marks.items(), key=lambda item: item[1]):
        print(f"  {at:7.3f} s  {label}")
    print(f"  {pushed - t0:7.3f} s  COMPLETE pushed on the run's feed")
    print(f"  CPU of the stack meanwhile ({pushed - t0:.2f} s of wall time, 2 cores):")
    for name in stack:
        print(f"    {after[name] - before[name]:6.2f} s  {name}")
    for seconds, name in busiest:
        print(f"    {seconds:6.2f} s    thread {name}")


def plain_tail(jobs: int) -> None:
    """Plain Snakemake: seconds from its last stderr line to its exit."""
    with tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        (Path(tmp) / "Snakefile").write_text(TRIVIAL_SNAKEFILE)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
        start = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"jobs={jobs}"],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        last = start
        for _line in proc.stderr:
            last = time.time()
        proc.wait()
        end = time.time()
    print(
        f"plain snakemake: {end - start:.2f} s, of which {end - last:.2f} s from its last "
        "line to its exit"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    with deployment() as (pipeline, _namespace):
        for _ in range(args.runs):
            profile_run(pipeline, args.jobs)
            plain_tail(args.jobs)


if __name__ == "__main__":
    main()
