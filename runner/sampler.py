"""Measures what a run's processes use: CPU and memory of the whole run over time, and per job
its CPU seconds, peak resident memory and wall time.

A sampler thread per run reads every process of the run's process group (psutil) every
``interval`` seconds. A local job is the process Snakemake started for it and everything below
it: a shell job is ``bash -c "… <its shell command>"`` (matched by the command ``job_info``
gives), a ``run:`` job the ``python -m snakemake --target-jobs '<rule>:<wildcards>'``
subprocess Snakemake spawns for it. For each job:

* **CPU seconds**: while it runs, the sum over its live processes of their own CPU time plus
  that of the children they reaped (``children_user``/``children_system``), so descendants
  that came and went count. When the job's top process is gone, Snakemake has reaped it, and
  Snakemake's own ``children_*`` times grew by exactly its whole tree's total: that growth is
  the job's CPU (split over the jobs that ended in the same interval, by their last sample).
* **peak RSS**: the most the job's processes held at once over the samples (their RSS summed),
  or the largest single-process high-water mark (``VmHWM``) if that is higher: a spike
  between two samples is caught by the high-water mark of the process that had it.
* **wall time**: from its ``job_info`` to its ``job_finished``/``job_error`` (event times).

Limits: a job that starts and ends between two samples is never seen, so it is not measured
(its figures say so); CPU of such jobs that Snakemake reaped in the same interval as a
measured one is counted with it. Jobs Snakemake submits elsewhere (a cluster) are not
measured here. A job's figures come out
once, when its attempt has ended (``job_resources``); the run's series is one
``run_resources`` point (peak CPU %, peak RSS) every :data:`POINT_SECONDS` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from runner.spool_jobs import SpoolJob, SpoolJobs, normalized
from snakedeck import envelope
from snakedeck.envelope import Envelope

log = logging.getLogger(__name__)

POINT_SECONDS: Final = 5.0

Emit = Callable[[Envelope], bool]


@dataclass
class Proc:
    pid: int
    ppid: int
    cmdline: str
    argv: list[str]
    cpu: float
    """Own user+system plus reaped children's, seconds."""
    children_cpu: float
    rss: int
    hwm: int
    create_time: float


@dataclass
class JobMeter:
    jobid: str
    attempt: int
    root: int | None = None
    root_created: float = 0.0
    cpu_live: float = 0.0
    cpu: float | None = None
    """Final CPU seconds, once the job's top process was reaped."""
    peak_rss: int = 0
    peak_hwm: int = 0
    pids: set[int] = field(default_factory=set)
    samples: int = 0
    emitted: bool = False


def read_procs(pgid: int) -> dict[int, Proc]:
    """Every process of the group, zombies included (their times still count)."""
    import psutil

    out: dict[int, Proc] = {}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[2]) != pgid:
                continue
            proc = psutil.Process(pid)
            with proc.oneshot():
                times = proc.cpu_times()
                mem = proc.memory_info() if fields[0] != "Z" else None
                argv = proc.cmdline() if fields[0] != "Z" else []
                created = proc.create_time()
                ppid = proc.ppid()
        except (OSError, ValueError, IndexError, psutil.Error):
            continue
        children = float(times.children_user + times.children_system)
        out[pid] = Proc(
            pid=pid,
            ppid=ppid,
            cmdline=" ".join(argv),
            argv=argv,
            cpu=float(times.user + times.system) + children,
            children_cpu=children,
            rss=int(mem.rss) if mem is not None else 0,
            hwm=_vmhwm(pid),
            create_time=created,
        )
    return out


