"""The one SQLite connection every part of the embedded store shares."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from snakedeck.store.errors import StoreError


def dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class SqliteConnection:
    """One SQLite file (WAL mode) behind a lock; parts add their tables in
    :meth:`_create_schema` (each calls ``super()`` first, so every part's schema is made)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            # Checkpoint the WAL every 10,000 pages (40 MB), not SQLite's 1,000: a big run's
            # batches touch pages all over its indexes, and a page written again before the
            # next checkpoint is copied once (bench_persist: 100k-job run about 30 % faster).
            self._db.execute("PRAGMA wal_autocheckpoint=10000")
            self._db.execute("PRAGMA journal_size_limit=67108864")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite store at {self.path}: {exc}") from exc

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (re-entrant: nested calls join the outer one)."""
        with self._lock:
            outer = self._depth == 0
            try:
                if outer:
                    self._db.execute("BEGIN IMMEDIATE")
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                if outer:
                    self._db.execute("COMMIT")
            except BaseException as exc:
                if outer and self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite store at {self.path}: {exc}") from exc
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store at {self.path}: {exc}") from exc

    def ensure_schema(self) -> None:
        with self._lock:
            try:
                self._create_schema()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot create schema in {self.path}: {exc}") from exc

    def _create_schema(self) -> None:
        """Each part's tables; parts extend this."""

    def _add_columns(self, added: tuple[tuple[str, str, str], ...]) -> None:
        """Bring tables written by an older snakedeck up to this schema: ``(table, column,
        type)`` is added where the table exists without it."""
        for table, column, kind in added:
            info = self._db.execute(f"PRAGMA table_info({table})").fetchall()
            if info and column not in {row[1] for row in info}:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _tables(self) -> tuple[str, ...]:
        """Every table of every part, children first (what :meth:`drop` empties)."""
        return ()

    def ping(self) -> None:
        with self._read() as db:
            db.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def drop(self) -> None:
        with self._tx() as db:
            for table in self._tables():
                db.execute(f"DELETE FROM {table}")
