"""The one service layer: every business rule the REST handlers and the Dash callbacks share.

Views only translate HTTP (or Dash) to these calls and the typed errors below back to problem
details (or messages). Nothing here knows about Flask.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from snakedeck import envelope, messages, projection
from snakedeck.bus.base import Bus, BusError
from snakedeck.settings import Settings
from snakedeck.states import TERMINAL_RUN_STATES, JobState, RunState
from snakedeck.store.base import (
    JOB_SORTS,
    BadPageToken,
    JobFilter,
    Page,
    RunExists,
    RunFilter,
    Store,
    StoreError,
)

Doc = dict[str, Any]

MAX_PAGE_SIZE = 500
MAX_EVENTS_LIMIT = 5000
LOG_TAIL_BYTES = 64 * 1024
MAX_TAGS = 32
MAX_TAG_KEY = 64
MAX_TAG_VALUE = 256


# -- errors -------------------------------------------------------------------------------------
class ServiceError(Exception):
    """A request the service refuses; ``status``/``title`` map it onto a problem document."""

    status = 500
    title = "Internal error"
    slug = "internal"

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(ServiceError):
    status, title, slug = 404, "Not found", "not-found"


class Invalid(ServiceError):
    """The request names something wrong; ``errors`` lists ``{field, message}``."""

    status, title, slug = 422, "Invalid request", "validation-error"


class Conflict(ServiceError):
    status, title, slug = 409, "Conflict", "conflict"


class Unavailable(ServiceError):
    status, title, slug = 503, "Service unavailable", "unavailable"


def invalid(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", [{"field": field, "message": message}])


# -- run ids ------------------------------------------------------------------------------------
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford: no i, l, o, u


def new_run_id(now: float | None = None) -> str:
    """10 chars of milliseconds (sortable) + 8 random chars, all lowercase alphanumeric."""
    millis = int((time.time() if now is None else now) * 1000)
    head = "".join(_B32[(millis >> (5 * i)) & 31] for i in reversed(range(10)))
    rand = int.from_bytes(secrets.token_bytes(5))
    tail = "".join(_B32[(rand >> (5 * i)) & 31] for i in reversed(range(8)))
    return head + tail


# -- helpers ------------------------------------------------------------------------------------
def public(doc: Mapping[str, Any]) -> Doc:
    """Drop storage internals (``_id``, ``_rev``) before a document leaves the service."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _workflow_doc(wf: Any) -> Doc:
    if isinstance(wf, Mapping):
        doc = dict(wf)
    elif hasattr(wf, "to_dict"):
        doc = dict(wf.to_dict())
    elif hasattr(wf, "model_dump"):
        doc = dict(wf.model_dump())
    elif dataclasses.is_dataclass(wf):
        doc = dataclasses.asdict(wf)  # type: ignore[arg-type]
    else:
        doc = dict(vars(wf))
    out = {
        "name": doc.get("name"),
        "version": str(doc.get("version") or ""),
        "description": doc.get("description") or "",
        "config_schema": doc.get("config_schema") or {},
        "inputs": doc.get("inputs") or [],
    }
    return out


def _check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise invalid("page_size", f"must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")


def _check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise invalid("tags", f"at most {MAX_TAGS} tags")
    clean: dict[str, str] = {}
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_KEY or not all(c.isalnum() or c in "-_." for c in key):
            raise invalid(
                f"tags.{key}",
                f"tag names use letters, digits, '-', '_', '.' (1-{MAX_TAG_KEY} chars)",
            )
        if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
            raise invalid(f"tags.{key}", f"must be a string of at most {MAX_TAG_VALUE} chars")
        clean[key] = value
    return clean


def _check_inputs(inputs: list[Any]) -> list[Doc]:
    """Inputs name registered files; paths are the files module's business, never a client's."""
    clean: list[Doc] = []
    for i, item in enumerate(inputs):
        if not isinstance(item, Mapping) or not isinstance(item.get("file_id"), str):
            raise invalid(f"inputs.{i}.file_id", "each input needs a file_id string")
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            raise invalid(f"inputs.{i}.name", "must be a string")
        clean.append({"file_id": item["file_id"], "name": name})
    return clean


