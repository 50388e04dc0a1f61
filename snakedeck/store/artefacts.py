"""Run artefacts: what a user must see of a run, kept in the store so no reader needs the
runner's disk.

**Log streams.** Each run has append-only text streams: ``snakemake`` (Snakemake's stdout and
stderr as the runner captured them) and one per declared job log, named
:func:`job_log_stream` (``job/<jobid>/<attempt>/<path>``). The runner appends **chunks** of at
most :data:`LOG_CHUNK` bytes, each with the byte offset it starts at in the stream, so a chunk
sent twice (a retry after a store outage, a restarted runner) is a no-op: only the bytes past
the stream's current size are kept. A chunk that starts beyond the size would leave a hole and
is refused (:class:`LogGap`, naming the size to resend from).

**Per-stream cap.** A stream keeps at least its last ``cap`` bytes and at most ``cap`` plus one
chunk: whole chunks that end before ``size - cap`` are dropped as new ones come. Offsets keep
counting every byte ever appended; ``start`` is the first byte still kept, and a read from
before it answers from ``start`` (the reader is told what it missed).

**Outputs.** A run's results (files matching its workflow's ``results`` globs, and Snakemake's
HTML report) are documents keyed by ``(run_id, path)``, the path relative to the run's work
directory and used only as a key, never joined to a filesystem path. Their bytes are blobs
(:mod:`snakedeck.store.blobs`), shared with any other document naming the same content.

**Retention** follows the run: :meth:`ArtefactStore.delete_run_artefacts` removes a run's
streams and outputs, and each blob no other document names any more. Runs are not deleted
yet, so nothing but the contract suite calls it; a run deletion calls it.

Backends: tables beside the run tables in SQLite, collections ``log_streams``/``log_chunks``/
``outputs`` in MongoDB (chunks of an appendable log, where GridFS only holds immutable files;
output contents are GridFS blobs there).
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import Final

from snakedeck.documents import OutputDoc
from snakedeck.store.blobs import BlobStore

LOG_CHUNK: Final = 256 * 1024
"""Largest chunk a log stream stores in one record (and the runner ships in one go)."""
LOG_STREAM_CAP: Final = 32 * 1024 * 1024
"""Default per-stream cap (``SNAKEDECK_LOG_STREAM_CAP``): older chunks are dropped beyond it."""
MAX_READ: Final = 4 * LOG_CHUNK
RUN_LOG: Final = "snakemake"
"""The stream of Snakemake's own output (stdout and stderr)."""
REPORT_PATH: Final = "snakemake_report.html"
"""The key Snakemake's HTML report is stored under among the run's outputs."""
MAX_STREAM_NAME: Final = 600
MAX_OUTPUT_PATH: Final = 500
_STREAM_RE: Final = re.compile(r"^[^\x00-\x1f\x7f]+$")


class LogGap(ValueError):
    """A chunk starts past the stream's end; resend from ``size``."""

    def __init__(self, stream: str, offset: int, size: int) -> None:
        self.stream = stream
        self.offset = offset
        self.size = size
        super().__init__(
            f"log stream {stream!r} has {size} bytes; a chunk at {offset} would leave a gap"
        )


def job_log_stream(jobid: str | int, attempt: int, path: str) -> str:
    """The stream of one declared log file of one attempt of a job (each attempt writes its
    log afresh, so each gets its own stream and offsets always mean the same bytes)."""
    return f"job/{jobid}/{int(attempt)}/{path}"


def job_stream_prefix(jobid: str | int, attempt: int | None = None) -> str:
    return f"job/{jobid}/" if attempt is None else f"job/{jobid}/{int(attempt)}/"


def parse_job_stream(stream: str) -> tuple[str, int, str] | None:
    """``(jobid, attempt, path)`` of a job log stream, ``None`` for any other stream."""
    parts = stream.split("/", 3)
    if len(parts) != 4 or parts[0] != "job" or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2]), parts[3]


def is_stream_name(name: object) -> bool:
    return (
        isinstance(name, str) and 0 < len(name) <= MAX_STREAM_NAME and bool(_STREAM_RE.match(name))
    )


def is_output_path(path: object) -> bool:
    """A relative path with no empty, ``.`` or ``..`` part (a key, but one a CLI may write)."""
    if not isinstance(path, str) or not 0 < len(path) <= MAX_OUTPUT_PATH:
        return False
    if path.startswith("/") or "\\" in path or not _STREAM_RE.match(path):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


@dataclass(frozen=True)
class LogStreamInfo:
    run_id: str
    stream: str
    size: int
    """Bytes ever appended (the offset the next chunk starts at)."""
    start: int
    """Offset of the first byte still kept (0 unless the cap dropped older chunks)."""
    updated_at: float


@dataclass(frozen=True)
class LogSlice:
    """Bytes of a stream from ``offset`` (at most the limit asked for)."""

    stream: str
    offset: int
    """Where ``data`` starts: the offset asked for, or ``start`` if that was dropped."""
    data: bytes
    size: int
    start: int

    @property
    def next_offset(self) -> int:
        return self.offset + len(self.data)


@dataclass(frozen=True)
class ArtefactsDeleted:
    streams: int
    outputs: int
    blobs: int


