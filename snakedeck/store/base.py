"""The one store interface: MongoDB in production (:mod:`snakedeck.store.mongo`), SQLite when
embedded (:mod:`snakedeck.store.sqlite`). Both pass ``tests/contract/test_store_contract.py``.

The interface is the sum of one part per concern, each in its own module with the rules
written once above the backends: :mod:`snakedeck.store.runs` (runs, jobs, events and the
projection), :mod:`snakedeck.store.claims` (run claims and the runner registry),
:mod:`snakedeck.store.blobs` (content-addressed blobs) and :mod:`snakedeck.store.files`
(registered files, naming blobs), :mod:`snakedeck.store.artefacts` (run logs and results),
:mod:`snakedeck.store.tokens` (named API tokens, by hash), :mod:`snakedeck.store.audit` (the
audit trail) and :mod:`snakedeck.store.deliveries` (notify targets and the
delivery log). Each backend implements each part in a module of the same name.
"""

from __future__ import annotations

import abc

from snakedeck.store.artefacts import ArtefactStore
from snakedeck.store.audit import AuditStore
from snakedeck.store.claims import ClaimStore
from snakedeck.store.deliveries import DeliveryStore
from snakedeck.store.files import FileStore
from snakedeck.store.runs import RunStore
from snakedeck.store.tokens import TokenStore


class Store(
    RunStore, ClaimStore, FileStore, ArtefactStore, TokenStore, AuditStore, DeliveryStore, abc.ABC
):
    """Everything snakedeck keeps."""

    def _blob_referenced(self, sha256: str) -> bool:
        """Besides files and outputs, a run's private workflow names blobs too."""
        return super()._blob_referenced(sha256) or self._count_runs_with_blob(sha256) > 0

    @abc.abstractmethod
    def ensure_schema(self) -> None:
        """Create tables/collections and every index the queries need (idempotent)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`~snakedeck.store.errors.StoreError` if the store is unreachable."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def drop(self) -> None:
        """Delete everything this store holds (tests' teardown)."""
