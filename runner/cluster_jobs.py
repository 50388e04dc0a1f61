"""A run's cluster jobs, as the runner asks the scheduler about them once Snakemake ended.

The logger plugin records each job's cluster job id from the executor's submission line
(``job_cluster`` events in the run's spool). When Snakemake has exited, the runner reads those
ids back from the spool, asks SLURM (``sacct``, else ``squeue``) for each job's partition,
node, state and reason, and records them as more ``job_cluster`` events. A run that was
cancelled, stopped or lost also gets every cluster job still queued cancelled (``scancel``).
Snakemake is meant to cancel them itself on SIGINT (its executor's ``cancel_jobs``), but
Snakemake 9.27 with the SLURM plugin 2.8 was seen here to exit on SIGINT leaving its jobs
running: this ``scancel`` by the recorded ids is what cancels them.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from snakedeck import envelope
from snakedeck.envelope import Envelope
from snakedeck.spool import SpoolReader

log = logging.getLogger(__name__)

SCHEDULER_TIMEOUT = 30.0


@dataclass(frozen=True)
class ClusterJob:
    jobid: str
    """Snakemake's job id."""
    cluster_job_id: str


@dataclass(frozen=True)
class SchedulerView:
    partition: str = ""
    node: str = ""
    state: str = ""
    reason: str = ""


def submitted(spool: Path, since: int = 0) -> list[ClusterJob]:
    """The cluster jobs the spool names (after byte ``since``: this attempt's), in order."""
    found: dict[str, ClusterJob] = {}
    _read_submitted(spool, since, found)
    return list(found.values())


def _read_submitted(spool: Path, offset: int, found: dict[str, ClusterJob]) -> int:
    """Add the cluster jobs named after byte ``offset`` to ``found``; return the new offset."""
    reader = SpoolReader(spool)
    while True:
        items, _bad = reader.read_from(offset, limit=5000)
        if not items:
            return offset
        offset = reader.end_offset
        for _end, event in items:
            if event.get("type") != "job_cluster":
                continue
            data = event.get("data") or {}
            cid, jid = data.get("cluster_job_id"), data.get("jobid")
            if isinstance(cid, str) and cid and jid is not None:
                found.setdefault(cid, ClusterJob(str(jid), cid))


class Watcher:
    """While Snakemake runs: every ``interval`` seconds, the partition and node of the run's
    cluster jobs that SLURM has started since (``squeue``), recorded once each, so the job
    table shows where a job runs while it runs."""

    def __init__(
        self,
        run_id: str,
        spool: Path,
        *,
        since: int,
        emit: Callable[[Envelope], bool],
        interval: float = 10.0,
    ) -> None:
        self.run_id = run_id
        self.spool = spool
        self.offset = since
        self.emit = emit
        self.interval = interval
        self.jobs: dict[str, ClusterJob] = {}
        self.placed: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"cluster:{run_id}", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(SCHEDULER_TIMEOUT + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # watching must never end the run
                log.exception("run %s: watching its cluster jobs failed", self.run_id)

    def poll(self) -> None:
        self.offset = _read_submitted(self.spool, self.offset, self.jobs)
        waiting = [cid for cid in self.jobs if cid not in self.placed]
        if not waiting:
            return
        out = _run(["squeue", "-h", "-j", ",".join(waiting), "-o", "%i|%P|%N|%T"]) or ""
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) != 4 or parts[0] not in self.jobs or not parts[2]:
                continue  # still pending: no node yet
            job = self.jobs[parts[0]]
            data = {"jobid": job.jobid, "cluster_job_id": job.cluster_job_id,
                    "partition": parts[1], "node": parts[2], "cluster_state": parts[3]}  # fmt: skip
            if self.emit(envelope.runner_event(self.run_id, "job_cluster", data)):
                self.placed.add(parts[0])


def _run(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=SCHEDULER_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", argv[0], exc)
        return None
    if done.returncode != 0:
        log.warning("%s failed: %s", argv[0], done.stderr.strip()[:500])
        return None
    return done.stdout


def scheduler_views(ids: Iterable[str]) -> dict[str, SchedulerView]:
    """What SLURM says of each job: ``squeue`` for those still queued, ``sacct`` (accounting)
    for the rest."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    views: dict[str, SchedulerView] = {}
    out = _run(["sacct", "-X", "-n", "-P", "-j", ",".join(wanted),
                "--format=JobID,Partition,NodeList,State,Reason"])  # fmt: skip
    for line in (out or "").splitlines():
        parts = line.split("|")
        if len(parts) == 5 and parts[0] in wanted:
            state = parts[3].split()[0] if parts[3] else ""  # "CANCELLED by 0"
            node = "" if parts[2] in ("None assigned", "") else parts[2]
            reason = "" if parts[4] in ("None", "") else parts[4]
            views[parts[0]] = SchedulerView(parts[1], node, state, reason)
    out = _run(["squeue", "-h", "-j", ",".join(wanted), "-o", "%i|%P|%N|%T|%r"])
    for line in (out or "").splitlines():
        parts = line.split("|")
        if len(parts) == 5 and parts[0] in wanted:
            reason = "" if parts[4] in ("None", "") else parts[4]
            views[parts[0]] = SchedulerView(parts[1], parts[2], parts[3], reason)
    return views


def queued(ids: Iterable[str]) -> list[str]:
    """Which of ``ids`` SLURM still has queued or running."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    out = _run(["squeue", "-h", "-j", ",".join(wanted), "-o", "%i"]) or ""
    return [j for j in out.split() if j in wanted]


SCANCEL_SETTLE = 30.0
"""Seconds a settle waits for the jobs it cancelled to leave squeue before it records them."""


def settle(
    run_id: str,
    spool: Path,
    *,
    since: int,
    stopped: bool,
    emit: Callable[[Envelope], bool],
) -> list[str]:
    """Record partition, node and state of the run's cluster jobs; when the run was
    ``stopped`` (cancelled, aborted, lost), ``scancel`` what is still queued first. Returns
    the ids cancelled here."""
    jobs = submitted(spool, since)
    if not jobs:
        return []
    ids = [j.cluster_job_id for j in jobs]
    cancelled: list[str] = []
    if stopped:
        cancelled = queued(ids)
        if cancelled:
            log.warning("run %s: cluster jobs %s still queued; scancel", run_id, cancelled)
            _run(["scancel", *cancelled])
            # A cancelled job passes through COMPLETING; record the state it ends in.
            deadline = time.monotonic() + SCANCEL_SETTLE
            while queued(cancelled) and time.monotonic() < deadline:
                time.sleep(0.5)
    views = scheduler_views(ids)
    for job in jobs:
        view = views.get(job.cluster_job_id)
        if view is None:
            continue
        data = {
            "jobid": job.jobid,
            "cluster_job_id": job.cluster_job_id,
            "partition": view.partition,
            "node": view.node,
            "cluster_state": view.state,
            "cluster_reason": view.reason,
        }
        emit(envelope.runner_event(run_id, "job_cluster", {k: v for k, v in data.items() if v}))
    return cancelled
