"""The store: MongoDB when ``SNAKEDECK_MONGO_URI`` is set, else SQLite under the data dir.

``open_store(settings)`` is the one way every process gets its store, schema ensured. The names
the rest of snakedeck uses are imported from here.
"""

from __future__ import annotations

from snakedeck.paging import BadPageToken, Page
from snakedeck.settings import Settings
from snakedeck.store.artefacts import LogGap, LogSlice, LogStreamInfo
from snakedeck.store.audit import AuditFilter
from snakedeck.store.base import Store
from snakedeck.store.blobs import BlobInfo
from snakedeck.store.errors import (
    BlobNotFound,
    BlobTooLarge,
    ConcurrentUpdate,
    FileExists,
    RunExists,
    StoreError,
    TokenExists,
)
from snakedeck.store.files import FileFilter
from snakedeck.store.runs import JOB_SORTS, JobFilter, PersistResult, RunFilter


def open_store(settings: Settings) -> Store:
    """Open the configured backend and make sure its tables/collections and indexes exist."""
    store: Store
    if settings.mongo_uri:
        from snakedeck.store.mongo import MongoStore

        store = MongoStore(settings.mongo_uri, settings.mongo_db)
    else:
        from snakedeck.store.sqlite import SqliteStore

        store = SqliteStore(settings.sqlite_path)
    store.log_cap = settings.log_stream_cap
    try:
        store.ensure_schema()
    except BaseException:
        store.close()
        raise
    return store


__all__ = [
    "JOB_SORTS",
    "AuditFilter",
    "BadPageToken",
    "BlobInfo",
    "BlobNotFound",
    "BlobTooLarge",
    "ConcurrentUpdate",
    "FileExists",
    "FileFilter",
    "JobFilter",
    "LogGap",
    "LogSlice",
    "LogStreamInfo",
    "Page",
    "PersistResult",
    "RunExists",
    "RunFilter",
    "Store",
    "StoreError",
    "TokenExists",
    "open_store",
]