def _log_paths(value: Any) -> list[str]:
    """A job's ``log`` is a list or (named logs) a mapping of paths."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        return [p for v in value for p in _log_paths(v)]
    return []


class Service:
    """Runs, jobs, events and workflows as the API and the dashboard see them."""

    def __init__(self, settings: Settings, store: Store, bus: Bus, registry: Any) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.registry = registry

    # -- workflows ------------------------------------------------------------------------------
    def list_workflows(self) -> list[Doc]:
        return [_workflow_doc(wf) for wf in self.registry.list()]

    def get_workflow(self, name: str) -> Doc:
        from snakedeck.workflows import UnknownWorkflow

        try:
            return _workflow_doc(self.registry.get(name))
        except UnknownWorkflow:
            raise NotFound(f"no workflow named {name!r} is registered") from None

    # -- runs -----------------------------------------------------------------------------------
    def submit_run(
        self,
        workflow: str,
        config: Mapping[str, Any] | None = None,
        inputs: list[Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        user: str | None = None,
        *,
        rerun_of: str | None = None,
    ) -> Doc:
        """Validate, store as QUEUED, then enqueue; a bus failure leaves a SYSTEM_ERROR run."""
        from snakedeck.workflows import ConfigInvalid, UnknownWorkflow

        config = dict(config or {})
        try:
            wf = _workflow_doc(self.registry.get(workflow))
        except UnknownWorkflow:
            raise invalid("workflow", f"no workflow named {workflow!r} is registered") from None
        try:
            self.registry.validate_config(workflow, config)
        except ConfigInvalid as exc:
            errors = [
                {
                    "field": _config_field(str(e.get("field", ""))),
                    "message": str(e.get("message", "")),
                }
                for e in getattr(exc, "errors", [])
            ] or [{"field": "config", "message": str(exc)}]
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            raise Invalid(
                f"config does not match workflow {workflow!r}: {detail}", errors
            ) from None
        clean_inputs = _check_inputs(list(inputs or []))
        clean_tags = _check_tags(dict(tags or {}))

        run_id = new_run_id()
        run = projection.new_run(run_id)
        run.update(
            workflow=workflow,
            workflow_version=wf["version"],
            config=config,
            inputs=clean_inputs,
            tags=clean_tags,
            user=user,
            submitted_at=envelope.now_iso(),
        )
        if rerun_of:
            run["rerun_of"] = rerun_of
        try:
            self.store.create_run(run)
        except RunExists:  # a random collision within one millisecond: just try again
            return self.submit_run(workflow, config, inputs, tags, user, rerun_of=rerun_of)
        except StoreError as exc:
            raise Unavailable(f"the run store is unavailable: {exc}") from None

        command: messages.SubmitCommand = {
            "run_id": run_id,
            "workflow": workflow,
            "config": config,
            "inputs": clean_inputs,
            "tags": clean_tags,
        }
        try:
            self.bus.submit_run(dict(command))
        except BusError as exc:
            reason = f"could not enqueue the run: the message bus is unavailable ({exc})"
            self.store.update_run(
                run_id,
                {
                    "state": RunState.SYSTEM_ERROR.value,
                    "state_reason": reason,
                    "finished_at": envelope.now_iso(),
                },
                only_states=[RunState.QUEUED.value],
            )
            raise Unavailable(f"run {run_id} was not started: {reason}") from None
        return {"run_id": run_id, "state": RunState.QUEUED.value}

    def get_run(self, run_id: str) -> Doc:
        """The whole run document, with ``progress`` and per-rule ``rule_counts``."""
        run = self._run(run_id)
        return public(run)

    def list_runs(
        self,
        *,
        state: str | None = None,
        workflow: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        page_size: int = 50,
        page_token: str | None = None,
    ) -> Doc:
        if state is not None and state not in RunState.__members__:
            raise invalid("state", f"{state!r} is not a run state ({', '.join(RunState)})")
        _check_page_size(page_size)
        page = self._page(
            lambda: self.store.list_runs(
                RunFilter(state=state, workflow=workflow, tag=tag, q=q),
                page_size=page_size,
                page_token=page_token,
            )
        )
        return {
            "runs": [projection.run_summary(r) for r in page.items],
            "next_page_token": page.next_page_token,
            "total": page.total,
        }

    def cancel_run(self, run_id: str, user: str | None = None) -> Doc:
        """Ask the runner to stop a run; a finished run cannot be cancelled (Conflict)."""
        run = self._run(run_id)
        state = run.get("state")
        if state in TERMINAL_RUN_STATES:
            raise Conflict(f"run {run_id} already ended in state {state}; nothing to cancel")
        changed = self.store.update_run(
            run_id,
            {
                "cancel_requested": True,
                "cancel_requested_at": envelope.now_iso(),
                "cancel_requested_by": user,
            },
            only_states=[s.value for s in RunState if s not in TERMINAL_RUN_STATES],
        )
        if not changed:  # it ended between our read and our write
            now = self._run(run_id).get("state")
            raise Conflict(f"run {run_id} already ended in state {now}; nothing to cancel")
        try:
            self.bus.send_control(dict(messages.cancel(run_id)))
        except BusError as exc:
            raise Unavailable(
                f"could not send the cancel request for run {run_id}: {exc}"
            ) from None
        return {"run_id": run_id, "state": state, "cancel_requested": True}

    def rerun_run(self, run_id: str, user: str | None = None) -> Doc:
        """A new run with the old one's workflow, config, inputs and tags."""
        old = self._run(run_id)
        if not old.get("workflow"):
            raise Conflict(f"run {run_id} names no registered workflow, so it cannot be rerun")
        return self.submit_run(
            old["workflow"],
            old.get("config") or {},
            old.get("inputs") or [],
            old.get("tags") or {},
            user,
            rerun_of=run_id,
        )

    # -- jobs -----------------------------------------------------------------------------------
    def list_jobs(
        self,
        run_id: str,
        *,
        rule: str | None = None,
        state: str | None = None,
        q: str | None = None,
        sort: str = "jobid",
        page_size: int = 100,
        page_token: str | None = None,
    ) -> Doc:
        self._run(run_id)
        if state is not None and state not in {s.value for s in JobState}:
            raise invalid("state", f"{state!r} is not a job state ({', '.join(JobState)})")
        if sort not in JOB_SORTS:
            raise invalid("sort", f"{sort!r} is not one of {', '.join(JOB_SORTS)}")
        _check_page_size(page_size)
        page = self._page(
            lambda: self.store.list_jobs(
                run_id,
                JobFilter(rule=rule, state=state, q=q),
                sort=sort,
                page_size=page_size,
                page_token=page_token,
            )
        )
        return {
            "jobs": [public(j) for j in page.items],
            "next_page_token": page.next_page_token,
            "total": page.total,
        }

    def get_job(self, run_id: str, jobid: str) -> Doc:
        self._run(run_id)
        job = self._call(lambda: self.store.get_job(run_id, str(jobid)))
        if job is None:
            raise NotFound(f"run {run_id} has no job {jobid}")
        return public(job)

    def job_log(self, run_id: str, jobid: str, *, max_bytes: int = LOG_TAIL_BYTES) -> Doc:
        """The tail of each of the job's log files, read only from inside the run's work dir."""
        job = self.get_job(run_id, jobid)
        work = (self.settings.runs_dir / run_id / "work").resolve()
        logs: list[Doc] = []
        for rel in _log_paths(job.get("log")):
            logs.append(self._read_log(work, rel, max_bytes))
        return {"run_id": run_id, "jobid": str(jobid), "logs": logs}

    @staticmethod
    def _read_log(work: Path, rel: str, max_bytes: int) -> Doc:
        entry: Doc = {"path": rel, "exists": False, "size": 0, "truncated": False, "content": ""}
        target = (work / rel).resolve()
        if not target.is_relative_to(work) or os.path.isabs(rel):
            entry["error"] = "outside the run's work directory; not served"
            return entry
        try:
            with target.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > max_bytes:
                    f.seek(size - max_bytes)
                data = f.read(max_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return entry
        except OSError as exc:
            entry["error"] = f"unreadable: {exc.strerror}"
            return entry
        entry.update(
            exists=True,
            size=size,
            truncated=size > max_bytes,
            content=data.decode("utf-8", errors="replace"),
        )
        return entry

    # -- events ---------------------------------------------------------------------------------
    def list_events(self, run_id: str, *, after_seq: int = 0, limit: int = 1000) -> Doc:
        self._run(run_id)
        if after_seq < 0:
            raise invalid("after_seq", f"must be 0 or more, got {after_seq}")
        if not 1 <= limit <= MAX_EVENTS_LIMIT:
            raise invalid("limit", f"must be between 1 and {MAX_EVENTS_LIMIT}, got {limit}")
        events = self._call(
            lambda: self.store.list_events(run_id, after_seq=after_seq, limit=limit)
        )
        events = [public(e) for e in events]
        more = len(events) == limit
        return {"events": events, "next_after_seq": events[-1]["seq"] if more else None}

    # -- health ---------------------------------------------------------------------------------
    def readiness(self) -> dict[str, str]:
        """``{"store": "ok"|error, "bus": "ok"|error}``: what /readyz reports."""
        checks: dict[str, str] = {}
        for name, ping in (("store", self.store.ping), ("bus", self.bus.ping)):
            try:
                ping()
                checks[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                checks[name] = f"{type(exc).__name__}: {exc}"
        return checks

    # -- internals ------------------------------------------------------------------------------
    def _run(self, run_id: str) -> Doc:
        if not envelope.is_valid_run_id(run_id):
            raise NotFound(f"{run_id!r} is not a run id")
        run = self._call(lambda: self.store.get_run(run_id))
        if run is None:
            raise NotFound(f"no run with id {run_id!r}")
        return run

    @staticmethod
    def _call(fn: Any) -> Any:
        try:
            return fn()
        except StoreError as exc:
            raise Unavailable(f"the run store is unavailable: {exc}") from None

    def _page(self, fn: Any) -> Page:
        try:
            return self._call(fn)
        except BadPageToken as exc:
            raise invalid("page_token", str(exc)) from None


def _config_field(field: str) -> str:
    if not field or field == "config":
        return "config"
    return field if field.startswith("config.") else f"config.{field}"
