"""The embedded store, put together from its parts."""

from __future__ import annotations

from snakedeck.store.base import Store
from snakedeck.store.sqlite.artefacts import SqliteArtefacts
from snakedeck.store.sqlite.audit import SqliteAudit
from snakedeck.store.sqlite.blobs import SqliteBlobs
from snakedeck.store.sqlite.claims import SqliteClaims
from snakedeck.store.sqlite.deliveries import SqliteDeliveries
from snakedeck.store.sqlite.files import SqliteFiles
from snakedeck.store.sqlite.runs import SqliteRuns
from snakedeck.store.sqlite.tokens import SqliteTokens


class SqliteStore(
    SqliteArtefacts,
    SqliteAudit,
    SqliteDeliveries,
    SqliteTokens,
    SqliteFiles,
    SqliteBlobs,
    SqliteRuns,
    SqliteClaims,
    Store,
):
    """Everything snakedeck keeps, in one SQLite file (blobs in files beside it)."""
