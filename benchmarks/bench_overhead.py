"""What watching a run costs Snakemake: plain ``snakemake`` against ``--logger snakedeck``.

    .venv/bin/python -m benchmarks.bench_overhead            # 40 jobs, 2 rounds (a smoke)
    .venv/bin/python -m benchmarks.bench_overhead --full     # issue 14: 200 jobs, 7 rounds

Runs a trivial workflow of ``--jobs`` touch-a-file jobs (``--cores 2``) in a fresh directory
each time, in three modes, alternating within each round so machine noise hits all alike:

- ``plain``: no logger plugin (Snakemake's own terminal output only), the baseline;
- ``spool``: ``--logger snakedeck`` as the runner starts it (append to the spool, no network);
- ``hand-run``: ``--logger-snakedeck-amqp-url`` too (spool plus forwarding to RabbitMQ from a
  thread); skipped when RabbitMQ is not reachable.

Prints each mode's median wall time, its spread, its median ratio to ``plain`` (the ratio of
each round's pair, so slow rounds cancel out) and the peak RSS of the Snakemake process: the
plugin's added memory is the spool mode's peak minus plain's.
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

from benchmarks.common import AMQP_URL, TRIVIAL_SNAKEFILE, Summary, amqp_namespace, row


def run_once(mode: str, jobs: int, namespace: str) -> tuple[float, float]:
    """Wall seconds and the Snakemake process's peak RSS (MB) of one run in ``mode``."""
    with tempfile.TemporaryDirectory(prefix="sdbench-") as tmp:
        workdir = Path(tmp)
        (workdir / "Snakefile").write_text(TRIVIAL_SNAKEFILE)
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
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} run failed:\n{err.decode()[-2000:]}")
        return elapsed, usage.ru_maxrss / 1024


def broker_reachable() -> bool:
    try:
        import pika

        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means: skip the hand-run mode
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="issue 14's sizes: 200 jobs, 7 rounds")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--rounds", type=int)
    args = parser.parse_args(argv)
    jobs = args.jobs or (200 if args.full else 40)
    rounds = args.rounds or (7 if args.full else 2)
    with amqp_namespace() as namespace:
        modes = ["plain", "spool"] + (["hand-run"] if broker_reachable() else [])
        times: dict[str, list[float]] = {m: [] for m in modes}
        rss: dict[str, list[float]] = {m: [] for m in modes}
        run_once("plain", 5, namespace)  # warm the file cache outside the timing
        for i in range(rounds):
            order = modes if i % 2 == 0 else modes[::-1]  # alternate who goes first
            for mode in order:
                t, m = run_once(mode, jobs, namespace)
                times[mode].append(t)
                rss[mode].append(m)
                print(f"  round {i + 1} {mode:9s} {t:.2f} s  peak RSS {m:.0f} MB", flush=True)
    print(f"\n{jobs + 1} jobs, --cores 2, {rounds} alternating rounds")
    targets = {"spool": "≤ 1.02", "hand-run": "≤ 1.03"}
    names = {"spool": "overhead, runner mode", "hand-run": "overhead, hand-run mode"}
    for mode in modes[1:]:
        ratios = [t / b for t, b in zip(times[mode], times["plain"], strict=True)]
        row(
            names[mode],
            f"{Summary.of(times[mode]).fmt('s')}; plain {Summary.of(times['plain']).fmt('s')}; "
            f"pair ratios {min(ratios):.3f}-{max(ratios):.3f}",
            statistics.median(ratios),
            "plain snakemake",
            targets[mode],
        )
    added = statistics.median(rss["spool"]) - statistics.median(rss["plain"])
    row(
        "memory, plugin added RSS",
        f"{added:+.1f} MB (peak RSS spool {Summary.of(rss['spool']).fmt('MB', 0)}, "
        f"plain {Summary.of(rss['plain']).fmt('MB', 0)})",
        statistics.median(rss["spool"]) / statistics.median(rss["plain"]),
        "plain snakemake's peak RSS",
        "≤ 20 MB",
    )


if __name__ == "__main__":
    main()
