"""Request and response bodies of REST v1, defined once: requests are validated with these models
and the OpenAPI document is generated from them (:mod:`gateway.openapi`), so docs cannot drift."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from snakedeck.service import MAX_EVENTS_LIMIT, MAX_PAGE_SIZE
from snakedeck.states import JobState, RunState

RunStateName = Literal[tuple(s.value for s in RunState)]  # type: ignore[valid-type]
JobStateName = Literal[tuple(s.value for s in JobState)]  # type: ignore[valid-type]


class Strict(BaseModel):
    """Request models refuse unknown fields, so a typo is named instead of silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query strings ignore parameters they do not know (cache busters, tracking)."""

    model_config = ConfigDict(extra="ignore")


class Open(BaseModel):
    """Response models document the stable fields; documents may carry more."""

    model_config = ConfigDict(extra="allow")


# -- errors -------------------------------------------------------------------------------------
class FieldError(Open):
    field: str = Field(description="Dotted path of the offending field, e.g. `config.samples`.")
    message: str


class Problem(Open):
    """RFC 9457 problem details (media type application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="Present for validation problems: one entry per bad field."
    )


# -- workflows ----------------------------------------------------------------------------------
class Workflow(Open):
    name: str
    version: str
    description: str = ""
    config_schema: dict[str, Any] = Field(
        default_factory=dict, description="JSON Schema the run's `config` must satisfy."
    )
    inputs: list[dict[str, Any]] = Field(default_factory=list)


class WorkflowList(Open):
    workflows: list[Workflow]


# -- runs ---------------------------------------------------------------------------------------
class InputRef(Strict):
    file_id: str = Field(min_length=1, max_length=128, description="A registered file's id.")
    name: str | None = Field(default=None, description="The workflow input it fills.")


class SubmitRun(Strict):
    workflow: str = Field(min_length=1, max_length=128, description="A registered workflow.")
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: list[InputRef | str] = Field(
        default_factory=list, description="Registered files: `{file_id, name}` or a bare file id."
    )
    tags: dict[str, str] = Field(default_factory=dict)


class RunCreated(Open):
    run_id: str
    state: RunStateName


class CancelAccepted(Open):
    run_id: str
    state: RunStateName
    cancel_requested: bool


class Progress(Open):
    total: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0
    cancelled: int = 0


class RunSummary(Open):
    run_id: str
    workflow: str | None = None
    workflow_version: str | None = None
    state: RunStateName
    state_reason: str | None = None
    progress: Progress | None = None
    rule_counts: dict[str, dict[str, int]] | None = Field(
        default=None, description="Per rule: job count by state, plus `total`."
    )
    tags: dict[str, str] | None = None
    user: str | None = None
    submitted_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    last_seq: int | None = None
    exit_code: int | None = None
    rerun_of: str | None = None


class Run(RunSummary):
    config: dict[str, Any] | None = None
    inputs: list[dict[str, Any]] | None = None
    rule_totals: dict[str, int] | None = None
    cancel_requested: bool | None = None
    error: str | None = None


class RunList(Open):
    runs: list[RunSummary]
    next_page_token: str | None
    total: int


class RunListQuery(Query):
    state: RunStateName | None = None
    workflow: str | None = None
    tag: str | None = Field(default=None, description="`key` or `key=value`.")
    q: str | None = Field(default=None, description="Free text over id, workflow and tags.")
    page_size: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    page_token: str | None = None


# -- jobs ---------------------------------------------------------------------------------------
class Job(Open):
    run_id: str
    jobid: str
    rule: str | None = None
    state: JobStateName
    wildcards: dict[str, Any] | list[Any] | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration: float | None = None
    threads: int | None = None
    log: list[Any] | dict[str, Any] | None = None


class JobList(Open):
    jobs: list[Job]
    next_page_token: str | None
    total: int


class JobListQuery(Query):
    rule: str | None = None
    state: JobStateName | None = None
    q: str | None = None
    sort: Literal["jobid", "-jobid", "duration", "-duration", "started_at", "-started_at"] = "jobid"
    page_size: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)
    page_token: str | None = None


class LogFile(Open):
    path: str = Field(description="As the job declared it, relative to the run's work dir.")
    exists: bool
    size: int
    truncated: bool = Field(description="Only the tail is returned when the file is large.")
    content: str
    error: str | None = None


class JobLog(Open):
    run_id: str
    jobid: str
    logs: list[LogFile]


# -- events -------------------------------------------------------------------------------------
class Event(Open):
    """Event envelope v1."""

    v: int
    run_id: str
    seq: int
    type: str
    ts: str
    source: Literal["snakemake", "runner"]
    level: str
    msg: str
    data: dict[str, Any]


class EventList(Open):
    events: list[Event]
    next_after_seq: int | None = Field(
        description="Pass as `after_seq` to read on; null when there were no more."
    )


class EventsQuery(Query):
    after_seq: int = Field(default=0, ge=0)
    limit: int = Field(default=1000, ge=1, le=MAX_EVENTS_LIMIT)


# -- health -------------------------------------------------------------------------------------
class Health(Open):
    status: str


class Readiness(Open):
    status: str
    checks: dict[str, str]
    runners: dict[str, Any] = Field(default_factory=dict)
