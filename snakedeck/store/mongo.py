"""The production store: MongoDB through pymongo.

Collections ``runs`` (``_id`` = run_id), ``jobs`` (``_id`` = ``run_id:jobid``) and ``events``
(``_id`` = ``run_id:seq``), so idempotent writes are plain ``_id`` upserts and duplicate-key
skips. Values every API query filters or sorts on live in an ``_ix`` sub-document (see the index
helpers in :mod:`snakedeck.store.base`); ``_id`` and ``_ix`` never leave this module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlparse

from snakedeck.envelope import Envelope
from snakedeck.projection import job_key
from snakedeck.states import OPEN_JOB_STATES
from snakedeck.store.base import (
    ConcurrentUpdate,
    Doc,
    JobFilter,
    JobOrder,
    Page,
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

DUPLICATE_KEY = 11000
HIDDEN = {"_id": 0, "_ix": 0}
HIDDEN_JOB = {"_id": 0, "_ix": 0, "_rev": 0}

# Logical sort fields (see JobOrder) → where they live in a job document.
JOB_FIELDS = {
    "jobid_num": "jobid_num",
    "jobid": "jobid",
    "duration_key": "_ix.duration",
    "started_key": "_ix.started",
}


def _host_of(uri: str) -> str:
    """The host part of a MongoDB URI, without credentials, for error messages."""
    try:
        netloc = urlparse(uri).netloc
    except ValueError:
        return "<unparsable MongoDB URI>"
    return netloc.rsplit("@", 1)[-1] or uri


def _mongo_errors[**P, R](method: Callable[P, R]) -> Callable[P, R]:
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


def _keyset(keys: Sequence[tuple[str, bool]], values: Sequence[Any]) -> dict[str, Any]:
    """A filter selecting documents strictly after ``values`` in the order ``keys``."""
    ors: list[dict[str, Any]] = []
    for i, (field, desc) in enumerate(keys):
        term: dict[str, Any] = {f: values[j] for j, (f, _) in enumerate(keys[:i])}
        term[field] = {"$lt" if desc else "$gt": values[i]}
        ors.append(term)
    return {"$or": ors}


def _sort(keys: Sequence[tuple[str, bool]]) -> list[tuple[str, int]]:
    return [(f, -1 if desc else 1) for f, desc in keys]


def _contains(text: str) -> dict[str, Any]:
    return {"$regex": re.escape(text.lower())}


class MongoStore(Store):
    """Runs, jobs and events in one MongoDB database."""

    def __init__(self, uri: str, db_name: str = "snakedeck", *, timeout_ms: int = 5000) -> None:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        self.uri = uri
        self.host = _host_of(uri)
        try:
            self._client: Any = MongoClient(
                uri,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                tz_aware=False,
            )
        except (PyMongoError, ValueError, TypeError) as exc:
            raise StoreError(f"MongoDB URI for {self.host} is not usable: {exc}") from exc
        self._db = self._client[db_name]
        self._runs = self._db["runs"]
        self._jobs = self._db["jobs"]
        self._events = self._db["events"]

    # -- lifecycle ------------------------------------------------------------------------------
    @_mongo_errors
    def ensure_schema(self) -> None:
        from pymongo import ASCENDING as UP
        from pymongo import DESCENDING as DOWN

        self._runs.create_index([("_ix.sort", DOWN), ("run_id", DOWN)], name="newest")
        self._runs.create_index([("state", UP), ("_ix.sort", DOWN), ("run_id", DOWN)])
        self._runs.create_index([("workflow", UP), ("_ix.sort", DOWN), ("run_id", DOWN)])
        self._runs.create_index([("_ix.tags", UP)], name="tags")
        self._jobs.create_index([("run_id", UP), ("jobid_num", UP)])
        self._jobs.create_index([("run_id", UP), ("state", UP)])
        self._jobs.create_index([("run_id", UP), ("rule", UP)])
        self._jobs.create_index([("run_id", UP), ("_ix.duration", UP)], name="duration")
        self._jobs.create_index([("run_id", UP), ("_ix.started", UP)], name="started_at")
        self._events.create_index([("run_id", UP), ("seq", UP)])

    @_mongo_errors
    def ping(self) -> None:
        self._client.admin.command("ping")

    def close(self) -> None:
        self._client.close()

    # -- runs -----------------------------------------------------------------------------------
    @_mongo_errors
    def get_run(self, run_id: str) -> Doc | None:
        return self._runs.find_one({"_id": run_id}, HIDDEN)

    @_mongo_errors
    def list_runs(
        self, filters: RunFilter, *, page_size: int = 50, page_token: str | None = None
    ) -> Page:
        check_page_size(page_size)
        query: dict[str, Any] = {}
        if filters.state:
            query["state"] = filters.state
        if filters.workflow:
            query["workflow"] = filters.workflow
        if filters.tag:
            query["_ix.tags"] = filters.tag.strip()
        if filters.q:
            query["_ix.text"] = _contains(filters.q)
        keys = (("_ix.sort", True), ("run_id", True))
        page_query = query
        if page_token:
            page_query = {"$and": [query, _keyset(keys, decode_run_token(page_token))]}
        total = self._runs.count_documents(query)
        docs = list(self._runs.find(page_query, HIDDEN).sort(_sort(keys)).limit(page_size + 1))
        items = docs[:page_size]
        token = run_token(items[-1]) if len(docs) > page_size else None
        return Page(items, token, total)

    @_mongo_errors
    def count_runs_by_state(self) -> dict[str, int]:
        rows = self._runs.aggregate([{"$group": {"_id": "$state", "n": {"$sum": 1}}}])
        return {row["_id"]: int(row["n"]) for row in rows if row["_id"] is not None}

    # -- jobs and events ------------------------------------------------------------------------
    @_mongo_errors
    def get_job(self, run_id: str, jobid: str) -> Doc | None:
        return self._jobs.find_one({"_id": job_key(run_id, jobid)}, HIDDEN_JOB)

    @_mongo_errors
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
        keys = tuple((JOB_FIELDS[name], desc) for name, desc in order.keys)
        query: dict[str, Any] = {"run_id": run_id}
        if filters.rule:
            query["rule"] = filters.rule
        if filters.state:
            query["state"] = filters.state
        if filters.q:
            query["_ix.text"] = _contains(filters.q)
        page_query = query
        if page_token:
            page_query = {"$and": [query, _keyset(keys, order.decode(page_token))]}
        total = self._jobs.count_documents(query)
        docs = list(self._jobs.find(page_query, HIDDEN_JOB).sort(_sort(keys)).limit(page_size + 1))
        items = docs[:page_size]
        token = order.token(items[-1]) if len(docs) > page_size else None
        return Page(items, token, total)

    @_mongo_errors
    def list_events(self, run_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[Envelope]:
        if limit <= 0:
            return []
        cursor = (
            self._events.find({"run_id": run_id, "seq": {"$gt": int(after_seq)}}, {"_id": 0})
            .sort([("seq", 1)])
            .limit(int(limit))
        )
        return list(cursor)

    @_mongo_errors
    def count_events(self) -> int:
        return int(self._events.count_documents({}))

    # -- projection primitives ------------------------------------------------------------------
    @_mongo_errors
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

    @_mongo_errors
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

    @_mongo_errors
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

    @_mongo_errors
    def _load_jobs(self, run_id: str, jobids: Iterable[str]) -> dict[str, Doc]:
        ids = [job_key(run_id, j) for j in jobids]
        found: dict[str, Doc] = {}
        for start in range(0, len(ids), 1000):
            for doc in self._jobs.find({"_id": {"$in": ids[start : start + 1000]}}, HIDDEN):
                found[str(doc["jobid"])] = doc
        return found

    @_mongo_errors
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

    @_mongo_errors
    def _open_jobs(self, run_id: str) -> list[Doc]:
        states = sorted(s.value for s in OPEN_JOB_STATES)
        return list(self._jobs.find({"run_id": run_id, "state": {"$in": states}}, HIDDEN))

    @_mongo_errors
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
