"""One ``snakemake`` subprocess per run, in its own session (so its pid is its process group id),
with cancel as SIGTERM to the whole group and SIGKILL after a grace period, and a guarantee that
no process of the group survives the run."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from runner import exit_status
from runner.exit_status import DEFAULT_ORPHAN_GRACE
from snakedeck.rundir import RunDir

log = logging.getLogger(__name__)


def snakemake_argv(
    snakefile: Path,
    rd: RunDir,
    run_id: str,
    cores: int,
    *,
    rerun_incomplete: bool = False,
    executor: Sequence[str] = (),
) -> list[str]:
    """Snakemake for one run; a resume adds ``--rerun-incomplete`` (outputs of jobs killed
    mid-way are marked incomplete, and Snakemake refuses to go on without the flag);
    ``executor`` are the arguments :func:`runner.executor.executor_args` chose."""
    extra = [*executor, *(["--rerun-incomplete"] if rerun_incomplete else [])]
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile),
        "--directory",
        str(rd.work),
        "--configfile",
        str(rd.config),
        "--cores",
        str(cores),
        "--nocolor",
        "--logger",
        "snakedeck",
        "--logger-snakedeck-spool",
        str(rd.spool),
        "--logger-snakedeck-run-id",
        run_id,
        *extra,
    ]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid`` (from /proc)."""
    members: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: fall back to "does the group exist"
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux), so the job processes a killed
    Snakemake leaves behind become our children and we can reap them: otherwise they would wait
    as zombies for an init that may be slow to reap (or, in a container, never does)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap(pgid: int) -> None:
    """Collect the exit status of every child of ours in process group ``pgid`` that ended."""
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def group_exists(pgid: int) -> bool:
    """Whether any process (zombies included) is still in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait until no process of the group is left, zombies included (reaping ours)."""
    deadline = time.monotonic() + timeout
    while True:
        reap(pgid)
        if not group_exists(pgid):
            return True
        if time.monotonic() >= deadline:
            return not group_members(pgid)  # only zombies someone else must reap are left
        time.sleep(0.05)


def leftover_group(rd: RunDir, run_id: str) -> int | None:
    """After a runner crash: the run's process group if a process of it is still alive.

    The pid file may be stale and the pid reused, so a group counts only when one of its
    members is a Snakemake (or its exit recorder) started for this run."""
    try:
        pgid = int(rd.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    members = group_members(pgid)
    if not members:
        return None
    if any(run_id in _cmdline(pid) and "snakemake" in " ".join(_cmdline(pid)) for pid in members):
        return pgid
    log.warning("pid file %s names group %d, which is not run %s: left alone", rd.pid, pgid, run_id)
    return None


def kill_leftover(rd: RunDir, run_id: str) -> bool:
    """Kill what is left of the run's process group; True if there was something."""
    pgid = leftover_group(rd, run_id)
    if pgid is None:
        return False
    log.warning("killing leftover Snakemake process group %d of run %s", pgid, run_id)
    kill_group(pgid, signal.SIGKILL)
    wait_group_gone(pgid, 5.0)
    return True


class SnakemakeProcess:
    """A started Snakemake; ``pgid == pid`` since it leads its own session."""

    def __init__(
        self,
        argv: list[str],
        rd: RunDir,
        env: dict[str, str] | None = None,
        *,
        orphan_grace: float = DEFAULT_ORPHAN_GRACE,
    ) -> None:
        self.argv = argv
        self.rd = rd
        self.env = env
        self.orphan_grace = orphan_grace
        self.proc: subprocess.Popen[bytes] | None = None
        self._kill_timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self.terminated_at: float | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def pgid(self) -> int:
        return self.pid

    def start(self) -> SnakemakeProcess:
        become_subreaper()
        exit_status.supervise(self.rd.root, os.getpid())
        recorder = [
            sys.executable,
            "-m",
            "runner.exit_status",
            "--orphan-grace",
            str(self.orphan_grace),
            str(self.rd.exit_status),
            "--",
        ]
        with open(self.rd.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*recorder, *self.argv],
                cwd=self.rd.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
            )
        tmp = self.rd.pid.with_name(self.rd.pid.name + ".tmp")
        tmp.write_text(f"{self.proc.pid}\n")
        os.replace(tmp, self.rd.pid)
        return self

    def poll(self) -> int | None:
        assert self.proc is not None
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self, grace: float, sig: int = signal.SIGTERM) -> None:
        """``sig`` (SIGTERM; SIGINT for jobs on a cluster) to the whole group now, SIGKILL to
        it after ``grace`` seconds."""
        with self._lock:
            if self.proc is None or self.terminated_at is not None:
                return
            self.terminated_at = time.monotonic()
            kill_group(self.pgid, sig)
            self._kill_timer = threading.Timer(grace, self._kill_after_grace)
            self._kill_timer.daemon = True
            self._kill_timer.start()

    def _kill_after_grace(self) -> None:
        if group_members(self.pgid):
            log.warning(
                "run %s: still running %s after SIGTERM; SIGKILL", self.rd.run_id, self.pgid
            )
            kill_group(self.pgid, signal.SIGKILL)

    def reap_group(self, timeout: float = 10.0) -> bool:
        """Once Snakemake exited: SIGKILL whatever of its group is left, and wait until none is."""
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        if self.proc is None:
            return True
        if not group_members(self.pgid):
            return wait_group_gone(self.pgid, timeout)
        log.warning(
            "run %s: processes left in group %d after Snakemake exited; SIGKILL",
            self.rd.run_id,
            self.pgid,
        )
        kill_group(self.pgid, signal.SIGKILL)
        return wait_group_gone(self.pgid, timeout)
