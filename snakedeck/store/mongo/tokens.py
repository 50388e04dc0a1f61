"""Named tokens in MongoDB: collection ``tokens``, ``_id`` = the token's sha256."""

from __future__ import annotations

from typing import Any

from snakedeck.documents import TokenDoc
from snakedeck.store.errors import TokenExists
from snakedeck.store.mongo.connection import MongoConnection, mongo_errors
from snakedeck.store.tokens import TokenStore

HIDDEN = {"_id": 0}


class MongoTokens(MongoConnection, TokenStore):
    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        super().__init__(uri, db_name, timeout_ms=timeout_ms)
        self._tokens = self._db["tokens"]

    def _create_schema(self) -> None:
        from pymongo import ASCENDING as UP

        super()._create_schema()
        self._tokens.create_index([("name", UP), ("created", UP)])
        self._tokens.create_index([("revoked_at", UP)])

    @mongo_errors
    def _insert_token(self, doc: TokenDoc) -> None:
        from pymongo.errors import DuplicateKeyError

        try:
            self._tokens.insert_one({"_id": doc["sha256"], **doc})
        except DuplicateKeyError:
            raise TokenExists("a token with this hash exists") from None

    @mongo_errors
    def token_by_hash(self, sha256: str) -> TokenDoc | None:
        return self._tokens.find_one({"_id": sha256}, HIDDEN)

    @mongo_errors
    def list_tokens(self, *, include_revoked: bool = False) -> list[TokenDoc]:
        query: dict[str, Any] = {} if include_revoked else {"revoked_at": None}
        return list(self._tokens.find(query, HIDDEN).sort([("name", 1), ("created", 1)]))

    @mongo_errors
    def revoke_token(self, name: str, at: str) -> TokenDoc | None:
        from pymongo import ReturnDocument

        return self._tokens.find_one_and_update(
            {"name": name, "revoked_at": None},
            {"$set": {"revoked_at": at}},
            projection=HIDDEN,
            return_document=ReturnDocument.AFTER,
        )

    @mongo_errors
    def touch_token(self, sha256: str, at: str) -> None:
        self._tokens.update_one({"_id": sha256}, {"$set": {"last_used_at": at}})

    @mongo_errors
    def has_tokens(self) -> bool:
        return self._tokens.find_one({}, {"_id": 1}) is not None
