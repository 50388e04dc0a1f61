"""Run artefacts in SQLite: log streams as chunk rows, outputs as documents (contents are the
blobs beside the database)."""

from __future__ import annotations

import json

from snakedeck.documents import OutputDoc
from snakedeck.store.artefacts import ArtefactStore, LogGap, LogStreamInfo
from snakedeck.store.sqlite.connection import SqliteConnection, dumps

SCHEMA = """
CREATE TABLE IF NOT EXISTS log_streams (
    run_id     TEXT NOT NULL,
    stream     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (run_id, stream)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_chunks (
    run_id   TEXT NOT NULL,
    stream   TEXT NOT NULL,
    offset   INTEGER NOT NULL,
    end      INTEGER NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (run_id, stream, offset)
);
CREATE INDEX IF NOT EXISTS log_chunks_end ON log_chunks (run_id, stream, end);
CREATE TABLE IF NOT EXISTS outputs (
    run_id TEXT NOT NULL,
    path   TEXT NOT NULL,
    sha256 TEXT,
    doc    TEXT NOT NULL,
    PRIMARY KEY (run_id, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outputs_sha256 ON outputs (sha256);
"""

STREAM_COLUMNS = "run_id, stream, size, start, updated_at"


def _info(row: tuple) -> LogStreamInfo:
    return LogStreamInfo(row[0], row[1], int(row[2]), int(row[3]), float(row[4]))


class SqliteArtefacts(SqliteConnection, ArtefactStore):
    def _create_schema(self) -> None:
        super()._create_schema()
        self._db.executescript(SCHEMA)

    def _tables(self) -> tuple[str, ...]:
        return (*super()._tables(), "log_chunks", "log_streams", "outputs")

    # -- log streams ----------------------------------------------------------------------------
    def log_stream(self, run_id: str, stream: str) -> LogStreamInfo | None:
        with self._read() as db:
            row = db.execute(
                f"SELECT {STREAM_COLUMNS} FROM log_streams WHERE run_id = ? AND stream = ?",
                (run_id, stream),
            ).fetchone()
        return None if row is None else _info(row)

    def log_streams(self, run_id: str, prefix: str = "") -> list[LogStreamInfo]:
        with self._read() as db:
            rows = db.execute(
                f"SELECT {STREAM_COLUMNS} FROM log_streams WHERE run_id = ?"
                " AND substr(stream, 1, ?) = ? ORDER BY stream",
                (run_id, len(prefix), prefix),
            ).fetchall()
        return [_info(r) for r in rows]

    def _append_chunk(
        self, run_id: str, stream: str, offset: int, data: bytes, *, now: float
    ) -> int:
        with self._tx() as db:
            row = db.execute(
                "SELECT size, start FROM log_streams WHERE run_id = ? AND stream = ?",
                (run_id, stream),
            ).fetchone()
            size, start = (int(row[0]), int(row[1])) if row is not None else (0, 0)
            if offset > size:
                raise LogGap(stream, offset, size)
            piece = data[size - offset :]
            if not piece:
                return size
            db.execute(
                "INSERT INTO log_chunks (run_id, stream, offset, end, data) VALUES (?, ?, ?, ?, ?)",
                (run_id, stream, size, size + len(piece), piece),
            )
            size += len(piece)
            if size - start > self.log_cap:
                db.execute(
                    "DELETE FROM log_chunks WHERE run_id = ? AND stream = ? AND end <= ?",
                    (run_id, stream, size - self.log_cap),
                )
                first = db.execute(
                    "SELECT min(offset) FROM log_chunks WHERE run_id = ? AND stream = ?",
                    (run_id, stream),
                ).fetchone()[0]
                start = int(first)
            db.execute(
                "INSERT INTO log_streams (run_id, stream, size, start, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, stream) DO UPDATE SET"
                " size = excluded.size, start = excluded.start, updated_at = excluded.updated_at",
                (run_id, stream, size, start, now),
            )
            return size

    def _read_chunks(
        self, run_id: str, stream: str, offset: int, limit: int
    ) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        covered = 0
        with self._read() as db:
            cursor = db.execute(
                "SELECT offset, data FROM log_chunks WHERE run_id = ? AND stream = ? AND end > ?"
                " ORDER BY offset",
                (run_id, stream, offset),
            )
            for chunk_offset, data in cursor:
                out.append((int(chunk_offset), bytes(data)))
                covered = int(chunk_offset) + len(data) - offset
                if covered >= limit:
                    break
        return out

    def _delete_logs(self, run_id: str) -> int:
        with self._tx() as db:
            db.execute("DELETE FROM log_chunks WHERE run_id = ?", (run_id,))
            return db.execute("DELETE FROM log_streams WHERE run_id = ?", (run_id,)).rowcount

    # -- outputs --------------------------------------------------------------------------------
    def list_outputs(self, run_id: str) -> list[OutputDoc]:
        with self._read() as db:
            rows = db.execute(
                "SELECT doc FROM outputs WHERE run_id = ? ORDER BY path", (run_id,)
            ).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def get_output(self, run_id: str, path: str) -> OutputDoc | None:
        with self._read() as db:
            row = db.execute(
                "SELECT doc FROM outputs WHERE run_id = ? AND path = ?", (run_id, path)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def _replace_output(self, doc: OutputDoc) -> OutputDoc | None:
        body = {k: v for k, v in doc.items() if not k.startswith("_")}
        with self._tx() as db:
            row = db.execute(
                "SELECT doc FROM outputs WHERE run_id = ? AND path = ?",
                (body["run_id"], body["path"]),
            ).fetchone()
            db.execute(
                "INSERT INTO outputs (run_id, path, sha256, doc) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256,"
                " doc = excluded.doc",
                (body["run_id"], body["path"], body.get("sha256"), dumps(body)),
            )
        return None if row is None else json.loads(row[0])

    def _count_outputs_with_blob(self, sha256: str) -> int:
        with self._read() as db:
            row = db.execute("SELECT count(*) FROM outputs WHERE sha256 = ?", (sha256,)).fetchone()
        return int(row[0])

    def _delete_outputs(self, run_id: str) -> list[OutputDoc]:
        with self._tx() as db:
            rows = db.execute("SELECT doc FROM outputs WHERE run_id = ?", (run_id,)).fetchall()
            db.execute("DELETE FROM outputs WHERE run_id = ?", (run_id,))
        return [json.loads(doc) for (doc,) in rows]
