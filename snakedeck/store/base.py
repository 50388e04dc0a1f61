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
    @abc.abstractmethod
    def create_run(self, run: Doc) -> None:
        """Insert a new run document (``run_id`` required). Raises :class:`RunExists`."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Doc | None: ...

    @abc.abstractmethod
    def list_runs(
        self, filters: RunFilter, *, page_size: int = 50, page_token: str | None = None
    ) -> Page:
        """Newest first (``submitted_at`` then ``run_id``, descending), keyset-paginated."""

    @abc.abstractmethod
    def update_run(
        self, run_id: str, changes: Mapping[str, Any], *, only_states: Iterable[str] | None = None
    ) -> bool:
        """Set top-level fields of a run outside the event projection (e.g. a cancel request);
        with ``only_states``, only while the run is in one of them. Returns whether it did."""

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
    def _load_jobs(self, run_id: str, jobids: Iterable[str]) -> dict[str, Doc]: ...

    @abc.abstractmethod
    def _save_jobs(self, docs: Sequence[Doc]) -> None:
        """Upsert whole job documents keyed by ``(run_id, jobid)``."""

    @abc.abstractmethod
    def _open_jobs(self, run_id: str) -> list[Doc]:
        """Jobs of the run in an open state (pending/running)."""

    @abc.abstractmethod
    def _count_jobs(self, run_id: str) -> dict[str, dict[str, int]]:
        """``{rule: {state: count}}`` over the run's job documents."""

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
