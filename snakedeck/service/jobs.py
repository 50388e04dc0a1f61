"""A run's jobs, their logs and its outputs, read from the store (never from a runner's disk)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, BinaryIO

from snakedeck.documents import (
    JobDoc,
    OutputDoc,
    public,
)
from snakedeck.service.base import LOG_READ_BYTES, LOG_TAIL_BYTES, MAX_LOG_READ, Doc, ServiceBase
from snakedeck.service.errors import NotFound, invalid, unavailable_on_backend_errors
from snakedeck.states import JobState, RunState
from snakedeck.store import (
    JOB_SORTS,
    BlobNotFound,
    JobFilter,
)
from snakedeck.store.artefacts import (
    REPORT_PATH,
    RUN_LOG,
    LogSlice,
    is_output_path,
    is_stream_name,
    job_stream_prefix,
    parse_job_stream,
)


def _log_paths(value: Any) -> list[str]:
    """A job's ``log`` is a list or (named logs) a mapping of paths."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        return [p for v in value for p in _log_paths(v)]
    return []


def _decoded(part: LogSlice | None, *, leading: bool = False) -> tuple[str, int]:
    """The slice's text and the offset just after it, in whole UTF-8 characters: one cut at
    the end is left for the next read (unless the stream ends there); reading a tail, a
    partial one at the start is dropped."""
    if part is None:
        return "", 0
    data = part.data
    start = 0
    if leading:
        while start < min(len(data), 3) and (data[start] & 0xC0) == 0x80:
            start += 1
    end = len(data)
    if part.next_offset < part.size:
        end = start + _whole_utf8(data[start:])
    return data[start:end].decode("utf-8", errors="replace"), part.offset + end


def _whole_utf8(data: bytes) -> int:
    """The length of the longest prefix of ``data`` that does not end inside a character."""
    size = len(data)
    lead = size - 1
    while lead >= 0 and size - lead <= 3 and (data[lead] & 0xC0) == 0x80:
        lead -= 1
    if lead < 0:
        return size
    byte = data[lead]
    need = (
        2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
    )
    return size if size - lead >= need else lead


