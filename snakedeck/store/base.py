"""The one store interface: MongoDB in production (:mod:`snakedeck.store.mongo`), SQLite when
embedded (:mod:`snakedeck.store.sqlite`). Both pass ``tests/contract/test_store_contract.py``.

Backends implement storage primitives; :meth:`Store.persist` (the consumer's projection) is
written once here on top of them, with the folding rules of :mod:`snakedeck.projection`.
"""

from __future__ import annotations

import abc
import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from snakedeck import projection
from snakedeck.envelope import Envelope
from snakedeck.states import TERMINAL_RUN_STATES

Doc = dict[str, Any]


class StoreError(RuntimeError):
    """The store is unreachable or refused an operation."""


class RunExists(StoreError):
    pass


class BadPageToken(ValueError):
    """A ``page_token`` that this store did not hand out."""


class ConcurrentUpdate(StoreError):
    """A run document changed between read and write; the caller retries."""


@dataclass(frozen=True)
class RunFilter:
    state: str | None = None
    workflow: str | None = None
    tag: str | None = None
    """``key`` or ``key=value``."""
    q: str | None = None
    """Free text: matched against run id, workflow name and tag values."""


@dataclass(frozen=True)
class JobFilter:
    rule: str | None = None
    state: str | None = None
    q: str | None = None
    """Free text: matched against the job's wildcards, rule, and jobid."""


JOB_SORTS = ("jobid", "-jobid", "duration", "-duration", "started_at", "-started_at")
MAX_PAGE_SIZE = 1000


# -- what both backends index ------------------------------------------------------------------
# Backends store these derived values beside each document (SQLite columns, a Mongo ``_ix``
# sub-document) so every filter and sort of the API is an indexed query, and both backends sort
# and match identically.


def run_sort_key(doc: Mapping[str, Any]) -> str:
    """Newest-first key: submission time, or for a hand-run Snakemake its first known time."""
    return str(doc.get("submitted_at") or doc.get("initialized_at") or doc.get("started_at") or "")


def run_tag_terms(doc: Mapping[str, Any]) -> list[str]:
    """``k`` and ``k=v`` for every tag, so a tag filter of either form is one equality match."""
    tags = doc.get("tags") or {}
    terms: set[str] = set()
    for key, value in tags.items():
        terms.add(str(key))
        terms.add(f"{key}={value}")
    return sorted(terms)


def run_search_text(doc: Mapping[str, Any]) -> str:
    """Lower-cased text that the free-text ``q`` filter of runs matches as a substring."""
    parts = [str(doc.get("run_id") or ""), str(doc.get("workflow") or "")]
    parts += [str(v) for v in (doc.get("tags") or {}).values()]
    return "\n".join(parts).lower()


def job_search_text(doc: Mapping[str, Any]) -> str:
    """Lower-cased text for the jobs ``q`` filter: rule, jobid and wildcard values."""
    parts = [str(doc.get("rule") or ""), str(doc.get("jobid") or "")]
    wildcards = doc.get("wildcards")
    if isinstance(wildcards, Mapping):
        parts += [str(v) for v in wildcards.values()]
    return "\n".join(parts).lower()


def job_duration_key(doc: Mapping[str, Any]) -> float:
    """Duration, with -1 for a job not finished, so ``-duration`` puts unfinished jobs last."""
    duration = doc.get("duration")
    return -1.0 if duration is None else float(duration)


def job_started_key(doc: Mapping[str, Any]) -> str:
    return str(doc.get("started_at") or "")


@dataclass(frozen=True)
class JobOrder:
    """How a ``JOB_SORTS`` value orders jobs: ``(field, descending)`` pairs, a unique tail last.

    Field names are the logical ones (``jobid_num``, ``duration_key``, ``started_key``,
    ``jobid``); each backend maps them to its columns.
    """

    sort: str
    keys: tuple[tuple[str, bool], ...]

    @classmethod
    def of(cls, sort: str) -> JobOrder:
        if sort not in JOB_SORTS:
            raise ValueError(f"sort {sort!r} is not one of {', '.join(JOB_SORTS)}")
        desc = sort.startswith("-")
        name = sort.lstrip("-")
        primary = {"jobid": "jobid_num", "duration": "duration_key", "started_at": "started_key"}
        tail_desc = desc if name == "jobid" else False
        keys = ((primary[name], desc), ("jobid_num", tail_desc), ("jobid", tail_desc))
        return cls(sort, keys)

    def values(self, doc: Mapping[str, Any]) -> list[Any]:
        getters = {
            "jobid_num": lambda d: int(d.get("jobid_num", -1)),
            "duration_key": job_duration_key,
            "started_key": job_started_key,
            "jobid": lambda d: str(d.get("jobid")),
        }
        return [getters[name](doc) for name, _ in self.keys]

    def token(self, doc: Mapping[str, Any]) -> str:
        return encode_token([f"jobs{self.sort}", *self.values(doc)])

    def decode(self, token: str) -> list[Any]:
        value = decode_token(token, 1 + len(self.keys))
        types = {"jobid_num": int, "duration_key": (int, float), "started_key": str, "jobid": str}
        ok = value[0] == f"jobs{self.sort}" and all(
            isinstance(v, types[name]) and not isinstance(v, bool)
            for v, (name, _) in zip(value[1:], self.keys, strict=True)
        )
        if not ok:
            raise BadPageToken(f"page_token {token!r} was not issued for this listing")
        return value[1:]


