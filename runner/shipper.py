"""Ships what a user must see of a run into the store while it runs: Snakemake's log, each
job's declared log files, results, and why each failed job failed.

One :class:`ArtefactShipper` thread per run, every :data:`SHIP_INTERVAL` seconds:

* **logs**: ``snakemake.log`` (the runner writes Snakemake's stdout and stderr there) and the
  declared logs of every job (paths from ``job_info``/``job_error`` in the run's spool) are
  tailed into log streams (:mod:`snakedeck.store.artefacts`) in chunks of at most
  :data:`~snakedeck.store.artefacts.LOG_CHUNK` bytes, cut at line ends (a line still being
  written waits for its end, up to :data:`HOLD_PARTIAL` seconds). Each shipped chunk is then
  published on the updates fanout (``{"kind": "persisted", "logs": [{run_id, stream, offset,
  next_offset, text}]}``), which the live feed forwards to the run's subscribers as ``log``
  messages; a subscriber catching up reads ``GET /runs/{id}/log?offset=``.
* **failures**: each ``job_error`` becomes a ``job_failure`` event in the spool once the text
  Snakemake printed for the job is in its log (:mod:`runner.failures`), with the exit code
  from Snakemake's matching ``error`` event and the tail of the job's declared logs.
* **results**: a finished job's outputs that match the workflow's ``results`` are stored at
  once; the rest after the run (:mod:`runner.results`).

Everything is on local disk first, so a store outage only delays shipping (with back-off):
Snakemake never waits for it. The run's end waits for a bounded final round
(:meth:`ArtefactShipper.finish_attempt`); what is left is shipped after it
(:meth:`ArtefactShipper.drain`), and a restarted runner ships from where the store's streams
end (appends are idempotent by offset).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from runner.failures import LogAttributor, exception_message
from runner.results import REPORT_PATH, Result, Results
from runner.spool_jobs import SpoolJob, SpoolJobs
from snakedeck import envelope
from snakedeck.backoff import Backoff
from snakedeck.bus.base import Bus, BusError
from snakedeck.documents import OutputDoc
from snakedeck.envelope import Envelope
from snakedeck.rundir import RunDir
from snakedeck.store import LogGap, Store, StoreError
from snakedeck.store.artefacts import LOG_CHUNK, RUN_LOG, job_log_stream
from snakedeck.store.errors import BlobTooLarge

log = logging.getLogger(__name__)

SHIP_INTERVAL: Final = 1.0
HOLD_PARTIAL: Final = 2.0
"""Seconds an unfinished last line waits for its newline before it is shipped as it is."""
ROUND_BUDGET: Final = 8 * LOG_CHUNK
"""Bytes one round ships per stream, so one busy log cannot hold the others up."""
UPDATE_BYTES: Final = 1024 * 1024
LOG_TAIL_LINES: Final = 40
LOG_TAIL_BYTES: Final = 8 * 1024
MAX_FAILURE_LOGS: Final = 3
FAILURE_WAIT: Final = 10.0
"""Seconds a failure waits for its text in Snakemake's log before it goes without."""

Emit = Callable[[Envelope], bool]
"""Append an event to the run's spool; False once the run's events are closed."""


