"""How a run's Snakemake ended, written down by a small parent that outlives its runner.

Snakemake is not started directly: ``python -m runner.exit_status STATUS_FILE -- ARGV…`` starts
it as a child, waits, and writes its exit status to ``STATUS_FILE`` (atomically) before exiting
the same way. If the runner dies meanwhile, Snakemake goes on, and a restarted runner adopts it
and reads the file to give the run the state its exit code says. The runner signals the whole
process group (cancel); this parent ignores those signals and keeps waiting, so it always ends
after Snakemake.

The runner supervising the run writes its pid beside the status file (``SUPERVISOR_FILE``). If
no live process is named there for ``--orphan-grace`` seconds (the runner died and none adopted
the run, which the reaper meanwhile declared lost), this parent stops Snakemake: SIGTERM to the
group, SIGKILL after a grace. So no run is left running unobserved.

Stdlib only: it runs once per run, so it starts in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SUPERVISOR_FILE = "supervisor.pid"
DEFAULT_ORPHAN_GRACE = 90.0
"""Longer than a claim's lease plus a reaper sweep: a runner restarted in time adopts first."""
KILL_GRACE = 10.0


@dataclass(frozen=True)
class ExitStatus:
    returncode: int
    """As ``subprocess`` reports it: negative for a signal."""
    ended_at: float

    @property
    def exit_code(self) -> int | None:
        return self.returncode if self.returncode >= 0 else None

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None


def read(path: Path) -> ExitStatus | None:
    """The recorded status, or ``None`` while Snakemake runs (or if the record is unreadable)."""
    try:
        raw = json.loads(path.read_text())
        return ExitStatus(int(raw["returncode"]), float(raw["ended_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(path: Path, returncode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"returncode": returncode, "ended_at": time.time()}))
    os.replace(tmp, path)


def supervise(run_root: Path, pid: int) -> None:
    """Name ``pid`` as the runner supervising the run in ``run_root``."""
    path = run_root / SUPERVISOR_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{pid}\n")
    os.replace(tmp, path)


def _supervised(run_root: Path) -> bool:
    try:
        pid = int((run_root / SUPERVISOR_FILE).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return pid > 1


def main(argv: list[str]) -> int:
    grace = DEFAULT_ORPHAN_GRACE
    if len(argv) >= 2 and argv[0] == "--orphan-grace":
        grace, argv = float(argv[1]), argv[2:]
    if len(argv) < 3 or argv[1] != "--":
        print(
            "usage: python -m runner.exit_status [--orphan-grace S] STATUS_FILE -- COMMAND...",
            file=sys.stderr,
        )
        return 2
    status = Path(argv[0])
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)  # the group signal is for Snakemake, not for us
    child = subprocess.Popen(argv[2:])
    returncode = _wait(child, status.parent, grace)
    write(status, returncode)
    if returncode < 0:  # die the way Snakemake died, so our parent sees the same signal
        with contextlib.suppress(OSError, ValueError):  # SIGKILL's disposition cannot change
            signal.signal(-returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -returncode)
    return returncode


def _wait(child: subprocess.Popen[bytes], run_root: Path, grace: float) -> int:
    """Wait for Snakemake; stop it if it has been unsupervised for ``grace`` seconds."""
    alone_since: float | None = None
    killing_since: float | None = None
    while True:
        try:
            return child.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if _supervised(run_root):
            alone_since = None
            continue
        alone_since = alone_since or now
        if killing_since is None and now - alone_since >= grace:
            print(
                f"snakedeck: no runner has supervised this run for {grace:.0f} s; stopping it",
                file=sys.stderr,
                flush=True,
            )
            killing_since = now
            os.killpg(0, signal.SIGTERM)
        elif killing_since is not None and now - killing_since >= KILL_GRACE:
            child.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