def run_token(doc: Mapping[str, Any]) -> str:
    return encode_token(["runs", run_sort_key(doc), doc["run_id"]])


def decode_run_token(token: str) -> tuple[str, str]:
    kind, sort_key, run_id = decode_token(token, 3)
    if kind != "runs" or not isinstance(sort_key, str) or not isinstance(run_id, str):
        raise BadPageToken(f"page_token {token!r} was not issued for this listing")
    return sort_key, run_id


def check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")


PROTECTED_RUN_FIELDS = frozenset({"run_id", "_rev", "_id"})


@dataclass
class Page:
    items: list[Doc]
    next_page_token: str | None
    total: int


@dataclass
class PersistResult:
    """What :meth:`Store.persist` changed, for the update fan-out."""

    events: list[Envelope] = field(default_factory=list)
    runs: list[Doc] = field(default_factory=list)
    jobs: list[Doc] = field(default_factory=list)


def encode_token(value: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(value)).encode()).decode().rstrip("=")


def decode_token(token: str, arity: int) -> list[Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise BadPageToken(f"page_token {token!r} is not a token this server issued") from None
    if not isinstance(value, list) or len(value) != arity:
        raise BadPageToken(f"page_token {token!r} is not a token this server issued")
    return value


class Store(abc.ABC):
    """Runs, jobs, events (and, later, registered files) of every snakedeck run."""

    # -- lifecycle ------------------------------------------------------------------------------
    @abc.abstractmethod
    def ensure_schema(self) -> None:
        """Create tables/collections and every index the API's queries need (idempotent)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreError` if the store is unreachable."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # -- runs -----------------------------------------------------------------------------------
    def create_run(self, run: Doc) -> None:
        """Insert a new run document (``run_id`` required). Raises :class:`RunExists`.

        Missing projection fields (state, progress, rule_counts…) get their initial values, so
        every run document has the same shape whether or not events have arrived."""
        run_id = run.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise ValueError("create_run needs a run document with a run_id")
        doc = {**projection.new_run(run_id), **{k: v for k, v in run.items() if k != "_rev"}}
        try:
            self._save_run(doc, None)
        except ConcurrentUpdate:
            raise RunExists(f"run {run_id} already exists") from None

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Doc | None: ...

    @abc.abstractmethod
    def list_runs(
        self, filters: RunFilter, *, page_size: int = 50, page_token: str | None = None
    ) -> Page:
        """Newest first (``submitted_at`` then ``run_id``, descending), keyset-paginated."""

    def update_run(
        self, run_id: str, changes: Mapping[str, Any], *, only_states: Iterable[str] | None = None
    ) -> bool:
        """Set top-level fields of a run outside the event projection (e.g. a cancel request);
        with ``only_states``, only while the run is in one of them. Returns whether it did.

        Goes through the same revision check as :meth:`persist`, so neither loses the other's
        write."""
        bad = PROTECTED_RUN_FIELDS & set(changes)
        if bad:
            raise ValueError(f"update_run cannot change {', '.join(sorted(bad))}")
        states = None if only_states is None else {str(s) for s in only_states}
        for _attempt in range(20):
            current = self._load_run_for_update(run_id)
            if current is None:
                return False
            if states is not None and current.get("state") not in states:
                return False
            doc = {**current, **changes}
            try:
                self._save_run(doc, int(current.get("_rev") or 0))
                return True
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate(f"run {run_id} kept changing; update_run gave up after 20 tries")

    @abc.abstractmethod
    def count_runs_by_state(self) -> dict[str, int]: ...

    # -- jobs and events ------------------------------------------------------------------------
    @abc.abstractmethod
    def get_job(self, run_id: str, jobid: str) -> Doc | None: ...

    @abc.abstractmethod
    def list_jobs(
        self,
        run_id: str,
        filters: JobFilter,
        *,
        sort: str = "jobid",
        page_size: int = 100,
        page_token: str | None = None,
    ) -> Page: ...

    @abc.abstractmethod
    def list_events(self, run_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[Envelope]:
        """Events of a run with ``seq > after_seq``, in seq order."""

    @abc.abstractmethod
    def count_events(self) -> int: ...

    # -- projection primitives (backends implement, :meth:`persist` orchestrates) ---------------
    @abc.abstractmethod
    def _insert_events(self, events: Sequence[Envelope]) -> None:
        """Insert events keyed by ``(run_id, seq)``; silently skip ones already stored."""

    @abc.abstractmethod
    def _load_run_for_update(self, run_id: str) -> Doc | None:
        """The run document including its ``_rev`` (optimistic-concurrency revision)."""

    @abc.abstractmethod
    def _save_run(self, doc: Doc, expected_rev: int | None) -> None:
        """Write the whole run document if its revision is still ``expected_rev`` (``None``:
        must not exist yet), bumping ``_rev``; else raise :class:`ConcurrentUpdate`."""

    @abc.abstractmethod
    def _load_jobs(self, run_id: str, jobids: Iterable[str]) -> dict[str, Doc]:
        """Job documents by jobid, each with its ``_rev`` (public reads hide job revisions)."""

    @abc.abstractmethod
    def _save_jobs(self, docs: Sequence[Doc]) -> None:
        """Write whole job documents keyed by ``(run_id, jobid)``: a doc without ``_rev`` must
        not exist yet, one with ``_rev`` must still have it. Every write that can go through
        does; then raise :class:`ConcurrentUpdate` if any could not (two consumers folding the
        same job), so :meth:`persist` re-reads and folds again."""

    @abc.abstractmethod
    def _open_jobs(self, run_id: str) -> list[Doc]:
        """Jobs of the run in an open state (pending/running), with their ``_rev``."""

    @abc.abstractmethod
    def _count_jobs(self, run_id: str) -> dict[str | None, dict[str, int]]:
        """``{rule: {state: count}}`` over the run's job documents (rule ``None``: not known
        yet, its ``job_info`` has not arrived)."""

    # -- the projection -------------------------------------------------------------------------
    def persist(self, events: Sequence[Envelope]) -> PersistResult:
        """Store events and fold them into runs and jobs, idempotently and in any order."""
        result = PersistResult()
        if not events:
            return result
        self._insert_events(events)
        result.events = sorted(events, key=lambda e: (e["run_id"], e["seq"]))
        for run_id, run_events in projection.group_by_run(events).items():
            for attempt in range(20):
                try:
                    run, jobs = self._persist_run(run_id, run_events)
                    break
                except ConcurrentUpdate:
                    if attempt == 19:
                        raise
            result.runs.append(run)
            result.jobs.extend(jobs)
        return result

    def _persist_run(self, run_id: str, events: list[Envelope]) -> tuple[Doc, list[Doc]]:
        current = self._load_run_for_update(run_id)
        rev = None if current is None else int(current.get("_rev") or 0)
        run = dict(current) if current is not None else projection.new_run(run_id)
        for event in events:
            projection.fold_run(run, event)
        closed_seq = run.get("closed_seq")

        wanted: dict[str, list[Envelope]] = {}
        for event in events:
            for jid in projection.job_ids(event):
                wanted.setdefault(jid, []).append(event)
        existing = self._load_jobs(run_id, wanted)
        changed: dict[str, Doc] = {}
        for jid, job_events in wanted.items():
            job = existing.get(jid) or projection.new_job(run_id, jid)
            for event in job_events:
                projection.fold_job(job, event, closed_seq)
            changed[jid] = job
        just_closed = closed_seq is not None and (
            current is None or current.get("closed_seq") != closed_seq
        )
        if just_closed or (closed_seq is not None and run.get("state") in TERMINAL_RUN_STATES):
            for job in self._open_jobs(run_id):
                jid = str(job["jobid"])
                job = changed.get(jid, job)
                before = job["state"]
                projection.settle_job(job, closed_seq)
                if job["state"] != before or jid in changed:
                    changed[jid] = job
        if changed:
            self._save_jobs(list(changed.values()))
        projection.summarize(run, self._count_jobs(run_id))
        self._save_run(run, rev)
        return run, list(changed.values())
