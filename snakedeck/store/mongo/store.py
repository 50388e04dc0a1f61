"""The production store, put together from its parts."""

from __future__ import annotations

from snakedeck.store.base import Store
from snakedeck.store.mongo.artefacts import MongoArtefacts
from snakedeck.store.mongo.audit import MongoAudit
from snakedeck.store.mongo.blobs import MongoBlobs
from snakedeck.store.mongo.claims import MongoClaims
from snakedeck.store.mongo.deliveries import MongoDeliveries
from snakedeck.store.mongo.files import MongoFiles
from snakedeck.store.mongo.runs import MongoRuns
from snakedeck.store.mongo.tokens import MongoTokens


class MongoStore(
    MongoArtefacts,
    MongoAudit,
    MongoDeliveries,
    MongoTokens,
    MongoFiles,
    MongoBlobs,
    MongoRuns,
    MongoClaims,
    Store,
):
    """Everything snakedeck keeps, in one MongoDB database (blobs in a GridFS bucket)."""
