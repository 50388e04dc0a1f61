"""The audit trail in MongoDB: collection ``audit``, ``_id`` = audit_id."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from snakedeck.documents import AuditDoc
from snakedeck.store.audit import AUDIT_ORDER, AuditFilter, AuditStore
from snakedeck.store.mongo.connection import MongoConnection, mongo_errors

HIDDEN = {"_id": 0}


class MongoAudit(MongoConnection, AuditStore):
    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        super().__init__(uri, db_name, timeout_ms=timeout_ms)
        self._audit = self._db["audit"]

    def _create_schema(self) -> None:
        from pymongo import ASCENDING as UP
        from pymongo import DESCENDING as DOWN

        super()._create_schema()
        self._audit.create_index([("at", DOWN), ("audit_id", DOWN)], name="newest")
        self._audit.create_index([("actor", UP), ("at", DOWN)])
        self._audit.create_index([("target", UP), ("at", DOWN)])

    @mongo_errors
    def _insert_audit(self, doc: AuditDoc) -> None:
        self._audit.insert_one({"_id": doc["audit_id"], **doc})

    @staticmethod
    def _audit_query(filters: AuditFilter) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if filters.actor:
            query["actor"] = filters.actor
        if filters.target:
            query["target"] = filters.target
        if filters.action:
            if filters.action.endswith("."):
                query["action"] = {"$regex": "^" + re.escape(filters.action)}
            else:
                query["action"] = filters.action
        return query

    @mongo_errors
    def _fetch_audit(
        self, filters: AuditFilter, after: Sequence[Any] | None, limit: int
    ) -> list[AuditDoc]:
        query = self._audit_query(filters)
        if after is not None:
            at, audit_id = after
            newer = {"$or": [{"at": {"$lt": at}}, {"at": at, "audit_id": {"$lt": audit_id}}]}
            query = {"$and": [query, newer]}
        order = [(name, -1 if desc else 1) for name, desc in AUDIT_ORDER.pairs]
        return list(self._audit.find(query, HIDDEN).sort(order).limit(limit))

    @mongo_errors
    def _count_audit(self, filters: AuditFilter) -> int:
        return int(self._audit.count_documents(self._audit_query(filters)))
