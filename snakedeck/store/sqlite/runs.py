"""Runs, jobs and events in SQLite: the embedded backend of
:class:`~snakedeck.store.runs.RunStore`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from snakedeck.documents import JobDoc, RunDoc
from snakedeck.envelope import Envelope
from snakedeck.paging import KeyOrder
from snakedeck.states import OPEN_JOB_STATES
from snakedeck.store.errors import ConcurrentUpdate
from snakedeck.store.runs import (
    RUN_ORDER,
    JobFilter,
    PersistResult,
    RunFilter,
    RunStore,
    job_duration_key,
    job_search_text,
    job_started_key,
    run_search_text,
    run_sort_key,
    run_tag_terms,
)
from snakedeck.store.sqlite.connection import SqliteConnection, dumps

Doc = dict[str, Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id   TEXT PRIMARY KEY,
    rev      INTEGER NOT NULL,
    sort_key TEXT NOT NULL,
    state    TEXT,
    workflow TEXT,
    user     TEXT,
    search   TEXT NOT NULL,
    doc      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_newest ON runs (sort_key DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_state ON runs (state, sort_key DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_workflow ON runs (workflow, sort_key DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_user ON runs (user, sort_key DESC, run_id DESC);
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
DROP INDEX IF EXISTS jobs_state;
DROP INDEX IF EXISTS jobs_rule;
CREATE INDEX IF NOT EXISTS jobs_state_num ON jobs (run_id, state, jobid_num, jobid);
CREATE INDEX IF NOT EXISTS jobs_rule_num ON jobs (run_id, rule, jobid_num, jobid);
CREATE INDEX IF NOT EXISTS jobs_duration ON jobs (run_id, duration_key);
-- The job table's usual view of a big run: one rule (and state), longest first. Each filter
-- with that order is one index walk, so a page costs its own rows, not the run's.
CREATE INDEX IF NOT EXISTS jobs_rule_longest
    ON jobs (run_id, rule, duration_key DESC, jobid_num, jobid);
CREATE INDEX IF NOT EXISTS jobs_state_longest
    ON jobs (run_id, state, duration_key DESC, jobid_num, jobid);
CREATE INDEX IF NOT EXISTS jobs_rule_state_longest
    ON jobs (run_id, rule, state, duration_key DESC, jobid_num, jobid);
CREATE INDEX IF NOT EXISTS jobs_started ON jobs (run_id, started_key);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    doc    TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""


ADDED_COLUMNS = (("runs", "user", "TEXT"),)
"""Columns added since the first schema: ``(table, column, type)``, added where missing."""


def _after(order: KeyOrder, values: Sequence[Any] | None) -> tuple[list[str], list[Any]]:
    """The ``WHERE`` term selecting rows strictly after ``values`` in ``order`` (none: all).
    Logical key names are the column names here."""
    if values is None:
        return [], []
    keys = order.pairs
    ors: list[str] = []
    params: list[Any] = []
    for i, (column, desc) in enumerate(keys):
        terms = [f"{c} = ?" for c, _ in keys[:i]] + [f"{column} {'<' if desc else '>'} ?"]
        ors.append("(" + " AND ".join(terms) + ")")
        params += list(values[: i + 1])
    return ["(" + " OR ".join(ors) + ")"], params


def _order_by(order: KeyOrder) -> str:
    return ", ".join(f"{c} {'DESC' if d else 'ASC'}" for c, d in order.pairs)


class SqliteRuns(SqliteConnection, RunStore):
    """Documents are JSON text beside indexed columns; a persist batch is one transaction."""

    def _create_schema(self) -> None:
        super()._create_schema()
        self._add_columns(ADDED_COLUMNS)
        self._db.executescript(SCHEMA)

    def _tables(self) -> tuple[str, ...]:
        return (*super()._tables(), "run_tags", "jobs", "events", "runs")

    # -- runs -----------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Doc | None:
        return self._load_run_for_update(run_id)

    @staticmethod
    def _run_where(filters: RunFilter) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("state", filters.state),
            ("workflow", filters.workflow),
            ("user", filters.user),
        ):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if filters.tag:
            where.append("run_id IN (SELECT run_id FROM run_tags WHERE term = ?)")
            params.append(filters.tag.strip())
        if filters.q:
            where.append("instr(search, ?) > 0")
            params.append(filters.q.lower())
        return where, params

    def _fetch_runs(
        self, filters: RunFilter, after: Sequence[Any] | None, limit: int
    ) -> list[RunDoc]:
        where, params = self._run_where(filters)
        sql, extra = _after(RUN_ORDER, after)
        rows = self._rows(
            "SELECT doc, rev FROM runs", [*where, *sql], [*params, *extra], RUN_ORDER, limit
        )
        return [self._run_doc(doc, rev) for doc, rev in rows]  # type: ignore[misc]

    def _count_runs(self, filters: RunFilter) -> int:
        where, params = self._run_where(filters)
        with self._read() as db:
            sql = "SELECT count(*) FROM runs WHERE " + (" AND ".join(where) or "1")
            return int(db.execute(sql, params).fetchone()[0])

    def _rows(
        self, select: str, where: list[str], params: list[Any], order: KeyOrder, limit: int
    ) -> list[tuple[Any, ...]]:
        sql = f"{select} WHERE {' AND '.join(where) or '1'} ORDER BY {_order_by(order)} LIMIT ?"
        with self._read() as db:
            return db.execute(sql, [*params, limit]).fetchall()

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

    @staticmethod
    def _job_where(run_id: str, filters: JobFilter) -> tuple[list[str], list[Any]]:
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
        return where, params

    def _fetch_jobs(
        self,
        run_id: str,
        filters: JobFilter,
        order: KeyOrder,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[JobDoc]:
        where, params = self._job_where(run_id, filters)
        sql, extra = _after(order, after)
        rows = self._rows("SELECT doc FROM jobs", [*where, *sql], [*params, *extra], order, limit)
        return [json.loads(doc) for (doc,) in rows]

    def _count_job_docs(self, run_id: str, filters: JobFilter) -> int:
        where, params = self._job_where(run_id, filters)
        with self._read() as db:
            sql = "SELECT count(*) FROM jobs WHERE " + " AND ".join(where)
            return int(db.execute(sql, params).fetchone()[0])

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
    def persist(self, events: Sequence[Envelope], *, recount: bool = False) -> PersistResult:
        """The whole batch in one transaction: all of it lands, or none of it."""
        with self._tx():
            return super().persist(events, recount=recount)

    def _existing_runs(self, run_ids: Iterable[str]) -> set[str]:
        wanted = list(run_ids)
        found: set[str] = set()
        with self._read() as db:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT run_id FROM runs WHERE run_id IN ({marks})", chunk)
                found.update(r for (r,) in rows.fetchall())
        return found

    def _insert_events(self, events: Sequence[Envelope]) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO events (run_id, seq, doc) VALUES (?, ?, ?)",
                [(e["run_id"], int(e["seq"]), dumps(e)) for e in events],
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

    def _count_runs_with_blob(self, sha256: str) -> int:
        with self._read() as db:
            row = db.execute(
                "SELECT count(*) FROM runs, json_each(runs.doc, '$.workflow_bundle.files') AS f"
                " WHERE json_extract(f.value, '$.sha256') = ?",
                (sha256,),
            ).fetchone()
        return int(row[0])

    def _save_run(self, doc: Doc, expected_rev: int | None) -> None:
        body = {k: v for k, v in doc.items() if k != "_rev"}
        new_rev = 1 if expected_rev is None else expected_rev + 1
        row = (
            new_rev,
            run_sort_key(body),
            body.get("state"),
            body.get("workflow"),
            body.get("user"),
            run_search_text(body),
            dumps(body),
            body["run_id"],
        )
        with self._tx() as db:
            if expected_rev is None:
                cur = db.execute(
                    "INSERT OR IGNORE INTO runs (rev, sort_key, state, workflow, user, search,"
                    " doc, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            else:
                cur = db.execute(
                    "UPDATE runs SET rev = ?, sort_key = ?, state = ?, workflow = ?, user = ?,"
                    " search = ?, doc = ? WHERE run_id = ? AND rev = ?",
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
                dumps(body),
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

    def _done_durations(self, run_id: str) -> dict[str, tuple[int, float]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT rule, count(*), sum(duration_key) FROM jobs WHERE run_id = ?"
                " AND state = 'done' AND duration_key >= 0 GROUP BY rule",
                (run_id,),
            ).fetchall()
        return {rule: (int(n), float(total or 0)) for rule, n, total in rows if rule}

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
