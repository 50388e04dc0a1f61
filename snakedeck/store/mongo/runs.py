"""Runs, jobs and events in MongoDB: the production backend of
:class:`~snakedeck.store.runs.RunStore`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from snakedeck.documents import JobDoc, RunDoc
from snakedeck.envelope import Envelope
from snakedeck.paging import KeyOrder
from snakedeck.projection import job_key
from snakedeck.states import OPEN_JOB_STATES
from snakedeck.store.errors import ConcurrentUpdate
from snakedeck.store.mongo.connection import DUPLICATE_KEY, MongoConnection, mongo_errors
from snakedeck.store.runs import (
    RUN_ORDER,
    JobFilter,
    RunFilter,
    RunStore,
    job_duration_key,
    job_search_text,
    job_started_key,
    run_search_text,
    run_sort_key,
    run_tag_terms,
)

Doc = dict[str, Any]

HIDDEN = {"_id": 0, "_ix": 0}
HIDDEN_JOB = {"_id": 0, "_ix": 0, "_rev": 0}

# Logical sort keys (see snakedeck.paging.KeyOrder) → where they live in a document.
FIELDS = {
    "sort_key": "_ix.sort",
    "run_id": "run_id",
    "jobid_num": "jobid_num",
    "jobid": "jobid",
    "duration_key": "_ix.duration",
    "started_key": "_ix.started",
}


def _after(order: KeyOrder, values: Sequence[Any] | None) -> dict[str, Any] | None:
    """A filter selecting documents strictly after ``values`` in ``order`` (none: all)."""
    if values is None:
        return None
    keys = [(FIELDS[name], desc) for name, desc in order.pairs]
    ors: list[dict[str, Any]] = []
    for i, (field, desc) in enumerate(keys):
        term: dict[str, Any] = {f: values[j] for j, (f, _) in enumerate(keys[:i])}
        term[field] = {"$lt" if desc else "$gt": values[i]}
        ors.append(term)
    return {"$or": ors}


def _sort(order: KeyOrder) -> list[tuple[str, int]]:
    return [(FIELDS[name], -1 if desc else 1) for name, desc in order.pairs]


def _and(query: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    return query if extra is None else {"$and": [query, extra]}


def _contains(text: str) -> dict[str, Any]:
    return {"$regex": re.escape(text.lower())}


class MongoRuns(MongoConnection, RunStore):
    """Runs, jobs and events in three collections keyed so that replays are no-ops."""

    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        super().__init__(uri, db_name, timeout_ms=timeout_ms)
        self._runs = self._db["runs"]
        self._jobs = self._db["jobs"]
        self._events = self._db["events"]

    def _create_schema(self) -> None:
        from pymongo import ASCENDING as UP
        from pymongo import DESCENDING as DOWN

        super()._create_schema()
        self._runs.create_index([("_ix.sort", DOWN), ("run_id", DOWN)], name="newest")
        self._runs.create_index([("state", UP), ("_ix.sort", DOWN), ("run_id", DOWN)])
        self._runs.create_index([("workflow", UP), ("_ix.sort", DOWN), ("run_id", DOWN)])
        self._runs.create_index([("user", UP), ("_ix.sort", DOWN), ("run_id", DOWN)])
        self._runs.create_index([("_ix.tags", UP)], name="tags")
        self._runs.create_index([("workflow_bundle.files.sha256", UP)], name="bundle_blobs")
        self._jobs.create_index([("run_id", UP), ("jobid_num", UP)])
        # As the SQLite store's: a filter with the job table's order is one index walk, so a
        # page of a 100,000-job run costs its own documents, not the run's.
        tail = [("jobid_num", UP), ("jobid", UP)]
        longest = [("_ix.duration", DOWN), *tail]
        for old in ("run_id_1_state_1", "run_id_1_rule_1"):  # prefixes of the ones below
            if old in self._jobs.index_information():
                self._jobs.drop_index(old)
        self._jobs.create_index([("run_id", UP), ("state", UP), *tail], name="state_num")
        self._jobs.create_index([("run_id", UP), ("rule", UP), *tail], name="rule_num")
        self._jobs.create_index([("run_id", UP), ("rule", UP), *longest], name="rule_longest")
        self._jobs.create_index([("run_id", UP), ("state", UP), *longest], name="state_longest")
        self._jobs.create_index(
            [("run_id", UP), ("rule", UP), ("state", UP), *longest], name="rule_state_longest"
        )
        self._jobs.create_index([("run_id", UP), ("_ix.duration", UP)], name="duration")
        self._jobs.create_index([("run_id", UP), ("_ix.started", UP)], name="started_at")
        self._events.create_index([("run_id", UP), ("seq", UP)])

    # -- runs -----------------------------------------------------------------------------------
    @mongo_errors
    def _count_runs_with_blob(self, sha256: str) -> int:
        query = {"workflow_bundle.files.sha256": sha256}
        return int(self._runs.count_documents(query, limit=1))

    @mongo_errors
    def get_run(self, run_id: str) -> Doc | None:
        return self._runs.find_one({"_id": run_id}, HIDDEN)

    @staticmethod
    def _run_query(filters: RunFilter) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if filters.state:
            query["state"] = filters.state
        if filters.workflow:
            query["workflow"] = filters.workflow
        if filters.user:
            query["user"] = filters.user
        if filters.tag:
            query["_ix.tags"] = filters.tag.strip()
        if filters.q:
            query["_ix.text"] = _contains(filters.q)
        return query

    @mongo_errors
    def _fetch_runs(
        self, filters: RunFilter, after: Sequence[Any] | None, limit: int
    ) -> list[RunDoc]:
        query = _and(self._run_query(filters), _after(RUN_ORDER, after))
        return list(self._runs.find(query, HIDDEN).sort(_sort(RUN_ORDER)).limit(limit))

    @mongo_errors
    def _count_runs(self, filters: RunFilter) -> int:
        return int(self._runs.count_documents(self._run_query(filters)))

    @mongo_errors
    def count_runs_by_state(self) -> dict[str, int]:
        rows = self._runs.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {row["_id"]: int(row["n"]) for row in rows if row["_id"] is not None}

    # -- jobs and events ------------------------------------------------------------------------
    @mongo_errors
    def get_job(self, run_id: str, jobid: str) -> Doc | None:
        return self._jobs.find_one({"_id": job_key(run_id, jobid)}, HIDDEN_JOB)

    @staticmethod
    def _job_query(run_id: str, filters: JobFilter) -> dict[str, Any]:
        query: dict[str, Any] = {"run_id": run_id}
        if filters.rule:
            query["rule"] = filters.rule
        if filters.state:
            query["state"] = filters.state
        if filters.q:
            query["_ix.text"] = _contains(filters.q)
        return query

    @mongo_errors
    def _fetch_jobs(
        self,
        run_id: str,
        filters: JobFilter,
        order: KeyOrder,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[JobDoc]:
        query = _and(self._job_query(run_id, filters), _after(order, after))
        return list(self._jobs.find(query, HIDDEN_JOB).sort(_sort(order)).limit(limit))

    @mongo_errors
    def _count_job_docs(self, run_id: str, filters: JobFilter) -> int:
        return int(self._jobs.count_documents(self._job_query(run_id, filters)))

    @mongo_errors
    def list_events(self, run_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[Envelope]:
        if limit <= 0:
            return []
        cursor = (
            self._events.find({"run_id": run_id, "seq": {"$gt": int(after_seq)}}, {"_id": 0})
            .sort([("seq", 1)])
            .limit(int(limit))
        )
        return list(cursor)

    @mongo_errors
    def count_events(self) -> int:
        return int(self._events.count_documents({}))

    # -- projection primitives ------------------------------------------------------------------
    @mongo_errors
    def _insert_events(self, events: Sequence[Envelope]) -> None:
        from pymongo.errors import BulkWriteError

        docs = [{"_id": f"{e['run_id']}:{e['seq']}", **e} for e in events]
        try:
            self._events.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors) or exc.details.get(
                "writeConcernErrors"
            ):
                raise

    @mongo_errors
    def _existing_runs(self, run_ids: Iterable[str]) -> set[str]:
        ids = list(run_ids)
        found: set[str] = set()
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            found.update(d["_id"] for d in self._runs.find({"_id": {"$in": chunk}}, {"_id": 1}))
        return found

    @mongo_errors
    def _load_run_for_update(self, run_id: str) -> Doc | None:
        return self._runs.find_one({"_id": run_id}, HIDDEN)

    @staticmethod
    def _run_record(body: Doc) -> Doc:
        return {
            "_id": body["run_id"],
            **body,
            "_ix": {
                "sort": run_sort_key(body),
                "tags": run_tag_terms(body),
                "text": run_search_text(body),
            },
        }

    @mongo_errors
    def _save_run(self, doc: Doc, expected_rev: int | None) -> None:
        from pymongo.errors import DuplicateKeyError

        body = {k: v for k, v in doc.items() if k not in ("_rev", "_id", "_ix")}
        new_rev = 1 if expected_rev is None else expected_rev + 1
        body["_rev"] = new_rev
        record = self._run_record(body)
        if expected_rev is None:
            try:
                self._runs.insert_one(record)
            except DuplicateKeyError:
                raise ConcurrentUpdate(f"run {body['run_id']} already exists") from None
        else:
            result = self._runs.replace_one({"_id": body["run_id"], "_rev": expected_rev}, record)
            if result.matched_count != 1:
                raise ConcurrentUpdate(
                    f"run {body['run_id']} changed (expected revision {expected_rev})"
                )
        doc["_rev"] = new_rev

    @mongo_errors
    def _load_jobs(self, run_id: str, jobids: Iterable[str]) -> dict[str, Doc]:
        ids = [job_key(run_id, j) for j in jobids]
        found: dict[str, Doc] = {}
        for start in range(0, len(ids), 1000):
            for doc in self._jobs.find({"_id": {"$in": ids[start : start + 1000]}}, HIDDEN):
                found[str(doc["jobid"])] = doc
        return found

    @mongo_errors
    def _save_jobs(self, docs: Sequence[Doc]) -> None:
        from pymongo import InsertOne, ReplaceOne
        from pymongo.errors import BulkWriteError

        ops: list[Any] = []
        for doc in docs:
            body = {k: v for k, v in doc.items() if k not in ("_id", "_ix", "_rev")}
            key = job_key(body["run_id"], body["jobid"])
            rev = doc.get("_rev")
            record = {
                "_id": key,
                **body,
                "_rev": 1 if rev is None else int(rev) + 1,
                "_ix": {
                    "duration": job_duration_key(body),
                    "started": job_started_key(body),
                    "text": job_search_text(body),
                },
            }
            if rev is None:
                ops.append(InsertOne(record))
            else:
                ops.append(ReplaceOne({"_id": key, "_rev": int(rev)}, record))
        if not ops:
            return
        try:
            result = self._jobs.bulk_write(ops, ordered=False)
            written = result.inserted_count + result.matched_count
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors):
                raise
            written = int(exc.details.get("nInserted", 0)) + int(exc.details.get("nMatched", 0))
        if written < len(ops):
            raise ConcurrentUpdate(
                f"{len(ops) - written} job(s) of run {docs[0]['run_id']} changed meanwhile"
            )
        for doc in docs:
            doc["_rev"] = 1 if doc.get("_rev") is None else int(doc["_rev"]) + 1

    @mongo_errors
    def _open_jobs(self, run_id: str) -> list[Doc]:
        states = sorted(s.value for s in OPEN_JOB_STATES)
        return list(self._jobs.find({"run_id": run_id, "state": {"$in": states}}, HIDDEN))

    @mongo_errors
    def _done_durations(self, run_id: str) -> dict[str, tuple[int, float]]:
        rows = self._jobs.aggregate(
            [
                {"$match": {"run_id": run_id, "state": "done", "_ix.duration": {"$gte": 0}}},
                {"$group": {"_id": "$rule", "n": {"$sum": 1}, "s": {"$sum": "$_ix.duration"}}},
            ]
        )
        return {
            str(row["_id"]): (int(row["n"]), float(row["s"] or 0)) for row in rows if row["_id"]
        }

    @mongo_errors
    def _count_jobs(self, run_id: str) -> dict[str | None, dict[str, int]]:
        rows = self._jobs.aggregate(
            [
                {"$match": {"run_id": run_id}},
                {"$group": {"_id": {"rule": "$rule", "state": "$state"}, "n": {"$sum": 1}}},
            ]
        )
        counts: dict[str | None, dict[str, int]] = {}
        for row in rows:
            key = row["_id"]
            counts.setdefault(key.get("rule"), {})[key["state"]] = int(row["n"])
        return counts