class Jobs(ServiceBase):
    """Jobs, logs and outputs."""

    @unavailable_on_backend_errors
    def list_jobs(
        self,
        run_id: str,
        *,
        rule: str | None = None,
        state: str | None = None,
        q: str | None = None,
        sort: str = "jobid",
        page_size: int = 100,
        page_token: str | None = None,
    ) -> Doc:
        self._run(run_id)
        if state is not None and state not in {s.value for s in JobState}:
            raise invalid("state", f"{state!r} is not a job state ({', '.join(JobState)})")
        if sort not in JOB_SORTS:
            raise invalid("sort", f"{sort!r} is not one of {', '.join(JOB_SORTS)}")
        page = self.store.list_jobs(
            run_id,
            JobFilter(rule=rule, state=state, q=q),
            sort=sort,
            page_size=page_size,
            page_token=page_token,
        )
        return {
            "jobs": [public(j) for j in page.items],
            "next_page_token": page.next_page_token,
            "total": page.total,
        }

    @unavailable_on_backend_errors
    def get_job(self, run_id: str, jobid: str) -> JobDoc:
        self._run(run_id)
        job = self.store.get_job(run_id, str(jobid))
        if job is None:
            raise NotFound(f"run {run_id} has no job {jobid}")
        return public(job)

    @unavailable_on_backend_errors
    def job_log(
        self,
        run_id: str,
        jobid: str,
        *,
        max_bytes: int = LOG_TAIL_BYTES,
        attempt: int | None = None,
    ) -> Doc:
        """The tail of each of the job's log files as the runner stored them (its latest
        attempt's, or ``attempt``'s): read from the store, never from a disk."""
        job = self.get_job(run_id, jobid)
        latest = int(job.get("attempt") or 1)
        wanted = latest if attempt is None else attempt
        if not 1 <= wanted <= latest:  # a well-formed number naming no attempt: not found
            raise NotFound(f"job {jobid} has no attempt {attempt} (it has 1 to {latest})")
        logs: list[Doc] = []
        stored: set[str] = set()
        for info in self.store.log_streams(run_id, job_stream_prefix(jobid, wanted)):
            parsed = parse_job_stream(info.stream)
            if parsed is None:
                continue
            stored.add(parsed[2])
            tail = self.store.tail_log(run_id, info.stream, max_bytes)
            text, _ = _decoded(tail, leading=True)
            logs.append(
                {
                    "path": parsed[2],
                    "stream": info.stream,
                    "exists": True,
                    "size": info.size,
                    "truncated": tail is not None and tail.offset > 0,
                    "offset": tail.offset if tail is not None else 0,
                    "content": text,
                }
            )
        if wanted == latest:  # declared logs not stored (yet): named, but no server path
            for rel in _log_paths(job.get("log")):
                if not os.path.isabs(rel) and rel.removeprefix("./") not in stored:
                    logs.append(
                        {"path": rel, "stream": None, "exists": False, "size": 0,
                         "truncated": False, "offset": 0, "content": ""}
                    )  # fmt: skip
        return {"run_id": run_id, "jobid": str(jobid), "attempt": wanted, "logs": logs}

    @unavailable_on_backend_errors
    def run_log(
        self,
        run_id: str,
        *,
        stream: str = RUN_LOG,
        offset: int = 0,
        limit: int = LOG_READ_BYTES,
        tail: int | None = None,
    ) -> Doc:
        """Text of one of the run's log streams (Snakemake's own by default) from ``offset``
        (or its last ``tail`` bytes). Follow it by asking again from ``next_offset``; live
        subscribers get the same chunks as ``log`` messages."""
        run = self._run(run_id)
        if not is_stream_name(stream) or not (
            stream == RUN_LOG or parse_job_stream(stream) is not None
        ):
            raise NotFound(f"run {run_id} has no log stream named {stream[:80]!r}")
        if offset < 0:
            raise invalid("offset", f"must not be negative, got {offset}")
        if not 1 <= limit <= MAX_LOG_READ:
            raise invalid("limit", f"must be between 1 and {MAX_LOG_READ}, got {limit}")
        if tail is not None and not 1 <= tail <= MAX_LOG_READ:
            raise invalid("tail", f"must be between 1 and {MAX_LOG_READ}, got {tail}")
        info = self.store.log_stream(run_id, stream)
        if info is None:
            if stream != RUN_LOG:
                raise NotFound(f"run {run_id} has no log stream {stream!r}")
            part = None
        elif tail is not None:
            part = self.store.tail_log(run_id, stream, tail)
        else:
            part = self.store.read_log(run_id, stream, offset, limit)
        text, end = _decoded(part, leading=tail is not None)
        begin = part.offset if part is not None else 0
        return {
            "run_id": run_id,
            "stream": stream,
            "offset": begin,
            "next_offset": end if part is not None else offset,
            "size": info.size if info is not None else 0,
            "start": info.start if info is not None else 0,
            "missed": max(0, begin - offset) if tail is None else 0,
            "text": text,
            "state": run.get("state"),
        }

    @unavailable_on_backend_errors
    def list_outputs(self, run_id: str) -> Doc:
        """The run's stored results (and its report), by path."""
        self._run(run_id)
        outputs = [public(o) for o in self.store.list_outputs(run_id)]
        report = next((o for o in outputs if o.get("report")), None)
        return {
            "run_id": run_id,
            "outputs": [o for o in outputs if not o.get("report")],
            "report": report,
        }

    @unavailable_on_backend_errors
    def open_output(self, run_id: str, path: str) -> tuple[OutputDoc, BinaryIO]:
        """One result and its content, streamed (the caller closes it). ``path`` is a key
        looked up among the run's outputs, never joined to a filesystem path."""
        self._run(run_id)
        doc = self.store.get_output(run_id, path) if is_output_path(path) else None
        if doc is None:
            raise NotFound(f"run {run_id} has no stored result {path[:200]!r}")
        try:
            return public(doc), self.store.open_blob(doc["sha256"])
        except BlobNotFound:
            raise NotFound(f"the content of result {path!r} is missing from the store") from None

    @unavailable_on_backend_errors
    def open_report(self, run_id: str) -> tuple[OutputDoc, BinaryIO]:
        """Snakemake's HTML report of a COMPLETE run whose workflow asks for one."""
        run = self._run(run_id)
        if self.store.get_output(run_id, REPORT_PATH) is None:
            why = (
                "it is made only once a run is COMPLETE"
                if run.get("state") != RunState.COMPLETE
                else "its workflow does not ask for one, or it could not be made (see the "
                "run's log)"
            )
            raise NotFound(f"run {run_id} has no report: {why}")
        return self.open_output(run_id, REPORT_PATH)
