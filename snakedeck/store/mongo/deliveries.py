"""Notify targets and the delivery log in MongoDB: collections ``notify_targets`` (``_id`` =
run id) and ``deliveries`` (``_id`` = delivery id)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from snakedeck.store.deliveries import DELIVERY_ORDER, DeliveryDoc, DeliveryStore
from snakedeck.store.mongo.connection import MongoConnection, mongo_errors

HIDDEN = {"_id": 0}


class MongoDeliveries(MongoConnection, DeliveryStore):
    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        super().__init__(uri, db_name, timeout_ms=timeout_ms)
        self._targets = self._db["notify_targets"]
        self._deliveries = self._db["deliveries"]

    def _create_schema(self) -> None:
        from pymongo import ASCENDING as UP

        super()._create_schema()
        self._deliveries.create_index([("run_id", UP), ("at", UP), ("delivery_id", UP)])
        self._deliveries.create_index([("run_id", UP), ("key", UP), ("target_id", UP)])

    @mongo_errors
    def save_notify_targets(self, run_id: str, targets: list[dict[str, Any]]) -> None:
        self._targets.replace_one({"_id": run_id}, {"_id": run_id, "targets": targets}, upsert=True)

    @mongo_errors
    def notify_targets(self, run_id: str) -> list[dict[str, Any]]:
        doc = self._targets.find_one({"_id": run_id})
        return list(doc["targets"]) if doc else []

    @mongo_errors
    def _insert_delivery(self, doc: DeliveryDoc) -> None:
        self._deliveries.insert_one({"_id": doc["delivery_id"], **doc})

    @mongo_errors
    def delivery_attempts(self, run_id: str, key: str, target_id: str) -> list[DeliveryDoc]:
        order = [(name, -1 if desc else 1) for name, desc in DELIVERY_ORDER.pairs]
        query = {"run_id": run_id, "key": key, "target_id": target_id}
        return list(self._deliveries.find(query, HIDDEN).sort(order))

    @mongo_errors
    def _fetch_deliveries(
        self, run_id: str, after: Sequence[Any] | None, limit: int
    ) -> list[DeliveryDoc]:
        query: dict[str, Any] = {"run_id": run_id}
        if after is not None:
            at, delivery_id = after
            later = {"$or": [{"at": {"$gt": at}}, {"at": at, "delivery_id": {"$gt": delivery_id}}]}
            query = {"$and": [query, later]}
        order = [(name, -1 if desc else 1) for name, desc in DELIVERY_ORDER.pairs]
        return list(self._deliveries.find(query, HIDDEN).sort(order).limit(limit))

    @mongo_errors
    def _count_deliveries(self, run_id: str) -> int:
        return int(self._deliveries.count_documents({"run_id": run_id}))
