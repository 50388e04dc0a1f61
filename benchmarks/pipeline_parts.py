"""Parts the pipeline and capacity benchmarks share: consumer processes and a wait for the
store to hold every event.

Consumers run as real ``snakedeck consumer`` processes (``python -m cli consumer``), as in a
deployment: the publisher and the consumers then do not share one GIL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from benchmarks.common import REPO
from snakedeck.settings import Settings


def start_consumers(settings: Settings, count: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
    env.update(
        {
            **settings.to_env(),
            "SNAKEDECK_DATA_DIR": str(settings.data_dir),
            "SNAKEDECK_WORKFLOWS_DIR": str(settings.workflows_dir),
            "SNAKEDECK_NAMESPACE": settings.namespace,
        }
    )
    log = Path(settings.data_dir) / "consumers.log"
    out = log.open("ab")
    return [
        subprocess.Popen(
            [sys.executable, "-m", "cli", "consumer"], cwd=REPO, env=env, stdout=out, stderr=out
        )
        for _ in range(count)
    ]


def stop_all(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def wait_stored(store, expected: int, timeout: float, procs=()) -> float:
    """Poll until the store holds ``expected`` events; the time it happened (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if store.count_events() >= expected:
            return time.perf_counter()
        for p in procs:
            if p.poll() is not None:
                raise SystemExit(f"a consumer exited with {p.returncode}")
        time.sleep(0.1)  # count(*) is not free on a big table
    held = store.count_events()
    raise SystemExit(f"the store holds {held} of {expected} events after {timeout} s")
