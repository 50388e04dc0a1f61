"""Runs, jobs and events: the part of the store the event projection writes.

Backends implement storage primitives; :meth:`RunStore.persist` (the consumer's projection) is
written once here on top of them, with the folding rules of :mod:`snakedeck.projection`, and so
are the orders of every listing (:mod:`snakedeck.paging`).

**What one batch costs.** :meth:`RunStore.persist` reads and writes only the run and the jobs its
events name: per-rule job counts are kept on the run document and moved by each job's state
change, so the cost of a batch does not grow with the run. Counts are recomputed from the job
documents only where an increment could have been lost: when a batch is retried after a
concurrent write, when it was redelivered (a consumer may have died between writing jobs and the
run), and once when the run ends.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from snakedeck import projection
from snakedeck.documents import JobDoc, RuleDurations, RunDoc
from snakedeck.envelope import Envelope
from snakedeck.paging import Key, KeyOrder, Page, paginate
from snakedeck.states import RunState
from snakedeck.store.errors import ConcurrentUpdate, RunExists

log = logging.getLogger(__name__)

MAX_CAS_RETRIES: Final = 20


@dataclass(frozen=True)
class RunFilter:
    state: str | None = None
    workflow: str | None = None
    tag: str | None = None
    """``key`` or ``key=value``."""
    q: str | None = None
    """Free text: matched against run id, workflow name and tag values."""
    user: str | None = None
    """Who submitted the run (the token's name)."""


@dataclass(frozen=True)
class JobFilter:
    rule: str | None = None
    state: str | None = None
    q: str | None = None
    """Free text: matched against the job's wildcards, rule, and jobid."""


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


def _jobid_num(doc: Mapping[str, Any]) -> int:
    return int(doc.get("jobid_num", -1))


def _jobid(doc: Mapping[str, Any]) -> str:
    return str(doc.get("jobid"))


# -- the orders of every listing ---------------------------------------------------------------
RUN_ORDER: Final = KeyOrder(
    "runs",
    (
        Key("sort_key", True, run_sort_key, str),
        Key("run_id", True, lambda d: str(d["run_id"]), str),
    ),
)

JOB_SORTS: Final = ("jobid", "-jobid", "duration", "-duration", "started_at", "-started_at")


def _job_order(sort: str) -> KeyOrder:
    desc = sort.startswith("-")
    name = sort.lstrip("-")
    primary = {
        "jobid": Key("jobid_num", desc, _jobid_num, int),
        "duration": Key("duration_key", desc, job_duration_key, (int, float)),
        "started_at": Key("started_key", desc, job_started_key, str),
    }[name]
    tail_desc = desc if name == "jobid" else False
    tail = (Key("jobid_num", tail_desc, _jobid_num, int), Key("jobid", tail_desc, _jobid, str))
    keys = tail if name == "jobid" else (primary, *tail)
    return KeyOrder(f"jobs{sort}", keys)


JOB_ORDERS: Final = {sort: _job_order(sort) for sort in JOB_SORTS}


def job_order(sort: str) -> KeyOrder:
    try:
        return JOB_ORDERS[sort]
    except KeyError:
        raise ValueError(f"sort {sort!r} is not one of {', '.join(JOB_SORTS)}") from None


PROTECTED_RUN_FIELDS = frozenset({"run_id", "_rev", "_id"})


@dataclass
class PersistResult:
    """What :meth:`Store.persist` changed, for the update fan-out."""

    events: list[Envelope] = field(default_factory=list)
    runs: list[RunDoc] = field(default_factory=list)
    jobs: list[JobDoc] = field(default_factory=list)
    unknown_runs: set[str] = field(default_factory=set)
    """Runs the batch named that do not exist (their events were neither stored nor folded)."""


class RunStore(abc.ABC):
    """Runs, jobs and events of every snakedeck run, and the projection that folds them."""

    @abc.abstractmethod
    def _count_runs_with_blob(self, sha256: str) -> int:
        """Runs whose private workflow (``workflow_bundle.files``) names the blob: it is kept
        while they are (a resume or a runner on another host fetches it again)."""

    # -- runs -----------------------------------------------------------------------------------
    def create_run(self, run: RunDoc) -> None:
        """Insert a new run document (``run_id`` required). Raises :class:`RunExists`.

        Missing projection fields (state, progress, rule_counts…) get their initial values, so
        every run document has the same shape whether or not events have arrived."""
        run_id = run.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise ValueError("create_run needs a run document with a run_id")
        doc = {**projection.new_run(run_id), **{k: v for k, v in run.items() if k != "_rev"}}
        try:
            self._save_run(doc, None)  # type: ignore[arg-type]
        except ConcurrentUpdate:
            raise RunExists(f"run {run_id} already exists") from None

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunDoc | None: ...

    def list_runs(
        self, filters: RunFilter, *, page_size: int = 50, page_token: str | None = None
    ) -> Page[RunDoc]:
        """Newest first (``submitted_at`` then ``run_id``, descending), keyset-paginated."""
        return paginate(
            RUN_ORDER,
            page_size=page_size,
            page_token=page_token,
            fetch=lambda after, limit: self._fetch_runs(filters, after, limit),
            count=lambda: self._count_runs(filters),
        )

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
        for _attempt in range(MAX_CAS_RETRIES):
            current = self._load_run_for_update(run_id)
            if current is None:
                return False
            if states is not None and current.get("state") not in states:
                return False
            doc = {**current, **changes}
            try:
                self._save_run(doc, int(current.get("_rev") or 0))  # type: ignore[arg-type]
                return True
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate(f"run {run_id} kept changing; update_run gave up")

    def declare_end(
        self, run_id: str, state: RunState, reason: str, *, by: str, fence: int, at: str
    ) -> PersistResult | None:
        """End a run that its owner can no longer end (see :func:`projection.declare_end`):
        its jobs left open are settled and its counts made final. ``None`` if the run does not
        exist or has ended already (so a declaration never gives a run a second end)."""
        for _attempt in range(MAX_CAS_RETRIES):
            current = self._load_run_for_update(run_id)
            if current is None or current.get("closed_seq") is not None:
                return None
            run: RunDoc = dict(current)  # type: ignore[assignment]
            projection.declare_end(run, state, reason, by=by, fence=fence, at=at)
            settled = []
            for job in self._open_jobs(run_id):
                projection.settle_job(job, projection.settled_seq(run))
                settled.append(job)
            try:
                if settled:
                    self._save_jobs(settled)
                counts = projection.Counts(run)
                counts.reset(self._count_jobs(run_id))
                counts.store()
                projection.summarize(run)
                self._save_run(run, int(current.get("_rev") or 0))
                return PersistResult(runs=[run], jobs=settled)
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate(f"run {run_id} kept changing; declare_end gave up")

    def modify_run(
        self, run_id: str, change: Callable[[RunDoc], Mapping[str, Any] | None]
    ) -> RunDoc | None:
        """Read-modify-write a run outside the projection: ``change(current)`` returns the
        fields to set (``None``: leave it); retried on a concurrent write with a fresh read,
        so the change is always made against the document it replaces. Returns the written
        document, or ``None`` (no run, or ``change`` declined)."""
        for _attempt in range(MAX_CAS_RETRIES):
            current = self._load_run_for_update(run_id)
            if current is None:
                return None
            changes = change(dict(current))  # type: ignore[arg-type]
            if changes is None:
                return None
            bad = PROTECTED_RUN_FIELDS & set(changes)
            if bad:
                raise ValueError(f"modify_run cannot change {', '.join(sorted(bad))}")
            doc = {**current, **changes}
            try:
                self._save_run(doc, int(current.get("_rev") or 0))  # type: ignore[arg-type]
                return doc  # type: ignore[return-value]
            except ConcurrentUpdate:
                continue
        raise ConcurrentUpdate(f"run {run_id} kept changing; modify_run gave up")

    @abc.abstractmethod
    def count_runs_by_state(self) -> dict[str, int]: ...

    def rule_durations(self, run_id: str) -> dict[str, RuleDurations]:
        """Per rule: how many of the run's jobs are done and their summed wall time."""
        return {
            rule: {"count": int(n), "seconds": round(float(total), 3)}
            for rule, (n, total) in self._done_durations(run_id).items()
            if rule
        }

    @abc.abstractmethod
    def _done_durations(self, run_id: str) -> dict[str, tuple[int, float]]:
        """``{rule: (count, summed duration)}`` over the run's done jobs with a duration."""

    # -- jobs and events ------------------------------------------------------------------------
    @abc.abstractmethod
    def get_job(self, run_id: str, jobid: str) -> JobDoc | None: ...

    def list_jobs(
        self,
        run_id: str,
        filters: JobFilter,
        *,
        sort: str = "jobid",
        page_size: int = 100,
        page_token: str | None = None,
    ) -> Page[JobDoc]:
        order = job_order(sort)
        return paginate(
            order,
            page_size=page_size,
            page_token=page_token,
            fetch=lambda after, limit: self._fetch_jobs(run_id, filters, order, after, limit),
            count=lambda: self._count_job_docs(run_id, filters),
        )

    @abc.abstractmethod
    def list_events(self, run_id: str, *, after_seq: int = 0, limit: int = 1000) -> list[Envelope]:
        """Events of a run with ``seq > after_seq``, in seq order."""

    @abc.abstractmethod
    def count_events(self) -> int: ...

    # -- listing primitives (backends translate the order into their query language) ------------
    @abc.abstractmethod
    def _fetch_runs(
        self, filters: RunFilter, after: Sequence[Any] | None, limit: int
    ) -> list[RunDoc]:
        """Up to ``limit`` runs matching ``filters`` in :data:`RUN_ORDER`, after ``after``."""

    @abc.abstractmethod
    def _count_runs(self, filters: RunFilter) -> int: ...

    @abc.abstractmethod
    def _fetch_jobs(
        self,
        run_id: str,
        filters: JobFilter,
        order: KeyOrder,
        after: Sequence[Any] | None,
        limit: int,
    ) -> list[JobDoc]: ...

    @abc.abstractmethod
    def _count_job_docs(self, run_id: str, filters: JobFilter) -> int: ...

    # -- projection primitives (backends implement, :meth:`persist` orchestrates) ---------------
    @abc.abstractmethod
    def _insert_events(self, events: Sequence[Envelope]) -> None:
        """Insert events keyed by ``(run_id, seq)``; silently skip ones already stored."""

    @abc.abstractmethod
    def _load_run_for_update(self, run_id: str) -> RunDoc | None:
        """The run document including its ``_rev`` (optimistic-concurrency revision)."""

    @abc.abstractmethod
    def _save_run(self, doc: RunDoc, expected_rev: int | None) -> None:
        """Write the whole run document if its revision is still ``expected_rev`` (``None``:
        must not exist yet), bumping ``_rev``; else raise :class:`ConcurrentUpdate`."""

    @abc.abstractmethod
    def _existing_runs(self, run_ids: Iterable[str]) -> set[str]:
        """Which of these runs exist."""

    @abc.abstractmethod
    def _load_jobs(self, run_id: str, jobids: Iterable[str]) -> dict[str, JobDoc]:
        """Job documents by jobid, each with its ``_rev`` (public reads hide job revisions)."""

    @abc.abstractmethod
    def _save_jobs(self, docs: Sequence[JobDoc]) -> None:
        """Write whole job documents keyed by ``(run_id, jobid)``: a doc without ``_rev`` must
        not exist yet, one with ``_rev`` must still have it. Every write that can go through
        does; then raise :class:`ConcurrentUpdate` if any could not (two consumers folding the
        same job), so :meth:`persist` re-reads and folds again."""

    @abc.abstractmethod
    def _open_jobs(self, run_id: str) -> list[JobDoc]:
        """Jobs of the run in an open state (pending/running), with their ``_rev``."""

    @abc.abstractmethod
    def _count_jobs(self, run_id: str) -> dict[str | None, dict[str, int]]:
        """``{rule: {state: count}}`` over the run's job documents (rule ``None``: not known
        yet, its ``job_info`` has not arrived)."""

    # -- the projection -------------------------------------------------------------------------
    def persist(self, events: Sequence[Envelope], *, recount: bool = False) -> PersistResult:
        """Store events and fold them into runs and jobs, idempotently and in any order.

        Events of a run that does not exist are left out (see :attr:`PersistResult.unknown_runs`)
        unless the batch holds the run's registration (a hand-run's first ``run_state``).
        ``recount`` recomputes the runs' job counts from their jobs (a redelivered batch)."""
        result = PersistResult()
        if not events:
            return result
        by_run = projection.group_by_run(events)
        exists = self._existing_runs(by_run)
        for run_id, run_events in list(by_run.items()):
            if run_id not in exists and not any(projection.registers_run(e) for e in run_events):
                result.unknown_runs.add(run_id)
                del by_run[run_id]
        kept = [e for run_events in by_run.values() for e in run_events]
        if not kept:
            return result
        self._insert_events(kept)
        result.events = kept
        for run_id, run_events in by_run.items():
            again = recount
            for attempt in range(MAX_CAS_RETRIES):
                try:
                    run, jobs = self._persist_run(run_id, run_events, recount=again)
                    break
                except ConcurrentUpdate:
                    if attempt == MAX_CAS_RETRIES - 1:
                        raise
                    again = True  # a concurrent writer may have left our increments half-done
            result.runs.append(run)
            result.jobs.extend(jobs)
        return result

    def _persist_run(
        self, run_id: str, events: list[Envelope], *, recount: bool
    ) -> tuple[RunDoc, list[JobDoc]]:
        current = self._load_run_for_update(run_id)
        rev = None if current is None else int(current.get("_rev") or 0)
        run: RunDoc = dict(current) if current is not None else projection.new_run(run_id)  # type: ignore[assignment]
        recount = recount or "counts" not in run  # a run written before counts were kept
        was_closed = projection.settled_seq(run)
        for event in events:
            projection.fold_run(run, event)
        closed_seq = projection.settled_seq(run)  # the latest end of any attempt

        wanted: dict[str, list[Envelope]] = {}
        for event in events:
            for jid in projection.job_ids(event):
                wanted.setdefault(jid, []).append(event)
        existing = self._load_jobs(run_id, wanted) if wanted else {}
        changed: dict[str, JobDoc] = {}
        counts = projection.Counts(run)
        for jid, job_events in wanted.items():
            before = existing.get(jid)
            job = dict(before) if before is not None else projection.new_job(run_id, jid)
            for event in job_events:
                projection.fold_job(job, event, closed_seq)  # type: ignore[arg-type]
            counts.move(before, job)  # type: ignore[arg-type]
            changed[jid] = job  # type: ignore[assignment]
        just_closed = closed_seq is not None and was_closed != closed_seq
        if closed_seq is not None and (just_closed or recount):
            # Jobs whose every event came before the end, left open by it (changed ones were
            # settled as they were folded).
            for job in self._open_jobs(run_id):
                jid = str(job["jobid"])
                if jid in changed:
                    continue
                before_settling = dict(job)
                projection.settle_job(job, closed_seq)
                if job["state"] != before_settling["state"]:
                    counts.move(before_settling, job)  # type: ignore[arg-type]
                    changed[jid] = job
        if changed:
            self._save_jobs(list(changed.values()))
        if recount or just_closed:
            counts.reset(self._count_jobs(run_id))
        if closed_seq is not None and (just_closed or recount or changed):
            # What later runs of the workflow estimate their time from; a job event arriving
            # after the end (delivery order is free) updates it again.
            run["rule_durations"] = self.rule_durations(run_id)
        counts.store()
        projection.summarize(run)
        self._save_run(run, rev)
        return run, list(changed.values())
