"""What watching a run costs Snakemake: plain ``snakemake`` against ``--logger snakedeck``.

    .venv/bin/python -m benchmarks.bench_overhead [--jobs 200] [--repeats 3]

Runs a trivial workflow of ``--jobs`` touch-a-file jobs in a fresh directory each time, in
three modes, alternating so that machine noise hits all of them alike:

- ``plain``: no logger plugin (Snakemake's own terminal output only);
- ``spool``: ``--logger snakedeck`` as the runner uses it (append to the spool, no network);
- ``hand-run``: ``--logger snakedeck --logger-snakedeck-amqp-url`` (spool plus forwarding to
  RabbitMQ from a thread); skipped when RabbitMQ is not reachable.

Prints the median wall time of each mode and its ratio to ``plain``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

SNAKEFILE = """
N = int(config["jobs"])
rule all:
    input: expand("out/{i}.txt", i=range(N))
rule touch:
    output: "out/{i}.txt"
    shell: "touch {output}"
"""

AMQP_URL = os.environ.get("SNAKEDECK_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def run_once(mode: str, jobs: int, namespace: str) -> float:
    with tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        workdir = Path(tmp)
        (workdir / "Snakefile").write_text(SNAKEFILE)
        cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"jobs={jobs}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
        if mode == "spool":
            cmd += [
                "--logger",
                "snakedeck",
                "--logger-snakedeck-spool",
                str(workdir / "s.jsonl"),
                "--logger-snakedeck-run-id",
                f"bench-{uuid.uuid4().hex[:8]}",
            ]
        elif mode == "hand-run":
            cmd += [
                "--logger",
                "snakedeck",
                "--logger-snakedeck-amqp-url",
                AMQP_URL,
                "--logger-snakedeck-namespace",
                namespace,
            ]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=workdir, env=env, check=True, capture_output=True)
        return time.perf_counter() - start


def broker_reachable() -> bool:
    try:
        import pika

        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means: skip the hand-run mode
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    namespace = f"sdbench-{uuid.uuid4().hex[:8]}"
    modes = ["plain", "spool"] + (["hand-run"] if broker_reachable() else [])
    times: dict[str, list[float]] = {m: [] for m in modes}
    for i in range(args.repeats):
        for mode in modes:
            times[mode].append(run_once(mode, args.jobs, namespace))
            print(f"  round {i + 1} {mode:9s} {times[mode][-1]:.2f} s", flush=True)
    base = statistics.median(times["plain"])
    print(f"\n{args.jobs + 1} jobs, median of {args.repeats} runs:")
    for mode in modes:
        median = statistics.median(times[mode])
        print(f"  {mode:9s} {median:7.2f} s   {median / base:5.2f}x plain")
    if "hand-run" in modes:
        from snakedeck.bus.amqp import AmqpBus

        bus = AmqpBus(AMQP_URL, namespace)
        bus.delete_topology()
        bus.close()


if __name__ == "__main__":
    main()
