"""Registered files: the documents that name content-addressed blobs (:mod:`.blobs`).

A file document (:class:`~snakedeck.documents.FileDoc`) carries the client's display name,
kind, format, size, sha256, tags and, for tables, a summary; the bytes are the blob with that
sha256, stored once however many documents name it. Deleting the last document naming a blob
deletes the blob. Listings are newest first, keyset-paginated (:mod:`snakedeck.paging`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from snakedeck.documents import FileDoc
from snakedeck.paging import Key, KeyOrder, Page, paginate
from snakedeck.states import TERMINAL_RUN_STATES, RunState
from snakedeck.store.blobs import BlobStore

ACTIVE_RUN_STATES: Final = tuple(
    sorted(s.value for s in RunState if s not in TERMINAL_RUN_STATES and s != RunState.UNKNOWN)
)
"""Runs in these states still need their files (a delete answers 409)."""


@dataclass(frozen=True)
class FileFilter:
    kind: str | None = None
    tag: str | None = None
    """``key`` or ``key=value``."""
    q: str | None = None
    """Free text: matched against file id, name, kind and tag values."""
    workflow: str | None = None
    """Files registered for this workflow."""


def file_tag_terms(doc: Mapping[str, Any]) -> list[str]:
    terms: set[str] = set()
    for key, value in (doc.get("tags") or {}).items():
        terms.add(str(key))
        terms.add(f"{key}={value}")
    return sorted(terms)


def file_search_text(doc: Mapping[str, Any]) -> str:
    parts = [str(doc.get(k) or "") for k in ("file_id", "name", "kind", "format")]
    parts += [str(v) for v in (doc.get("tags") or {}).values()]
    return "\n".join(parts).lower()


FILE_ORDER: Final = KeyOrder(
    "files",
    (
        Key("created", True, lambda d: str(d.get("created") or ""), str),
        Key("file_id", True, lambda d: str(d["file_id"]), str),
    ),
)


class FileStore(BlobStore, abc.ABC):
    """File documents over the blob part of the same store."""

    @abc.abstractmethod
    def create_file(self, doc: FileDoc) -> None:
        """Insert a file document (``file_id`` and ``sha256`` required; the blob must be
        stored already). Raises :class:`~snakedeck.store.errors.FileExists`."""

    @abc.abstractmethod
    def get_file(self, file_id: str) -> FileDoc | None: ...

    def list_files(
        self, filters: FileFilter, *, page_size: int = 50, page_token: str | None = None
    ) -> Page[FileDoc]:
        """Newest first (``created`` then ``file_id``, descending)."""
        return paginate(
            FILE_ORDER,
            page_size=page_size,
            page_token=page_token,
            fetch=lambda after, limit: self._fetch_files(filters, after, limit),
            count=lambda: self._count_files(filters),
        )

    def delete_file(self, file_id: str) -> FileDoc | None:
        """Remove the document (``None`` if there was none), and its blob when no other
        document names it any more."""
        doc = self._delete_file_doc(file_id)
        if doc is not None and not self._blob_referenced(doc["sha256"]):
            self.delete_blob(doc["sha256"])
        return doc

    def release_blob(self, sha256: str) -> bool:
        """Delete a blob that was put but never named (its registration was refused); a blob
        some document names stays. Returns whether it was deleted."""
        if self._blob_referenced(sha256):
            return False
        return self.delete_blob(sha256)

    @abc.abstractmethod
    def runs_using_file(self, file_id: str) -> list[str]:
        """Ids of runs in an :data:`ACTIVE_RUN_STATES` state whose ``file_ids`` name it."""

    # -- primitives -----------------------------------------------------------------------------
    def _blob_referenced(self, sha256: str) -> bool:
        return super()._blob_referenced(sha256) or self._count_files_with_blob(sha256) > 0

    @abc.abstractmethod
    def _count_files_with_blob(self, sha256: str) -> int: ...

    @abc.abstractmethod
    def _delete_file_doc(self, file_id: str) -> FileDoc | None: ...

    @abc.abstractmethod
    def _fetch_files(
        self, filters: FileFilter, after: Sequence[Any] | None, limit: int
    ) -> list[FileDoc]: ...

    @abc.abstractmethod
    def _count_files(self, filters: FileFilter) -> int: ...
