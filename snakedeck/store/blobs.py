"""Content-addressed blobs: bytes stored once under their sha256, streamed in and out.

Registered files keep their contents here (a later part adds run logs and results), so a runner
on another host needs only the store, never the gateway's disk. A put streams its input (never
holding it whole in memory), hashes it, enforces a byte cap and stores the content once however
often it is put; the caller keeps the returned :class:`BlobInfo` in its own documents.

Backends: files under ``DATA_DIR/blobs`` written atomically for the embedded store
(:mod:`snakedeck.store.sqlite.blobs`), a GridFS bucket with ``_id`` = sha256 on MongoDB
(:mod:`snakedeck.store.mongo.blobs`).
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Final, Protocol

from snakedeck.store.errors import BlobTooLarge

CHUNK: Final = 256 * 1024
SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and bool(SHA256_RE.match(value))


def chunks_of(source: Readable | Iterable[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """Byte chunks of a readable file object or of an iterable of chunks."""
    if hasattr(source, "read"):
        read = source.read  # type: ignore[union-attr]
        while True:
            chunk = read(size)
            if not chunk:
                return
            yield chunk
    else:
        for chunk in source:  # type: ignore[union-attr]
            if chunk:
                yield bytes(chunk)


def copy_capped(
    source: Readable | Iterable[bytes], sink: BinaryIO, max_bytes: int | None
) -> BlobInfo:
    """Copy ``source`` into ``sink`` while hashing; :class:`BlobTooLarge` past ``max_bytes``
    (the sink then holds a prefix the caller discards)."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks_of(source):
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise BlobTooLarge(max_bytes)
        digest.update(chunk)
        sink.write(chunk)
    return BlobInfo(digest.hexdigest(), size)


class BlobStore(abc.ABC):
    """Bytes by sha256. Blobs are immutable; who references a blob is the caller's business
    (delete one only when no document names its sha256 any more)."""

    @abc.abstractmethod
    def put_blob(
        self, source: Readable | Iterable[bytes], *, max_bytes: int | None = None
    ) -> BlobInfo:
        """Store the bytes of ``source`` (a file object or an iterable of chunks), streamed.

        Returns their sha256 and size; content already stored is not stored again. Past
        ``max_bytes`` raises :class:`~snakedeck.store.errors.BlobTooLarge` and stores nothing."""

    @abc.abstractmethod
    def open_blob(self, sha256: str) -> BinaryIO:
        """A binary file object reading the blob (close it, or use ``with``); raises
        :class:`~snakedeck.store.errors.BlobNotFound`."""

    @abc.abstractmethod
    def blob_exists(self, sha256: str) -> bool: ...

    @abc.abstractmethod
    def blob_size(self, sha256: str) -> int | None:
        """The blob's size in bytes, or ``None`` if it is not stored."""

    @abc.abstractmethod
    def delete_blob(self, sha256: str) -> bool:
        """Remove the blob; whether it existed."""

    def _blob_referenced(self, sha256: str) -> bool:
        """Whether any document still names the blob. Each part that keeps blobs extends this
        (``super()._blob_referenced(sha256) or …``)."""
        return False
