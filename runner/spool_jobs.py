"""The jobs of a run as the runner reads them from the run's own spool.

The runner's artefact shipper and resource sampler need to know, while Snakemake runs, which
jobs exist, their attempts, commands, declared logs and outputs, and which failed or finished.
That is all in the spool the logger plugin writes (the runner's own disk), so they read it
here instead of asking the store. The spool of a resumed run holds every attempt: job attempts
count on across them, as in the store's job documents.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from snakedeck.spool import SpoolReader

READ_BATCH = 5000
RECENT_ERRORS = 200
EXIT_STATUS_RE = re.compile(r"returned non-zero exit status (-?\d+)\.")
SIGNAL_RE = re.compile(r"died with <Signals\.(\w+): (\d+)>")

Change = Literal["started", "finished", "failed"]


def log_paths(value: Any) -> list[str]:
    """A job's ``log``: one path, a list of them, or (named logs) a mapping of them."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        return [p for v in value for p in log_paths(v) if p]
    return []


def normalized(text: str) -> str:
    return " ".join(text.split())


def epoch(ts: object) -> float | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class SnakemakeError:
    """An ``error`` event: Snakemake's exception text (no jobid; matched by command)."""

    msg: str
    exit_code: int | None
    signal: int | None
    index: int = 0
    """How many ``error`` events came before it in the spool."""


@dataclass
class SpoolJob:
    jobid: str
    rule: str | None = None
    wildcards: dict[str, Any] = field(default_factory=dict)
    shellcmd: str | None = None
    local: bool = True
    outputs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    """The current attempt's declared log files (job_error may name more, e.g. aux logs)."""
    attempt: int = 0
    """How many times it started (one ``job_info`` per attempt, across resumes too)."""
    state: str = "pending"
    started_at: float | None = None
    ended_at: float | None = None
    error_msg: str = ""
    rule_msg: str | None = None
    error: SnakemakeError | None = None
    """Snakemake's exception for the current attempt's failure, when one matches."""
    errors_before: int = 0
    """``error`` events seen before the current attempt started (older ones are not its)."""

    @property
    def running(self) -> bool:
        return self.state == "running"


class SpoolJobs:
    """Follows a spool: ``refresh()`` reads what was appended and returns the job changes."""

    def __init__(self, spool: Path) -> None:
        self._reader = SpoolReader(spool)
        self._offset = 0
        self._lock = threading.Lock()
        self.jobs: dict[str, SpoolJob] = {}
        self.errors: deque[SnakemakeError] = deque(maxlen=RECENT_ERRORS)
        self.failures_written: set[tuple[str, int]] = set()
        """``(jobid, attempt)`` whose ``job_failure`` the runner wrote already."""
        self.resources_written: set[tuple[str, int]] = set()
        self.cores: int | None = None
        self._errors_seen = 0

    def refresh(self) -> list[tuple[Change, SpoolJob]]:
        with self._lock:
            changes: list[tuple[Change, SpoolJob]] = []
            while True:
                items, _bad = self._reader.read_from(self._offset, limit=READ_BATCH)
                self._offset = self._reader.end_offset
                for _, event in items:
                    change = self._apply(event)
                    if change is not None:
                        changes.append(change)
                if len(items) < READ_BATCH:
                    return changes

    def snapshot(self) -> list[SpoolJob]:
        with self._lock:
            return list(self.jobs.values())

    def _job(self, jobid: object) -> SpoolJob | None:
        if not isinstance(jobid, (int, str)) or isinstance(jobid, bool):
            return None
        key = str(jobid)
        job = self.jobs.get(key)
        if job is None:
            job = self.jobs[key] = SpoolJob(key)
        return job

    def _apply(self, event: dict[str, Any]) -> tuple[Change, SpoolJob] | None:
        kind = event.get("type")
        data = event.get("data") or {}
        if kind == "job_info":
            job = self._job(data.get("jobid"))
            if job is None:
                return None
            job.attempt += 1
            job.rule = data.get("rule_name") or job.rule
            wildcards = data.get("wildcards")
            job.wildcards = dict(wildcards) if isinstance(wildcards, Mapping) else {}
            job.shellcmd = data.get("shellcmd") if isinstance(data.get("shellcmd"), str) else None
            job.local = data.get("local") is not False
            job.outputs = [o for o in data.get("output") or [] if isinstance(o, str)]
            job.logs = log_paths(data.get("log"))
            job.state = "running"
            job.started_at = epoch(event.get("ts"))
            job.ended_at = None
            job.error = None
            job.errors_before = self._errors_seen
            return "started", job
        if kind == "job_finished":
            job = self._job(data.get("job_id", data.get("jobid")))
            if job is None:
                return None
            job.state = "done"
            job.ended_at = epoch(event.get("ts"))
            return "finished", job
        if kind == "job_error":
            job = self._job(data.get("jobid"))
            if job is None:
                return None
            job.rule = job.rule or data.get("rule_name")
            job.attempt = max(job.attempt, 1)
            job.state = "failed"
            job.ended_at = epoch(event.get("ts"))
            job.error_msg = str(event.get("msg") or "")
            job.rule_msg = data.get("rule_msg") if isinstance(data.get("rule_msg"), str) else None
            for path in log_paths(data.get("log")):
                if path not in job.logs:
                    job.logs.append(path)
            if isinstance(data.get("shellcmd"), str) and not job.shellcmd:
                job.shellcmd = data["shellcmd"]
            job.error = self.match_error(job)
            return "failed", job
        if kind == "error":
            msg = str(event.get("msg") or "")
            code = EXIT_STATUS_RE.search(msg)
            sig = SIGNAL_RE.search(msg)
            error = SnakemakeError(
                msg,
                int(code.group(1)) if code else None,
                int(sig.group(2)) if sig else None,
                self._errors_seen,
            )
            self._errors_seen += 1
            self.errors.append(error)
            for job in self.jobs.values():  # in parallel runs the error may follow its job_error
                if job.state == "failed" and job.error is None and self._matches(job, error):
                    job.error = error
            return None
        if kind == "job_failure" and self._job(data.get("jobid")) is not None:
            self.failures_written.add((str(data["jobid"]), int(data.get("attempt") or 0)))
        elif kind == "job_resources" and self._job(data.get("jobid")) is not None:
            self.resources_written.add((str(data["jobid"]), int(data.get("attempt") or 0)))
        elif kind == "resources_info" and isinstance(data.get("cores"), int):
            self.cores = int(data["cores"])
        return None

    def match_error(self, job: SpoolJob) -> SnakemakeError | None:
        """The latest Snakemake ``error`` naming this job's command."""
        for error in reversed(self.errors):
            if self._matches(job, error):
                return error
        return None

    @staticmethod
    def _matches(job: SpoolJob, error: SnakemakeError) -> bool:
        if not job.shellcmd or not job.shellcmd.strip() or error.index < job.errors_before:
            return False
        return normalized(job.shellcmd) in normalized(error.msg)
