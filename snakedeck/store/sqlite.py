"""The embedded store: one SQLite file, for standalone mode and single machines.

Documents are JSON text; every field a query filters or sorts on is copied into an indexed
column beside it (see the index helpers in :mod:`snakedeck.store.base`). One connection behind a
lock serves every thread: the gateway's greenlets never yield inside SQLite calls, and a whole
:meth:`SqliteStore.persist` batch runs as one transaction, which is what makes it fast.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from snakedeck.envelope import Envelope
from snakedeck.states import OPEN_JOB_STATES
from snakedeck.store.base import (
    ConcurrentUpdate,
    Doc,
    JobFilter,
    JobOrder,
    Page,
    PersistResult,
    RunFilter,
    Store,
    StoreError,
    check_page_size,
    decode_run_token,
    job_duration_key,
    job_search_text,
    job_started_key,
    run_search_text,
    run_sort_key,
    run_tag_terms,
    run_token,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id   TEXT PRIMARY KEY,
    rev      INTEGER NOT NULL,
    sort_key TEXT NOT NULL,
    state    TEXT,
    workflow TEXT,
    search   TEXT NOT NULL,
    doc      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_newest ON runs (sort_key DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_state ON runs (state, sort_key DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_workflow ON runs (workflow, sort_key DESC, run_id DESC);
CREATE TABLE IF NOT EXISTS run_tags (
    term   TEXT NOT NULL,
    run_id TEXT NOT NULL,
    PRIMARY KEY (term, run_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_tags_run ON run_tags (run_id);
CREATE TABLE IF NOT EXISTS jobs (
    run_id       TEXT NOT NULL,
    jobid        TEXT NOT NULL,
    jobid_num    INTEGER NOT NULL,
    rev          INTEGER NOT NULL,
    rule         TEXT,
    state        TEXT NOT NULL,
    duration_key REAL NOT NULL,
    started_key  TEXT NOT NULL,
    search       TEXT NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (run_id, jobid)
);
CREATE INDEX IF NOT EXISTS jobs_num ON jobs (run_id, jobid_num);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (run_id, state);
CREATE INDEX IF NOT EXISTS jobs_rule ON jobs (run_id, rule);
CREATE INDEX IF NOT EXISTS jobs_duration ON jobs (run_id, duration_key);
CREATE INDEX IF NOT EXISTS jobs_started ON jobs (run_id, started_key);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    doc    TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _keyset(keys: Sequence[tuple[str, bool]], values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``WHERE`` clause selecting rows strictly after ``values`` in the order ``keys``."""
    ors: list[str] = []
    params: list[Any] = []
    for i, (column, desc) in enumerate(keys):
        terms = [f"{c} = ?" for c, _ in keys[:i]] + [f"{column} {'<' if desc else '>'} ?"]
        ors.append("(" + " AND ".join(terms) + ")")
        params += list(values[: i + 1])
    return "(" + " OR ".join(ors) + ")", params


def _order_by(keys: Sequence[tuple[str, bool]]) -> str:
    return ", ".join(f"{c} {'DESC' if d else 'ASC'}" for c, d in keys)