class ArtefactStore(BlobStore, abc.ABC):
    """Log streams and outputs of runs (each backend makes an append atomic)."""

    log_cap: int = LOG_STREAM_CAP

    # -- log streams ----------------------------------------------------------------------------
    def append_log(self, run_id: str, stream: str, offset: int, data: bytes, *, now: float) -> int:
        """Append ``data``, which starts at ``offset`` in the stream; returns the stream's size
        afterwards. Bytes already stored are skipped (a re-sent chunk is a no-op); a chunk
        starting past the end raises :class:`LogGap`. Data is split into :data:`LOG_CHUNK`
        records."""
        if not is_stream_name(stream):
            raise ValueError(f"{stream!r} is not a log stream name")
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        if not data:
            info = self.log_stream(run_id, stream)
            size = info.size if info is not None else 0
            if offset > size:
                raise LogGap(stream, offset, size)
            return size
        size = offset
        for start in range(0, len(data), LOG_CHUNK):
            piece = data[start : start + LOG_CHUNK]
            size = self._append_chunk(run_id, stream, offset + start, piece, now=now)
        return size

    def read_log(
        self, run_id: str, stream: str, offset: int = 0, limit: int = MAX_READ
    ) -> LogSlice | None:
        """Up to ``limit`` bytes from ``offset`` (``None``: no such stream). Reading from
        before the kept ``start`` reads from ``start``; from the end or beyond, nothing."""
        info = self.log_stream(run_id, stream)
        if info is None:
            return None
        begin = max(int(offset), info.start)
        limit = max(0, min(int(limit), MAX_READ))
        if begin >= info.size or limit == 0:
            return LogSlice(stream, min(begin, info.size), b"", info.size, info.start)
        parts: list[bytes] = []
        got = 0
        for chunk_offset, data in self._read_chunks(run_id, stream, begin, limit):
            skip = max(0, begin + got - chunk_offset)
            piece = data[skip : skip + limit - got]
            if not piece:
                continue
            parts.append(piece)
            got += len(piece)
            if got >= limit:
                break
        return LogSlice(stream, begin, b"".join(parts), info.size, info.start)

    def tail_log(self, run_id: str, stream: str, max_bytes: int) -> LogSlice | None:
        """The last ``max_bytes`` bytes (what is kept of them)."""
        info = self.log_stream(run_id, stream)
        if info is None:
            return None
        return self.read_log(run_id, stream, max(info.start, info.size - max_bytes), max_bytes)

    @abc.abstractmethod
    def log_stream(self, run_id: str, stream: str) -> LogStreamInfo | None: ...

    @abc.abstractmethod
    def log_streams(self, run_id: str, prefix: str = "") -> list[LogStreamInfo]:
        """The run's streams whose name starts with ``prefix``, by name."""

    @abc.abstractmethod
    def _append_chunk(
        self, run_id: str, stream: str, offset: int, data: bytes, *, now: float
    ) -> int:
        """Atomically: skip what is stored, refuse a gap, store the rest as one chunk at the
        stream's end, drop chunks beyond :attr:`log_cap`; return the new size."""

    @abc.abstractmethod
    def _read_chunks(
        self, run_id: str, stream: str, offset: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """Chunks ``(offset, data)`` in order, from the one holding ``offset``, covering at
        least ``limit`` bytes when there are that many."""

    # -- outputs --------------------------------------------------------------------------------
    def put_output(self, doc: OutputDoc) -> None:
        """Record (or replace) an output whose content is stored as the blob ``sha256``; the
        blob of a replaced document goes when nothing else names it."""
        if not is_output_path(doc.get("path")):
            raise ValueError(f"{doc.get('path')!r} is not a relative output path")
        old = self._replace_output(doc)
        if old is not None and old.get("sha256") and old.get("sha256") != doc.get("sha256"):
            self._release_unreferenced(old["sha256"])  # type: ignore[arg-type]

    @abc.abstractmethod
    def list_outputs(self, run_id: str) -> list[OutputDoc]:
        """The run's outputs, by path."""

    @abc.abstractmethod
    def get_output(self, run_id: str, path: str) -> OutputDoc | None: ...

    @abc.abstractmethod
    def _replace_output(self, doc: OutputDoc) -> OutputDoc | None:
        """Upsert by ``(run_id, path)``; the document it replaced, if any."""

    @abc.abstractmethod
    def _count_outputs_with_blob(self, sha256: str) -> int: ...

    # -- retention ------------------------------------------------------------------------------
    def delete_run_artefacts(self, run_id: str) -> ArtefactsDeleted:
        """Remove every log stream and output of the run, and the blobs only they named (for
        when a run is deleted: artefacts live exactly as long as their run)."""
        outputs = self._delete_outputs(run_id)
        streams = self._delete_logs(run_id)
        blobs = 0
        for sha in sorted({o["sha256"] for o in outputs if o.get("sha256")}):
            blobs += self._release_unreferenced(sha)
        return ArtefactsDeleted(streams, len(outputs), blobs)

    def _release_unreferenced(self, sha256: str) -> int:
        if self._blob_referenced(sha256):
            return 0
        return int(self.delete_blob(sha256))

    def _blob_referenced(self, sha256: str) -> bool:
        return super()._blob_referenced(sha256) or self._count_outputs_with_blob(sha256) > 0

    @abc.abstractmethod
    def _delete_outputs(self, run_id: str) -> list[OutputDoc]: ...

    @abc.abstractmethod
    def _delete_logs(self, run_id: str) -> int:
        """Delete the run's streams and chunks; how many streams there were."""