def _vmhwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def matches(job: SpoolJob, argv: list[str]) -> bool:
    """Whether ``argv`` is the top process Snakemake started for ``job``: ``bash -c "…<its
    command>"``, or its command itself (bash runs a lone last command in its own place)."""
    cmdline = " ".join(argv)
    if job.shellcmd and job.shellcmd.strip():
        if normalized(job.shellcmd) in normalized(cmdline):
            return True
        try:
            words = shlex.split(job.shellcmd.strip().split(";")[-1] if ";" in job.shellcmd
                                else job.shellcmd)  # fmt: skip
        except ValueError:
            return False
        return (
            bool(words)
            and len(words) == len(argv)
            and argv[1:] == words[1:]
            and (os.path.basename(argv[0]) == os.path.basename(words[0]))
        )
    if "--target-jobs" in cmdline and job.rule and f"{job.rule}:" in cmdline:
        return all(f"{k}={v}" in cmdline for k, v in job.wildcards.items())
    return False


class ResourceSampler:
    """Samples one run's process group; writes ``job_resources`` and ``run_resources``."""

    def __init__(
        self, run_id: str, pgid: int, jobs: SpoolJobs, emit: Emit, *, interval: float = 1.0
    ) -> None:
        self.run_id = run_id
        self.pgid = pgid
        self.jobs = jobs
        self.emit = emit
        self.interval = interval
        self.meters: dict[tuple[str, int], JobMeter] = {}
        self._snakemake: int | None = None
        self._snakemake_children: float | None = None
        self._last_total: float | None = None
        self._last_t: float | None = None
        self._window_start: float | None = None
        self._window: list[float] = [0.0, 0.0]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> ResourceSampler:
        self._thread = threading.Thread(
            target=self._loop, name=f"sample:{self.run_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """A last sample, the figures of every job that ended, the last series point."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            with contextlib.suppress(Exception):
                self.sample(final=True)
            self._flush_point(force=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self._lock:
                    self.sample()
            except Exception:  # measuring must never disturb the run
                log.exception("run %s: sampling its processes failed", self.run_id)

    # -- one sample -----------------------------------------------------------------------------
    def sample(self, *, final: bool = False) -> None:
        now = time.time()
        procs = read_procs(self.pgid)
        jobs = {job.jobid: job for job in self.jobs.snapshot()}
        self._run_point(now, procs)
        snakemake = self._find_snakemake(procs)
        children_now = procs[snakemake].children_cpu if snakemake in procs else None
        for job in jobs.values():
            key = (job.jobid, job.attempt)
            new = key not in self.meters and key not in self.jobs.resources_written
            if job.running and job.local and new:
                self.meters[key] = JobMeter(job.jobid, job.attempt)
        if snakemake is not None:
            self._assign_roots(procs, snakemake, jobs)
        gone: list[JobMeter] = []
        for meter in self.meters.values():
            if meter.cpu is not None or meter.emitted:
                continue
            if meter.root is not None:
                root = procs.get(meter.root)
                if root is not None and root.create_time == meter.root_created:
                    self._measure(meter, procs)
                    continue
                gone.append(meter)  # its top process was reaped since the last sample
        self._settle_cpu(gone, children_now)
        self._snakemake_children = children_now if children_now is not None else None
        for meter in self.meters.values():
            job = jobs.get(meter.jobid)
            over = job is None or job.state != "running" or job.attempt > meter.attempt
            if meter.emitted or not (over or final):
                continue
            if meter.cpu is not None or meter.root is None:
                self._emit_job(meter, job)  # measured, or came and went between two samples
            elif final:
                meter.cpu = meter.cpu_live
                self._emit_job(meter, job)

    def _find_snakemake(self, procs: dict[int, Proc]) -> int | None:
        if self._snakemake in procs:
            return self._snakemake
        for proc in procs.values():  # the exit recorder leads the group; Snakemake is its child
            if proc.ppid == self.pgid and "snakemake" in proc.cmdline:
                self._snakemake = proc.pid
                return proc.pid
        return None

    def _assign_roots(
        self, procs: dict[int, Proc], snakemake: int, jobs: dict[str, SpoolJob]
    ) -> None:
        taken = {m.root for m in self.meters.values() if m.root is not None}
        for proc in procs.values():
            if proc.ppid != snakemake or proc.pid in taken or not proc.cmdline:
                continue
            for meter in self.meters.values():
                job = jobs.get(meter.jobid)
                if (
                    meter.root is None
                    and meter.cpu is None
                    and job is not None
                    and job.running
                    and job.attempt == meter.attempt
                    and matches(job, proc.argv)
                ):
                    meter.root, meter.root_created = proc.pid, proc.create_time
                    taken.add(proc.pid)
                    break

    def _measure(self, meter: JobMeter, procs: dict[int, Proc]) -> None:
        tree = _tree(procs, meter.root)  # type: ignore[arg-type]
        meter.pids |= tree
        meter.samples += 1
        meter.cpu_live = max(meter.cpu_live, sum(procs[p].cpu for p in tree))
        meter.peak_rss = max(meter.peak_rss, sum(procs[p].rss for p in tree))
        meter.peak_hwm = max(meter.peak_hwm, max((procs[p].hwm for p in tree), default=0))

    def _settle_cpu(self, gone: list[JobMeter], children_now: float | None) -> None:
        """Jobs whose top process Snakemake reaped since the last sample: Snakemake's
        reaped-children time grew by their trees' totals."""
        if not gone:
            return
        before = self._snakemake_children
        delta = None if children_now is None or before is None else children_now - before
        known = sum(m.cpu_live for m in gone)
        if delta is None or delta < known:
            for meter in gone:
                meter.cpu = meter.cpu_live
            return
        extra = delta - known
        for meter in gone:
            share = extra * (meter.cpu_live / known) if known else extra / len(gone)
            meter.cpu = meter.cpu_live + share

    def _emit_job(self, meter: JobMeter, job: SpoolJob | None) -> None:
        meter.emitted = True
        wall = None
        if job is not None and job.started_at is not None and job.ended_at is not None:
            wall = round(max(0.0, job.ended_at - job.started_at), 3)
        measured = meter.samples > 0
        data: dict[str, Any] = {
            "jobid": meter.jobid,
            "attempt": meter.attempt,
            "cpu_seconds": round(float(meter.cpu or 0.0), 3) if measured else None,
            "peak_rss_bytes": max(meter.peak_rss, meter.peak_hwm) if measured else None,
            "wall_seconds": wall,
            "processes": len(meter.pids),
            "basis": (
                f"{meter.samples} samples of {len(meter.pids)} process(es) every "
                f"{self.interval:g} s; CPU from the job's exit accounting"
                if measured
                else f"not measured: it ran between two samples ({self.interval:g} s apart)"
            ),
        }
        self.jobs.resources_written.add((meter.jobid, meter.attempt))
        self.emit(envelope.runner_event(self.run_id, "job_resources", data))

    # -- the run's series -----------------------------------------------------------------------
    def _run_point(self, now: float, procs: dict[int, Proc]) -> None:
        total = sum(p.cpu for p in procs.values())
        rss = sum(p.rss for p in procs.values())
        if self._last_total is not None and self._last_t is not None and now > self._last_t:
            percent = max(0.0, (total - self._last_total) / (now - self._last_t) * 100)
            self._window[0] = max(self._window[0], percent)
        self._window[1] = max(self._window[1], float(rss))
        self._last_total, self._last_t = max(total, self._last_total or 0.0), now
        if self._window_start is None:
            self._window_start = now
        self._flush_point()

    def _flush_point(self, *, force: bool = False) -> None:
        start = self._window_start
        if start is None or (not force and time.time() - start < POINT_SECONDS):
            return
        data = {"t": round(start, 3), "cpu_percent": round(self._window[0], 1),
                "rss_bytes": int(self._window[1])}  # fmt: skip
        self.emit(envelope.runner_event(self.run_id, "run_resources", data))
        self._window_start, self._window = None, [0.0, 0.0]


def _tree(procs: dict[int, Proc], root: int) -> set[int]:
    """``root`` and its descendants among ``procs``."""
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found = {root}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
