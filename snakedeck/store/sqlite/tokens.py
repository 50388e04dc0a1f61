"""Named tokens in SQLite: one row per token, keyed by the token's sha256."""

from __future__ import annotations

import json
import sqlite3

from snakedeck.documents import TokenDoc
from snakedeck.store.errors import TokenExists
from snakedeck.store.sqlite.connection import SqliteConnection, dumps
from snakedeck.store.tokens import TokenStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    sha256     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created    TEXT NOT NULL,
    revoked_at TEXT,
    doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_name ON tokens (name, created);
CREATE INDEX IF NOT EXISTS tokens_active ON tokens (revoked_at);
"""


class SqliteTokens(SqliteConnection, TokenStore):
    def _create_schema(self) -> None:
        super()._create_schema()
        self._db.executescript(SCHEMA)

    def _tables(self) -> tuple[str, ...]:
        return (*super()._tables(), "tokens")

    def _insert_token(self, doc: TokenDoc) -> None:
        with self._tx() as db:
            try:
                db.execute(
                    "INSERT INTO tokens (sha256, name, created, revoked_at, doc)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (doc["sha256"], doc["name"], doc["created"], doc.get("revoked_at"), dumps(doc)),
                )
            except sqlite3.IntegrityError:
                raise TokenExists("a token with this hash exists") from None

    def token_by_hash(self, sha256: str) -> TokenDoc | None:
        with self._read() as db:
            row = db.execute("SELECT doc FROM tokens WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else json.loads(row[0])

    def list_tokens(self, *, include_revoked: bool = False) -> list[TokenDoc]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        with self._read() as db:
            rows = db.execute(f"SELECT doc FROM tokens{where} ORDER BY name, created").fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def revoke_token(self, name: str, at: str) -> TokenDoc | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT doc FROM tokens WHERE name = ? AND revoked_at IS NULL", (name,)
            ).fetchone()
            if row is None:
                return None
            doc = json.loads(row[0])
            doc["revoked_at"] = at
            db.execute(
                "UPDATE tokens SET revoked_at = ?, doc = ? WHERE sha256 = ?",
                (at, dumps(doc), doc["sha256"]),
            )
        return doc

    def touch_token(self, sha256: str, at: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE tokens SET doc = json_set(doc, '$.last_used_at', ?) WHERE sha256 = ?",
                (at, sha256),
            )

    def has_tokens(self) -> bool:
        with self._read() as db:
            row = db.execute("SELECT 1 FROM tokens LIMIT 1").fetchone()
        return row is not None
