"""The audit trail in SQLite: the entry as JSON beside the columns it is filtered by."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from snakedeck.documents import AuditDoc
from snakedeck.store.audit import AUDIT_ORDER, AuditFilter, AuditStore
from snakedeck.store.sqlite.connection import SqliteConnection, dumps
from snakedeck.store.sqlite.runs import _after, _order_by

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    audit_id TEXT PRIMARY KEY,
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT,
    doc      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_newest ON audit (at DESC, audit_id DESC);
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, at DESC);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, at DESC);
"""


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SqliteAudit(SqliteConnection, AuditStore):
    def _create_schema(self) -> None:
        super()._create_schema()
        self._db.executescript(SCHEMA)

    def _tables(self) -> tuple[str, ...]:
        return (*super()._tables(), "audit")

    def _insert_audit(self, doc: AuditDoc) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO audit (audit_id, at, actor, action, target, doc)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    doc["audit_id"],
                    doc["at"],
                    doc.get("actor") or "",
                    doc.get("action") or "",
                    doc.get("target"),
                    dumps(doc),
                ),
            )

    @staticmethod
    def _audit_where(filters: AuditFilter) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if filters.actor:
            where.append("actor = ?")
            params.append(filters.actor)
        if filters.target:
            where.append("target = ?")
            params.append(filters.target)
        if filters.action:
            if filters.action.endswith("."):
                where.append("action LIKE ? ESCAPE '\\'")
                params.append(_like_prefix(filters.action))
            else:
                where.append("action = ?")
                params.append(filters.action)
        return where, params

    def _fetch_audit(
        self, filters: AuditFilter, after: Sequence[Any] | None, limit: int
    ) -> list[AuditDoc]:
        where, params = self._audit_where(filters)
        extra_where, extra = _after(AUDIT_ORDER, after)
        sql = (
            f"SELECT doc FROM audit WHERE {' AND '.join([*where, *extra_where]) or '1'}"
            f" ORDER BY {_order_by(AUDIT_ORDER)} LIMIT ?"
        )
        with self._read() as db:
            rows = db.execute(sql, [*params, *extra, limit]).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def _count_audit(self, filters: AuditFilter) -> int:
        where, params = self._audit_where(filters)
        with self._read() as db:
            sql = "SELECT count(*) FROM audit WHERE " + (" AND ".join(where) or "1")
            return int(db.execute(sql, params).fetchone()[0])
