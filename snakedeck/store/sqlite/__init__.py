"""The embedded store: one SQLite file, for standalone mode and single machines.

Documents are JSON text; every field a query filters or sorts on is copied into an indexed
column beside it (see the index helpers in :mod:`snakedeck.store.runs`). One connection behind a
lock serves every thread: the gateway's greenlets never yield inside SQLite calls, and a whole
:meth:`~snakedeck.store.runs.RunStore.persist` batch runs as one transaction, which is what
makes it fast. Each part of the store is one module here (:mod:`.runs`, …) over the shared
:class:`~.connection.SqliteConnection`.
"""

from snakedeck.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
