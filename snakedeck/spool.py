"""The per-run spool: an append-only file of JSON lines (one envelope each) and its checkpoint.

Writers (the Snakemake logger plugin and the runner, in different processes) append with one
``os.write`` on an ``O_APPEND`` descriptor, so lines from several processes never interleave and a
write never waits for anything but the local disk. The forwarder reads complete lines only and
records how far it got (and the last ``seq`` it assigned) in ``<spool>.ckpt``.

Stdlib only: the logger plugin imports this module inside every Snakemake start.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, NamedTuple

from snakedeck import envelope

CHECKPOINT_SUFFIX = ".ckpt"


class SpoolError(RuntimeError):
    """The spool or its checkpoint cannot be used (unreadable, corrupt checkpoint)."""


class SpoolWriter:
    """Append envelopes to a spool file; safe to share between threads and processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._terminate_partial_line()

    def _terminate_partial_line(self) -> None:
        # A writer killed mid-line leaves a fragment; end it so our first line stays parseable.
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                self._write_all(b"\n")

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        written = os.write(self._fd, data)
        while written < len(data):  # only on a full disk or a signal; keep the line whole if we can
            data = data[written:]
            written = os.write(self._fd, data)

    def append(self, event: dict[str, Any]) -> None:
        """Append one envelope as one JSON line (a single write, no fsync, no network)."""
        line = (envelope.dumps(event) + "\n").encode()
        if self._fd is None:
            raise SpoolError(f"spool writer for {self.path} is closed")
        self._write_all(line)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> SpoolWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SpoolReader:
    """Read complete lines of a spool from a byte offset."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.end_offset = 0
        """Byte offset just past the last complete line the latest ``read_from`` consumed
        (including skipped bad lines), i.e. where the next read should start."""

    def read_from(
        self, offset: int, limit: int | None = None
    ) -> tuple[list[tuple[int, dict[str, Any]]], int]:
        """Return ``([(end_offset, envelope), ...], bad_lines)`` for complete lines after
        ``offset`` (at most ``limit`` envelopes). Unparseable lines are skipped and counted;
        a trailing line without its newline is left for the next call."""
        self.end_offset = offset
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return [], 0
        except OSError as exc:
            raise SpoolError(f"cannot read spool {self.path}: {exc}") from exc
        out: list[tuple[int, dict[str, Any]]] = []
        bad = 0
        pos = 0
        while limit is None or len(out) < limit:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            line = data[pos:nl]
            pos = nl + 1
            self.end_offset = offset + pos
            if not line.strip():
                continue  # a newline written to terminate a killed writer's fragment
            try:
                out.append((offset + pos, envelope.loads(line, require_seq=False)))
            except envelope.EnvelopeError:
                bad += 1
        return out, bad


class Checkpoint(NamedTuple):
    offset: int
    """Spool bytes already forwarded and confirmed."""
    seq: int
    """Last ``seq`` assigned to a confirmed event (0 before the first)."""


def checkpoint_path(spool_path: str | os.PathLike[str]) -> Path:
    """``<spool>.ckpt``; a path that already ends in ``.ckpt`` is returned as is."""
    path = Path(spool_path)
    return path if path.name.endswith(CHECKPOINT_SUFFIX) else path.with_name(path.name + ".ckpt")


def load_checkpoint(spool_path: str | os.PathLike[str]) -> Checkpoint:
    """The spool's checkpoint, or ``Checkpoint(0, 0)`` when nothing was forwarded yet."""
    path = checkpoint_path(spool_path)
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return Checkpoint(0, 0)
    try:
        data = json.loads(raw)
        offset, seq = data["offset"], data["seq"]
        if not (isinstance(offset, int) and isinstance(seq, int) and offset >= 0 and seq >= 0):
            raise ValueError("offset and seq must be non-negative integers")
    except (ValueError, KeyError, TypeError) as exc:
        raise SpoolError(f"checkpoint {path} is corrupt ({exc}): {raw[:200]!r}") from None
    return Checkpoint(offset, seq)


def save_checkpoint(spool_path: str | os.PathLike[str], offset: int, seq: int) -> None:
    """Write the checkpoint atomically (tmp file + ``os.replace``): a crash leaves old or new."""
    path = checkpoint_path(spool_path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps({"offset": offset, "seq": seq}))
    os.replace(tmp, path)
