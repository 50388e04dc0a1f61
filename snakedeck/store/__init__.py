"""The store: MongoDB when ``SNAKEDECK_MONGO_URI`` is set, else SQLite under the data dir.

``open_store(settings)`` is the one way every process gets its store, schema ensured.
"""

from __future__ import annotations

from snakedeck.settings import Settings
from snakedeck.store.base import (
    JOB_SORTS,
    BadPageToken,
    ConcurrentUpdate,
    JobFilter,
    Page,
    PersistResult,
    RunExists,
    RunFilter,
    Store,
    StoreError,
)


def open_store(settings: Settings) -> Store:
    """Open the configured backend and make sure its tables/collections and indexes exist."""
    store: Store
    if settings.mongo_uri:
        from snakedeck.store.mongo import MongoStore

        store = MongoStore(settings.mongo_uri, settings.mongo_db)
    else:
        from snakedeck.store.sqlite import SqliteStore

        store = SqliteStore(settings.sqlite_path)
    try:
        store.ensure_schema()
    except BaseException:
        store.close()
        raise
    return store


__all__ = [
    "JOB_SORTS",
    "BadPageToken",
    "ConcurrentUpdate",
    "JobFilter",
    "Page",
    "PersistResult",
    "RunExists",
    "RunFilter",
    "Store",
    "StoreError",
    "open_store",
]
