"""File documents in MongoDB: collection ``files`` (``_id`` = file_id); tag terms and search
text in an ``_ix`` sub-document, as for runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from snakedeck.documents import FileDoc
from snakedeck.store.errors import FileExists
from snakedeck.store.files import (
    ACTIVE_RUN_STATES,
    FILE_ORDER,
    FileFilter,
    FileStore,
    file_search_text,
    file_tag_terms,
)
from snakedeck.store.mongo.connection import MongoConnection, mongo_errors

HIDDEN = {"_id": 0, "_ix": 0}


def _after(values: Sequence[Any] | None) -> dict[str, Any] | None:
    """Documents strictly after ``values`` in :data:`FILE_ORDER` (both keys descending)."""
    if values is None:
        return None
    created, file_id = values
    return {
        "$or": [{"created": {"$lt": created}}, {"created": created, "file_id": {"$lt": file_id}}]
    }


class MongoFiles(MongoConnection, FileStore):
    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        super().__init__(uri, db_name, timeout_ms=timeout_ms)
        self._files = self._db["files"]

    def _create_schema(self) -> None:
        from pymongo import ASCENDING as UP
        from pymongo import DESCENDING as DOWN

        super()._create_schema()
        self._files.create_index([("created", DOWN), ("file_id", DOWN)], name="newest")
        self._files.create_index([("kind", UP), ("created", DOWN), ("file_id", DOWN)])
        self._files.create_index([("workflow", UP), ("created", DOWN), ("file_id", DOWN)])
        self._files.create_index([("sha256", UP)])
        self._files.create_index([("_ix.tags", UP)], name="tags")

    @mongo_errors
    def create_file(self, doc: FileDoc) -> None:
        from pymongo.errors import DuplicateKeyError

        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        record = {
            "_id": body["file_id"],
            **body,
            "_ix": {"tags": file_tag_terms(body), "text": file_search_text(body)},
        }
        try:
            self._files.insert_one(record)
        except DuplicateKeyError:
            raise FileExists(f"file {body['file_id']} already exists") from None

    @mongo_errors
    def get_file(self, file_id: str) -> FileDoc | None:
        return self._files.find_one({"_id": file_id}, HIDDEN)

    @staticmethod
    def _query(filters: FileFilter) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if filters.kind:
            query["kind"] = filters.kind
        if filters.workflow:
            query["workflow"] = filters.workflow
        if filters.tag:
            query["_ix.tags"] = filters.tag.strip()
        if filters.q:
            query["_ix.text"] = {"$regex": re.escape(filters.q.lower())}
        return query

    @mongo_errors
    def _fetch_files(
        self, filters: FileFilter, after: Sequence[Any] | None, limit: int
    ) -> list[FileDoc]:
        query = self._query(filters)
        extra = _after(after)
        if extra is not None:
            query = {"$and": [query, extra]}
        order = [(name, -1 if desc else 1) for name, desc in FILE_ORDER.pairs]
        return list(self._files.find(query, HIDDEN).sort(order).limit(limit))

    @mongo_errors
    def _count_files(self, filters: FileFilter) -> int:
        return int(self._files.count_documents(self._query(filters)))

    @mongo_errors
    def _count_files_with_blob(self, sha256: str) -> int:
        return int(self._files.count_documents({"sha256": sha256}, limit=1))

    @mongo_errors
    def _delete_file_doc(self, file_id: str) -> FileDoc | None:
        return self._files.find_one_and_delete({"_id": file_id}, projection=HIDDEN)

    @mongo_errors
    def runs_using_file(self, file_id: str) -> list[str]:
        cursor = self._db["runs"].find(
            {"state": {"$in": list(ACTIVE_RUN_STATES)}, "file_ids": file_id}, {"run_id": 1}
        )
        return sorted(str(d["run_id"]) for d in cursor)
