"""Notify targets and the delivery log in SQLite: documents as JSON beside their keys."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from snakedeck.store.deliveries import DELIVERY_ORDER, DeliveryDoc, DeliveryStore
from snakedeck.store.sqlite.connection import SqliteConnection, dumps
from snakedeck.store.sqlite.runs import _after, _order_by

SCHEMA = """
CREATE TABLE IF NOT EXISTS notify_targets (
    run_id  TEXT PRIMARY KEY,
    doc     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    at          TEXT NOT NULL,
    key         TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_run ON deliveries (run_id, at, delivery_id);
CREATE INDEX IF NOT EXISTS deliveries_key ON deliveries (run_id, key, target_id);
"""


class SqliteDeliveries(SqliteConnection, DeliveryStore):
    def _create_schema(self) -> None:
        super()._create_schema()
        self._db.executescript(SCHEMA)

    def _tables(self) -> tuple[str, ...]:
        return (*super()._tables(), "deliveries", "notify_targets")

    def save_notify_targets(self, run_id: str, targets: list[dict[str, Any]]) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO notify_targets (run_id, doc) VALUES (?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET doc = excluded.doc",
                (run_id, dumps(targets)),
            )

    def notify_targets(self, run_id: str) -> list[dict[str, Any]]:
        with self._read() as db:
            row = db.execute(
                "SELECT doc FROM notify_targets WHERE run_id = ?", (run_id,)
            ).fetchone()
        return json.loads(row[0]) if row else []

    def _insert_delivery(self, doc: DeliveryDoc) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO deliveries (delivery_id, run_id, at, key, target_id, doc)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    doc["delivery_id"],
                    doc["run_id"],
                    doc["at"],
                    doc.get("key") or "",
                    doc.get("target_id") or "",
                    dumps(doc),
                ),
            )

    def delivery_attempts(self, run_id: str, key: str, target_id: str) -> list[DeliveryDoc]:
        with self._read() as db:
            rows = db.execute(
                "SELECT doc FROM deliveries WHERE run_id = ? AND key = ? AND target_id = ?"
                f" ORDER BY {_order_by(DELIVERY_ORDER)}",
                (run_id, key, target_id),
            ).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def _fetch_deliveries(
        self, run_id: str, after: Sequence[Any] | None, limit: int
    ) -> list[DeliveryDoc]:
        extra_where, extra = _after(DELIVERY_ORDER, after)
        sql = (
            f"SELECT doc FROM deliveries WHERE {' AND '.join(['run_id = ?', *extra_where])}"
            f" ORDER BY {_order_by(DELIVERY_ORDER)} LIMIT ?"
        )
        with self._read() as db:
            rows = db.execute(sql, [run_id, *extra, limit]).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def _count_deliveries(self, run_id: str) -> int:
        with self._read() as db:
            sql = "SELECT count(*) FROM deliveries WHERE run_id = ?"
            return int(db.execute(sql, (run_id,)).fetchone()[0])
