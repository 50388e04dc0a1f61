"""Every benchmark of issue 14 (and issue 13's capacity simulation), one after the other.

    .venv/bin/python -m benchmarks.run_all                   # small sizes: a few minutes
    .venv/bin/python -m benchmarks.run_all --full            # the issues' sizes
    .venv/bin/python -m benchmarks.run_all --only pipeline persist

Each benchmark prints ``ROW | what | figures | ratio vs its baseline | target`` lines; at the
end they are gathered into one Markdown table, with the date and the machine's load (the
machine is shared: compare ratios, which are measured against a baseline in the same run).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import traceback
from datetime import UTC, datetime

from benchmarks import (
    bench_api,
    bench_capacity,
    bench_dashboard,
    bench_e2e,
    bench_live,
    bench_overhead,
    bench_persist,
    bench_pipeline,
)

BENCHES = {
    "overhead": bench_overhead.main,
    "e2e": bench_e2e.main,
    "pipeline": bench_pipeline.main,
    "persist": bench_persist.main,
    "live": bench_live.main,
    "api": bench_api.main,
    "capacity": bench_capacity.main,
    "dashboard": bench_dashboard.main,
}


class Tee(io.TextIOBase):
    """Write through to the terminal and keep a copy (the ROW lines are read back)."""

    def __init__(self, out) -> None:
        self.out = out
        self.copy = io.StringIO()

    def write(self, s: str) -> int:
        self.out.write(s)
        self.copy.write(s)
        return len(s)

    def flush(self) -> None:
        self.out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--only", nargs="*", choices=list(BENCHES))
    args = parser.parse_args(argv)
    tee = Tee(sys.stdout)
    failed = []
    started = datetime.now(UTC)
    load = os.getloadavg()
    with contextlib.redirect_stdout(tee):
        for name in args.only or list(BENCHES):
            print(f"\n=== {name} ===", flush=True)
            t0 = time.perf_counter()
            try:
                BENCHES[name](["--full"] if args.full else [])
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - report, go on with the rest
                failed.append(name)
                traceback.print_exception(exc)
            print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    end_load = os.getloadavg()
    print(
        f"\n{started:%Y-%m-%d %H:%M} UTC, {'--full' if args.full else 'small sizes'}, "
        f"load average {load[0]:.2f} at start, {end_load[0]:.2f} at the end, "
        f"{os.cpu_count()} CPUs\n"
    )
    print("| what | figures | ratio vs baseline | target |")
    print("| --- | --- | --- | --- |")
    for line in tee.copy.getvalue().splitlines():
        if line.startswith("ROW | "):
            print("| " + line.removeprefix("ROW | ") + " |")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
