"""The one MongoDB client every part of the production store shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlparse

from snakedeck.store.errors import StoreError

DUPLICATE_KEY: Final = 11000


def host_of(uri: str) -> str:
    """The host part of a MongoDB URI, without credentials, for error messages."""
    try:
        netloc = urlparse(uri).netloc
    except ValueError:
        return "<unparsable MongoDB URI>"
    return netloc.rsplit("@", 1)[-1] or uri


def mongo_errors[**P, R](method: Callable[P, R]) -> Callable[P, R]:
    """Turn driver errors into :class:`StoreError` naming the server, as the API reports it."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from pymongo.errors import PyMongoError

        try:
            return method(*args, **kwargs)
        except PyMongoError as exc:
            store = args[0]
            raise StoreError(f"MongoDB at {store.host}: {exc}") from exc  # type: ignore[attr-defined]

    return wrapper


DURABILITY: Final = {"w": "majority", "retryWrites": True, "retryReads": True}
"""A write is acknowledged once a majority of a replica set has it (so a failover never
loses an acknowledged event, claim or run), and a write or read cut off by a failover is
retried once on the new primary. A single server is its own majority."""


def durability_defaults(uri: str) -> dict[str, Any]:
    """:data:`DURABILITY`, except what the URI sets itself (``?w=1``, ``retryWrites=false``):
    the operator's URI wins (pymongo's keyword arguments would override it)."""
    try:
        query = urlparse(uri).query
    except ValueError:
        return dict(DURABILITY)
    given = {part.split("=", 1)[0].strip().lower() for part in query.split("&") if part}
    return {k: v for k, v in DURABILITY.items() if k.lower() not in given}


class MongoConnection:
    """One client and database; parts add their collections' indexes in :meth:`_create_schema`
    (each calls ``super()`` first, so every part's indexes are made)."""

    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        self.uri = uri
        self.host = host_of(uri)
        try:
            self._client: Any = MongoClient(
                uri,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                tz_aware=False,
                **durability_defaults(uri),
            )
        except (PyMongoError, ValueError, TypeError) as exc:
            raise StoreError(f"MongoDB URI for {self.host} is not usable: {exc}") from exc
        self._db = self._client[db_name]

    @mongo_errors
    def ensure_schema(self) -> None:
        self._create_schema()

    def _create_schema(self) -> None:
        """Each part's indexes; parts extend this."""

    @mongo_errors
    def ping(self) -> None:
        self._client.admin.command("ping")

    def close(self) -> None:
        self._client.close()

    @mongo_errors
    def drop(self) -> None:
        self._client.drop_database(self._db.name)
