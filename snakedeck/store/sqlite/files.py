"""File documents in SQLite: JSON text beside indexed columns, tags in a term table."""

from __future__ import annotations

import json
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
from snakedeck.store.sqlite.connection import SqliteConnection, dumps
from snakedeck.store.sqlite.runs import _after, _order_by

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    file_id  TEXT PRIMARY KEY,
    created  TEXT NOT NULL,
    kind     TEXT,
    workflow TEXT,
    sha256   TEXT NOT NULL,
    search   TEXT NOT NULL,
    doc      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_newest ON files (created DESC, file_id DESC);
CREATE INDEX IF NOT EXISTS files_kind ON files (kind, created DESC, file_id DESC);
CREATE INDEX IF NOT EXISTS files_workflow ON files (workflow, created DESC, file_id DESC);
CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);
CREATE TABLE IF NOT EXISTS file_tags (
    term    TEXT NOT NULL,
    file_id TEXT NOT NULL,
    PRIMARY KEY (term, file_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS file_tags_file ON file_tags (file_id);
"""


class SqliteFiles(SqliteConnection, FileStore):
    def _create_schema(self) -> None:
        super()._create_schema()
        self._db.executescript(SCHEMA)

    def _tables(self) -> tuple[str, ...]:
        return (*super()._tables(), "file_tags", "files")

    def create_file(self, doc: FileDoc) -> None:
        body = dict(doc)
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO files (file_id, created, kind, workflow, sha256, search,"
                " doc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    body["file_id"],
                    str(body.get("created") or ""),
                    body.get("kind"),
                    body.get("workflow"),
                    body["sha256"],
                    file_search_text(body),
                    dumps(body),
                ),
            )
            if cur.rowcount != 1:
                raise FileExists(f"file {body['file_id']} already exists")
            db.executemany(
                "INSERT INTO file_tags (term, file_id) VALUES (?, ?)",
                [(term, body["file_id"]) for term in file_tag_terms(body)],
            )

    def get_file(self, file_id: str) -> FileDoc | None:
        with self._read() as db:
            row = db.execute("SELECT doc FROM files WHERE file_id = ?", (file_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    @staticmethod
    def _where(filters: FileFilter) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("kind", filters.kind), ("workflow", filters.workflow)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if filters.tag:
            where.append("file_id IN (SELECT file_id FROM file_tags WHERE term = ?)")
            params.append(filters.tag.strip())
        if filters.q:
            where.append("instr(search, ?) > 0")
            params.append(filters.q.lower())
        return where, params

    def _fetch_files(
        self, filters: FileFilter, after: Sequence[Any] | None, limit: int
    ) -> list[FileDoc]:
        where, params = self._where(filters)
        extra_where, extra = _after(FILE_ORDER, after)
        sql = (
            f"SELECT doc FROM files WHERE {' AND '.join([*where, *extra_where]) or '1'}"
            f" ORDER BY {_order_by(FILE_ORDER)} LIMIT ?"
        )
        with self._read() as db:
            rows = db.execute(sql, [*params, *extra, limit]).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def _count_files(self, filters: FileFilter) -> int:
        where, params = self._where(filters)
        with self._read() as db:
            sql = "SELECT count(*) FROM files WHERE " + (" AND ".join(where) or "1")
            return int(db.execute(sql, params).fetchone()[0])

    def _count_files_with_blob(self, sha256: str) -> int:
        with self._read() as db:
            row = db.execute("SELECT count(*) FROM files WHERE sha256 = ?", (sha256,)).fetchone()
        return int(row[0])

    def _delete_file_doc(self, file_id: str) -> FileDoc | None:
        with self._tx() as db:
            row = db.execute("SELECT doc FROM files WHERE file_id = ?", (file_id,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM file_tags WHERE file_id = ?", (file_id,))
            db.execute("DELETE FROM files WHERE file_id = ?", (file_id,))
        return json.loads(row[0])

    def runs_using_file(self, file_id: str) -> list[str]:
        marks = ",".join("?" * len(ACTIVE_RUN_STATES))
        with self._read() as db:
            rows = db.execute(
                f"SELECT run_id FROM runs WHERE state IN ({marks}) AND EXISTS"
                " (SELECT 1 FROM json_each(runs.doc, '$.file_ids') WHERE value = ?)"
                " ORDER BY run_id",
                [*ACTIVE_RUN_STATES, file_id],
            ).fetchall()
        return [r for (r,) in rows]