class SqliteStore(Store):
    """Runs, jobs and events in one SQLite file (WAL mode)."""

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
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite store at {self.path}: {exc}") from exc

    # -- plumbing -------------------------------------------------------------------------------
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

    # -- lifecycle ------------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        with self._lock:
            try:
                self._db.executescript(SCHEMA)
            except sqlite3.Error as exc:
                raise StoreError(f"cannot create schema in {self.path}: {exc}") from exc

    def ping(self) -> None:
        with self._read() as db:
            db.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- runs -----------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Doc | None:
        return self._load_run_for_update(run_id)

    def list_runs(
        self, filters: RunFilter, *, page_size: int = 50, page_token: str | None = None
    ) -> Page:
        check_page_size(page_size)
        where: list[str] = []
        params: list[Any] = []
        if filters.state:
            where.append("state = ?")
            params.append(filters.state)
        if filters.workflow:
            where.append("workflow = ?")
            params.append(filters.workflow)
        if filters.tag:
            where.append("run_id IN (SELECT run_id FROM run_tags WHERE term = ?)")
            params.append(filters.tag.strip())
        if filters.q:
            where.append("instr(search, ?) > 0")
            params.append(filters.q.lower())
        keys = (("sort_key", True), ("run_id", True))
        filter_sql = " AND ".join(where) or "1"
        page_where, page_params = filter_sql, list(params)
        if page_token:
            clause, extra = _keyset(keys, decode_run_token(page_token))
            page_where, page_params = f"{filter_sql} AND {clause}", params + extra
        with self._read() as db:
            total = db.execute(f"SELECT count(*) FROM runs WHERE {filter_sql}", params).fetchone()
            rows = db.execute(
                f"SELECT doc, rev FROM runs WHERE {page_where} ORDER BY {_order_by(keys)} LIMIT ?",
                [*page_params, page_size + 1],
            ).fetchall()
        items = [self._run_doc(doc, rev) for doc, rev in rows[:page_size]]
        token = run_token(items[-1]) if len(rows) > page_size else None
        return Page(items, token, int(total[0]))

    def count_runs_by_state(self) -> dict[str, int]:
        with self._read() as db:
            rows = db.execute("SELECT state, count(*) FROM runs GROUP BY state").fetchall()
        return {state: int(n) for state, n in rows}

    # -- jobs and events ------------------------------------------------------------------------
    def get_job(self, run_id: str, jobid: str) -> Doc | None:
        with self._read() as db:
            row = db.execute(
                "SELECT doc FROM jobs WHERE run_id = ? AND jobid = ?", (run_id, str(jobid))
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def list_jobs(
        self,
        run_id: str,
        filters: JobFilter,
        *,
        sort: str = "jobid",
        page_size: int = 100,
        page_token: str | None = None,
    ) -> Page:
        check_page_size(page_size)
        order = JobOrder.of(sort)
        where = ["run_id = ?"]
        params: list[Any] = [run_id]
        if filters.rule:
            where.append("rule = ?")
            params.append(filters.rule)
        if filters.state:
            where.append("state = ?")
            params.append(filters.state)
        if filters.q:
            where.append("instr(search, ?) > 0")
            params.append(filters.q.lower())
        filter_sql = " AND ".join(where)
        page_where, page_params = filter_sql, list(params)
        if page_token:
            clause, extra = _keyset(order.keys, order.decode(page_token))
            page_where, page_params = f"{filter_sql} AND {clause}", params + extra
        with self._read() as db:
            total = db.execute(f"SELECT count(*) FROM jobs WHERE {filter_sql}", params).fetchone()
            rows = db.execute(
                f"SELECT doc FROM jobs WHERE {page_where} ORDER BY {_order_by(order.keys)} LIMIT ?",
                [*page_params, page_size + 1],
            ).fetchall()
        items = [json.loads(doc) for (doc,) in rows[:page_size]]
        token = order.token(items[-1]) if len(rows) > page_size else None
        return Page(items, token, int(total[0]))

    def list_events(self, run_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[Envelope]:
        with self._read() as db:
            rows = db.execute(
                "SELECT doc FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (run_id, int(after_seq), int(limit)),
            ).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    def count_events(self) -> int:
        with self._read() as db:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])

    # -- projection primitives ------------------------------------------------------------------
    def persist(self, events: Sequence[Envelope]) -> PersistResult:
        """The whole batch in one transaction: all of it lands, or none of it."""
        with self._tx():
            return super().persist(events)

    def _insert_events(self, events: Sequence[Envelope]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO events (run_id, seq, doc) VALUES (?, ?, ?)",
                [(e["run_id"], int(e["seq"]), _dumps(e)) for e in events],
            )

    @staticmethod
    def _run_doc(raw: str, rev: int) -> Doc:
        doc = json.loads(raw)
        doc["_rev"] = int(rev)
        return doc

    def _load_run_for_update(self, run_id: str) -> Doc | None:
        with self._read() as db:
            row = db.execute("SELECT doc, rev FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else self._run_doc(*row)

    def _save_run(self, doc: Doc, expected_rev: int | None) -> None:
        body = {k: v for k, v in doc.items() if k != "_rev"}
        new_rev = 1 if expected_rev is None else expected_rev + 1
        row = (
            new_rev,
            run_sort_key(body),
            body.get("state"),
            body.get("workflow"),
            run_search_text(body),
            _dumps(body),
            body["run_id"],
        )
        with self._tx() as db:
            if expected_rev is None:
                cur = db.execute(
                    "INSERT OR IGNORE INTO runs (rev, sort_key, state, workflow, search, doc,"
                    " run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            else:
                cur = db.execute(
                    "UPDATE runs SET rev = ?, sort_key = ?, state = ?, workflow = ?, search = ?,"
                    " doc = ? WHERE run_id = ? AND rev = ?",
                    (*row, expected_rev),
                )
            if cur.rowcount != 1:
                raise ConcurrentUpdate(
                    f"run {body['run_id']} changed (expected revision {expected_rev})"
                )
            db.execute("DELETE FROM run_tags WHERE run_id = ?", (body["run_id"],))
            db.executemany(
                "INSERT INTO run_tags (term, run_id) VALUES (?, ?)",
                [(term, body["run_id"]) for term in run_tag_terms(body)],
            )
        doc["_rev"] = new_rev

    @staticmethod
    def _job_doc(raw: str, rev: int) -> Doc:
        doc = json.loads(raw)
        doc["_rev"] = int(rev)
        return doc

    def _load_jobs(self, run_id: str, jobids: Iterable[str]) -> dict[str, Doc]:
        wanted = [str(j) for j in jobids]
        found: dict[str, Doc] = {}
        with self._read() as db:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT jobid, doc, rev FROM jobs WHERE run_id = ? AND jobid IN ({marks})",
                    [run_id, *chunk],
                ).fetchall()
                found.update((jobid, self._job_doc(doc, rev)) for jobid, doc, rev in rows)
        return found

    def _save_jobs(self, docs: Sequence[Doc]) -> None:
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for d in docs:
            body = {k: v for k, v in d.items() if k != "_rev"}
            rev = d.get("_rev")
            values = (
                1 if rev is None else int(rev) + 1,
                int(body.get("jobid_num", -1)),
                body.get("rule"),
                body["state"],
                job_duration_key(body),
                job_started_key(body),
                job_search_text(body),
                _dumps(body),
                body["run_id"],
                str(body["jobid"]),
            )
            if rev is None:
                inserts.append(values)
            else:
                updates.append((*values, int(rev)))
        with self._tx() as db:
            written = 0
            if inserts:
                written += db.executemany(
                    "INSERT OR IGNORE INTO jobs (rev, jobid_num, rule, state, duration_key,"
                    " started_key, search, doc, run_id, jobid)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    inserts,
                ).rowcount
            if updates:
                written += db.executemany(
                    "UPDATE jobs SET rev = ?, jobid_num = ?, rule = ?, state = ?, duration_key = ?,"
                    " started_key = ?, search = ?, doc = ? WHERE run_id = ? AND jobid = ?"
                    " AND rev = ?",
                    updates,
                ).rowcount
        if written < len(docs):
            raise ConcurrentUpdate(f"{len(docs) - written} job(s) changed meanwhile")
        for d in docs:
            d["_rev"] = 1 if d.get("_rev") is None else int(d["_rev"]) + 1

    def _open_jobs(self, run_id: str) -> list[Doc]:
        states = sorted(s.value for s in OPEN_JOB_STATES)
        marks = ",".join("?" * len(states))
        with self._read() as db:
            rows = db.execute(
                f"SELECT doc, rev FROM jobs WHERE run_id = ? AND state IN ({marks})",
                [run_id, *states],
            ).fetchall()
        return [self._job_doc(doc, rev) for doc, rev in rows]

    def _count_jobs(self, run_id: str) -> dict[str | None, dict[str, int]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT rule, state, count(*) FROM jobs WHERE run_id = ? GROUP BY rule, state",
                (run_id,),
            ).fetchall()
        counts: dict[str | None, dict[str, int]] = {}
        for rule, state, n in rows:
            counts.setdefault(rule, {})[state] = int(n)
        return counts