def utf8_cut(data: bytes, limit: int) -> int:
    """The largest cut at most ``limit`` that does not split a UTF-8 character."""
    cut = min(limit, len(data))
    while 0 < cut < len(data) and (data[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut or min(limit, len(data))


@dataclass
class Tail:
    """One local file shipped into one stream."""

    path: Path
    stream: str
    jobid: str | None = None
    pos: int | None = None
    """Bytes of the file shipped (= the stream's size); ``None`` until the store is asked."""
    partial_since: float | None = None
    closing: bool = False
    """Its job ended: ship what is left, then stop following it."""

    def pending(self) -> bool:
        try:
            size = self.path.stat().st_size
        except OSError:
            return False
        return self.pos is None or size > self.pos


@dataclass
class PendingFailure:
    job: SpoolJob
    attempt: int
    error_index: int
    since: float
    logs: list[dict[str, Any]] = field(default_factory=list)
    """``{path, tail}`` of the job's declared logs as it failed."""


class ArtefactShipper:
    """Logs, failures and results of one run, shipped by a thread of its own."""

    def __init__(
        self,
        run_id: str,
        rd: RunDir,
        store: Store,
        bus: Bus,
        emit: Emit,
        *,
        max_result: int,
        interval: float = SHIP_INTERVAL,
    ) -> None:
        self.run_id = run_id
        self.rd = rd
        self.store = store
        self.bus = bus
        self.emit = emit
        self.max_result = max_result
        self.interval = interval
        self.jobs = SpoolJobs(rd.spool)
        self.results: Results | None = None
        self.attributor = LogAttributor(self._shellcmd)
        self._attributor_pos = 0
        self._attributor_rest = b""
        self._tails: dict[str, Tail] = {RUN_LOG: Tail(rd.log, RUN_LOG)}
        self._pending_failures: dict[tuple[str, int], PendingFailure] = {}
        self._error_counts: dict[str, int] = {}
        self._outputs_due: dict[str, tuple[Result, str | None]] = {}
        self._shipped: dict[str, tuple[int, int]] = {}
        """Result path → (size, mtime_ns) as stored."""
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = Backoff()
        self._store_down_until = 0.0
        self.failures_emitted = 0
        self._redactions: list[tuple[str, str]] = []
        self.redact_prefix(rd.work, "")
        self.redact_prefix(rd.root, "")

    def redact_prefix(self, directory: Path, shown_as: str) -> None:
        """Show paths under ``directory`` relative to it (``shown_as`` before them) in the
        failure texts: no server path in what a user is answered."""
        for form in {str(directory), str(directory.resolve())}:
            self._redactions.append((form.rstrip("/") + "/", shown_as))
        self._redactions.sort(key=lambda pair: -len(pair[0]))  # the deepest directory first

    def _redact(self, text: str) -> str:
        for prefix, shown_as in self._redactions:
            text = text.replace(prefix, shown_as)
        return text

    # -- lifecycle ------------------------------------------------------------------------------
    def set_results(self, results: Results | None) -> None:
        with self._lock:
            self.results = results

    def start(self) -> ArtefactShipper:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name=f"ship:{self.run_id}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.round()
            except Exception:  # a bug here must not stop the run, only its shipping
                log.exception("run %s: shipping artefacts failed; trying again", self.run_id)

    # -- rounds ---------------------------------------------------------------------------------
    def round(self, *, final: bool = False) -> None:
        """Read the spool and the logs once; ship what is due."""
        with self._lock:
            for change, job in self.jobs.refresh():
                self._on_job(change, job)
            self._attribute(final=final)
            self._emit_failures(final=final)
            if self._store_ok():
                try:
                    self._ship_logs(final=final)
                    self._ship_outputs()
                    self._backoff.reset()
                except StoreError as exc:
                    self._store_failed(exc)

    def _store_ok(self) -> bool:
        return time.monotonic() >= self._store_down_until

    def _store_failed(self, exc: StoreError) -> None:
        """Every store call after a failure waits out the back-off: each one would otherwise
        spend the store's full timeout, and a run's last round has one per ended job."""
        delay = self._backoff.delay()
        self._store_down_until = time.monotonic() + delay
        log.warning(
            "run %s: the store is unavailable (%s); shipping again in %.0f s",
            self.run_id, exc, delay,
        )  # fmt: skip

    def finish_attempt(self, deadline: float) -> None:
        """Snakemake has exited: a last read of everything, every failure emitted, every
        result found; shipping goes on while the store takes it, until ``deadline``
        (monotonic). With the store away it stops at once: :meth:`drain` ships the rest after
        the run's end, which a store outage never holds up for longer than one attempt."""
        with self._lock:
            self.round(final=True)
            if self.results is not None:
                for found in self.results.scan():
                    self._due(found, None)
            while self.pending() and time.monotonic() < deadline and not self._stop.is_set():
                if not self._store_ok():
                    return
                self.round(final=True)

    def drain(self, deadline: float, should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Ship what is left (after the run's end); True once nothing is."""
        self.stop()
        while self.pending():
            if time.monotonic() >= deadline or should_stop():
                log.warning(
                    "run %s: artefacts not all stored yet; they stay in its directory, and "
                    "this runner ships them if it recovers the run (or it is resumed)",
                    self.run_id,
                )
                return False
            if self._store_ok():
                self.round(final=True)
            time.sleep(0.2 if self._store_ok() else 1.0)
        return True

    def pending(self) -> bool:
        with self._lock:
            return bool(self._outputs_due) or any(t.pending() for t in self._tails.values())

    # -- jobs -----------------------------------------------------------------------------------
    def _shellcmd(self, jobid: str) -> str | None:
        job = self.jobs.jobs.get(jobid)
        return job.shellcmd if job is not None else None

    def prime(self, *, history_ended: bool) -> None:
        """A first round before Snakemake starts. With ``history_ended`` (a resume), the jobs
        of earlier attempts are over: their logs are shipped as they are now and no longer
        followed, since this attempt may write the same files afresh."""
        with self._lock:
            self.round()
            if history_ended:
                for tail in self._tails.values():
                    if tail.jobid is not None:
                        tail.closing = True

    def _on_job(self, change: str, job: SpoolJob) -> None:
        if change == "started":
            # A retry writes its logs afresh (into streams of its own): the earlier attempt's
            # were shipped as it ended.
            for key, tail in list(self._tails.items()):
                if tail.jobid == job.jobid:
                    del self._tails[key]
            for path in job.logs:
                self._follow(job, path)
            return
        for path in job.logs:  # job_error may name more logs (aux, cluster logs)
            self._follow(job, path)
        for key, tail in list(self._tails.items()):
            if tail.jobid == job.jobid:
                tail.closing = True
                self._ship_now(key, tail)
        if change == "finished" and self.results is not None:
            for out in job.outputs:
                found = self.results.result(out)
                if found is not None:
                    self._due(found, job.jobid)
        if change == "failed":
            index = self._error_counts.get(job.jobid, 0)
            self._error_counts[job.jobid] = index + 1
            key = (job.jobid, job.attempt)
            if key not in self.jobs.failures_written:
                self._pending_failures[key] = PendingFailure(
                    job, job.attempt, index, time.monotonic(), self._log_tails(job.logs)
                )

    def _ship_now(self, key: str, tail: Tail) -> None:
        """Ship what an ended job's log holds now, before a retry may write it again."""
        if not self._store_ok():
            return
        try:
            self._publish(self._ship_tail(tail, final=True))
        except StoreError as exc:
            self._store_failed(exc)
            return
        if not tail.pending():
            self._tails.pop(key, None)

    def _follow(self, job: SpoolJob, path: str) -> None:
        rel = self._work_relative(path)
        if rel is None:
            return
        stream = job_log_stream(job.jobid, max(job.attempt, 1), rel)
        if stream not in self._tails:
            self._tails[stream] = Tail(self.rd.work / rel, stream, job.jobid)

    def _work_relative(self, path: str) -> str | None:
        """A declared log as a path inside the work directory (``None``: outside it)."""
        work = self.rd.work.resolve()
        target = Path(path) if os.path.isabs(path) else work / path
        try:
            resolved = target.resolve()
        except OSError:
            return None
        if not resolved.is_relative_to(work) or resolved == work:
            return None
        return resolved.relative_to(work).as_posix()

    # -- failures -------------------------------------------------------------------------------
    def _attribute(self, *, final: bool) -> None:
        """Feed the complete lines Snakemake's log grew by to the attributor."""
        while True:
            try:
                with open(self.rd.log, "rb") as f:
                    f.seek(self._attributor_pos)
                    data = f.read(16 * LOG_CHUNK)
            except OSError:
                return
            self._attributor_pos += len(data)
            more = len(data) == 16 * LOG_CHUNK
            data = self._attributor_rest + data
            cut = len(data) if final and not more else data.rfind(b"\n") + 1
            self._attributor_rest = data[cut:]
            self.attributor.feed(data[:cut].decode("utf-8", errors="replace").splitlines())
            if not more:
                break
        if final:
            self.attributor.flush()

    def _emit_failures(self, *, final: bool) -> None:
        now = time.monotonic()
        for key, pending in list(self._pending_failures.items()):
            text = self.attributor.failure(pending.job.jobid, pending.error_index)
            if text is None and not final and now - pending.since < FAILURE_WAIT:
                continue
            if text is None:
                text = self.attributor.running_text(pending.job.jobid)
            if self.emit(self._failure_event(pending, text)):
                self.failures_emitted += 1
            self.jobs.failures_written.add(key)
            del self._pending_failures[key]

    def _failure_event(self, pending: PendingFailure, text: Any) -> Envelope:
        job = pending.job
        error = job.error or self.jobs.match_error(job)
        lines = list(text.lines) if text is not None else []
        message = exception_message(lines)
        if error is not None:
            head = error.msg.removeprefix("RuleException:").strip().splitlines()
            cls = head[0].split(" in ", 1)[0] if head else "Error"
            if error.exit_code is not None:
                message = f"{cls}: the command returned non-zero exit status {error.exit_code}"
            elif error.signal is not None:
                message = f"{cls}: the command was killed by signal {error.signal}"
            elif message is None and len(head) > 1:
                message = f"{cls}: {head[1].strip()}"
        if message is None:
            message = job.rule_msg or job.error_msg or f"job {job.jobid} failed"
        data: dict[str, Any] = {
            "jobid": job.jobid,
            "rule": job.rule,
            "attempt": pending.attempt,
            "exit_code": error.exit_code if error is not None else None,
            "signal": error.signal if error is not None else None,
            "message": self._redact(message[:1000]),
            "text": self._redact(text.text) if text is not None else "",
            "text_shared": bool(text is not None and text.shared),
            "truncated": bool(text is not None and text.truncated),
            "logs": pending.logs,
        }
        level = "error"
        return envelope.runner_event(
            self.run_id, "job_failure", data, msg=data["message"], level=level
        )

    def _log_tails(self, paths: list[str]) -> list[dict[str, Any]]:
        tails: list[dict[str, Any]] = []
        for path in paths[:MAX_FAILURE_LOGS]:
            rel = self._work_relative(path)
            if rel is None:
                continue
            try:
                with open(self.rd.work / rel, "rb") as f:
                    size = os.fstat(f.fileno()).st_size
                    f.seek(max(0, size - LOG_TAIL_BYTES))
                    data = f.read(LOG_TAIL_BYTES)
            except OSError:
                continue
            lines = data.decode("utf-8", errors="replace").splitlines()
            tail = "\n".join(lines[-LOG_TAIL_LINES:])
            tails.append({"path": rel, "tail": self._redact(tail)})
        return tails

    # -- logs -----------------------------------------------------------------------------------
    def _ship_logs(self, *, final: bool) -> None:
        updates: list[dict[str, Any]] = []
        for key, tail in list(self._tails.items()):
            updates += self._ship_tail(tail, final=final or tail.closing)
            if tail.closing and not tail.pending():
                del self._tails[key]
        self._publish(updates)

    def _ship_tail(self, tail: Tail, *, final: bool) -> list[dict[str, Any]]:
        if tail.pos is None:
            info = self.store.log_stream(self.run_id, tail.stream)
            tail.pos = info.size if info is not None else 0
        try:
            with open(tail.path, "rb") as f:
                f.seek(tail.pos)
                data = f.read(ROUND_BUDGET)
        except OSError:
            return []
        if not data:
            return []
        cut = len(data) if final else data.rfind(b"\n") + 1
        if cut == 0:  # one unfinished line: ship it when it ends, is long, or has waited
            now = time.monotonic()
            tail.partial_since = tail.partial_since or now
            if len(data) >= LOG_CHUNK or now - tail.partial_since >= HOLD_PARTIAL:
                cut = utf8_cut(data, LOG_CHUNK)
        if cut == 0:
            return []
        tail.partial_since = None
        shipped: list[dict[str, Any]] = []
        start = 0
        while start < cut:
            end = start + utf8_cut(data[start:cut], LOG_CHUNK)
            piece = data[start:end]
            offset = tail.pos
            try:
                tail.pos = self.store.append_log(
                    self.run_id, tail.stream, offset, piece, now=time.time()
                )
            except LogGap as gap:  # the store has less than we thought: resend from there
                tail.pos = gap.size
                return shipped
            entry: dict[str, Any] = {
                "run_id": self.run_id,
                "stream": tail.stream,
                "offset": offset,
                "next_offset": offset + len(piece),
                "text": piece.decode("utf-8", errors="replace"),
            }
            if tail.jobid is not None:
                entry["jobid"] = tail.jobid
            shipped.append(entry)
            start = end
        return shipped

    def _publish(self, entries: list[dict[str, Any]]) -> None:
        batch: list[dict[str, Any]] = []
        size = 0
        for entry in [*entries, None]:
            if entry is not None and (not batch or size + len(entry["text"]) < UPDATE_BYTES):
                batch.append(entry)
                size += len(entry["text"])
                continue
            if batch:
                update = {"kind": "persisted", "events": [], "runs": [], "jobs": [], "logs": batch}
                try:
                    self.bus.publish_update(update)
                except BusError as exc:  # best effort: readers catch up with ?offset=
                    log.debug("run %s: live log update not published: %s", self.run_id, exc)
            batch, size = ([entry], len(entry["text"])) if entry is not None else ([], 0)

    # -- outputs --------------------------------------------------------------------------------
    def _due(self, found: Result, jobid: str | None) -> None:
        previous = self._outputs_due.get(found.path)
        self._outputs_due[found.path] = (found, jobid or (previous[1] if previous else None))

    def add_report(self, path: Path) -> None:
        """Store Snakemake's HTML report among the run's outputs."""
        from snakedeck.workflows import ResultSpec

        spec = ResultSpec(REPORT_PATH, "html", "Snakemake's report of the run")
        with self._lock:
            self._outputs_due[REPORT_PATH] = (Result(REPORT_PATH, spec, path), None)

    def _ship_outputs(self) -> None:
        for rel, (found, jobid) in list(self._outputs_due.items()):
            try:
                stat = found.file.stat()
            except OSError:
                del self._outputs_due[rel]
                continue
            mark = (stat.st_size, stat.st_mtime_ns)
            if self._shipped.get(rel) == mark:
                del self._outputs_due[rel]
                continue
            doc: OutputDoc = {
                "run_id": self.run_id,
                "path": rel,
                "kind": found.spec.kind,
                "description": found.spec.description,
                "size": stat.st_size,
                "stored_at": envelope.now_iso(),
                "jobid": jobid,
            }
            if rel == REPORT_PATH:
                doc["report"] = True
            try:
                with open(found.file, "rb") as f:
                    blob = self.store.put_blob(f, max_bytes=self.max_result)
            except BlobTooLarge:
                log.warning("run %s: result %s is larger than %d bytes; not stored",
                            self.run_id, rel, self.max_result)  # fmt: skip
                del self._outputs_due[rel]
                continue
            except OSError as exc:
                log.warning("run %s: cannot read result %s (%s)", self.run_id, rel, exc)
                del self._outputs_due[rel]
                continue
            doc["sha256"] = blob.sha256
            doc["size"] = blob.size
            self.store.put_output(doc)
            self._shipped[rel] = mark
            del self._outputs_due[rel]
