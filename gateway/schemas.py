"""Request and response bodies of REST v1, defined once: requests are validated with these models
and the OpenAPI document is generated from them (:mod:`gateway.openapi`), so docs cannot drift."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from snakedeck.envelope import MAX_SEQ
from snakedeck.filekinds import KINDS
from snakedeck.notify import MAX_TARGETS, NotifyTarget
from snakedeck.paging import MAX_PAGE_SIZE
from snakedeck.run_inputs import FILE_ID_RE
from snakedeck.service import MAX_EVENTS_LIMIT, MAX_LOG_READ, MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS
from snakedeck.states import JobState, RunState

RunStateName = Literal[tuple(s.value for s in RunState)]  # type: ignore[valid-type]
JobStateName = Literal[tuple(s.value for s in JobState)]  # type: ignore[valid-type]
FileKind = Literal[KINDS]  # type: ignore[valid-type]


def _tag_map(schema: dict[str, Any]) -> None:
    """Tags as JSON Schema says them exactly: pydantic would write the key pattern as
    ``patternProperties``, which lets keys that do not match through with any value."""
    schema.pop("patternProperties", None)
    schema["propertyNames"] = {
        "pattern": r"^[A-Za-z0-9._-]+$",
        "minLength": 1,
        "maxLength": MAX_TAG_KEY,
    }
    schema["additionalProperties"] = {"type": "string", "maxLength": MAX_TAG_VALUE}


PAGE_TOKEN = Field(
    default=None,
    pattern=r"^[A-Za-z0-9_-]+$",
    max_length=2048,
    description="Opaque: the `next_page_token` of the previous page, as the server gave it.",
)
FILE_ID_PATTERN = FILE_ID_RE.pattern
TagKey = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+$", min_length=1, max_length=MAX_TAG_KEY)
]
TagValue = Annotated[str, StringConstraints(max_length=MAX_TAG_VALUE)]
FileId = Annotated[str, StringConstraints(pattern=FILE_ID_PATTERN)]
InputName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


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
    inputs: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Declared inputs: name, description, required, kinds, formats, and for "
        "sample sheets a `table` schema (columns with type, required, pattern, file kinds).",
    )
    results: list[dict[str, Any]] = Field(default_factory=list)
    executor: str | None = Field(
        default=None,
        description="The Snakemake executor its runs ask for (e.g. `slurm`); a runner's "
        "`SNAKEDECK_EXECUTOR` wins. `null`: the runner's.",
    )
    requires: list[str] = Field(default_factory=list, description="Programs it needs on PATH.")
    available: bool = True
    unavailable_reason: str | None = None


class WorkflowList(Open):
    workflows: list[Workflow]


# -- runs ---------------------------------------------------------------------------------------
class SubmitRun(Strict):
    workflow: str = Field(min_length=1, max_length=128, description="A registered workflow.")
    config: dict[str, Any] = Field(
        default_factory=dict, description="Overrides, merged on top of `config_file`."
    )
    config_file: str | None = Field(
        default=None,
        pattern=FILE_ID_PATTERN,
        description="A registered config file (kind `config`, YAML or JSON) the run starts from.",
    )
    inputs: dict[InputName, FileId] = Field(
        default_factory=dict,
        max_length=64,
        description="Declared input name → registered file id. Problems are 422 with "
        "`errors[].field` like `inputs.reads` or `inputs.samples.row 3.fastq1` (sheet rows "
        "numbered as a spreadsheet shows them, the header being row 1).",
    )
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=MAX_TAGS, json_schema_extra=lambda s: _tag_map(s)
    )
    notify: list[NotifyTarget] = Field(
        default_factory=list,
        max_length=MAX_TARGETS,
        description="Where to send the run's notifications (webhooks, Slack, e-mail), besides "
        "the server's own targets. Each URL must be one the server may reach (no private "
        "address unless the server allows it); problems are 422 naming `notify.N.field`.",
    )


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


class RunAttempt(Open):
    """One execution of the run: the first, and one more per resume."""

    attempt: int
    state: RunStateName
    reason: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    requested_at: str | None = Field(default=None, description="For a resume: when asked.")
    requested_by: str | None = None
    runner: str | None = None


class Eta(Open):
    """An estimate of when an active run ends."""

    seconds_remaining: float
    estimated_end: str = Field(description="ISO 8601, UTC.")
    basis: str = Field(description="What the estimate assumes and is based on.")


class Run(RunSummary):
    attempt: int | None = Field(default=None, description="The current attempt.")
    attempts: list[RunAttempt] | None = None
    runner: str | None = Field(default=None, description="The runner holding its directory.")
    eta: Eta | None = Field(default=None, description="While RUNNING: an estimate, with basis.")
    resource_series: dict[str, Any] | None = Field(
        default=None,
        description="`{width, points: [[epoch seconds, peak CPU %, peak RSS bytes], …]}`: the "
        "run's processes, one point per `width` seconds.",
    )
    config: dict[str, Any] | None = Field(default=None, description="The merged config.")
    inputs: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Input name → `{file_id, sha256, name, kind, format, size}`."
    )
    config_file: dict[str, Any] | None = None
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
    user: str | None = Field(
        default=None, description="Runs submitted by this token name (`local` without tokens)."
    )
    page_size: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    page_token: str | None = PAGE_TOKEN


# -- files --------------------------------------------------------------------------------------
class FileTable(Open):
    format: str
    columns: list[str]
    rows: int
    preview: list[dict[str, Any]] = Field(description="The first rows, `{column: cell}`.")


class File(Open):
    file_id: str
    name: str = Field(description="The client's file name: display metadata, never a path.")
    kind: FileKind
    format: str
    size: int
    sha256: str
    created: str
    tags: dict[str, str] = Field(default_factory=dict)
    workflow: str | None = None
    source: Literal["upload", "url"] | None = None
    url: str | None = None
    table: FileTable | None = Field(
        default=None, description="For sample sheets and info tables (CSV, TSV, XLSX)."
    )


class FileList(Open):
    files: list[File]
    next_page_token: str | None
    total: int


class FileListQuery(Query):
    kind: FileKind | None = None
    tag: str | None = Field(default=None, description="`key` or `key=value`.")
    q: str | None = Field(default=None, description="Free text over id, name, kind and tags.")
    workflow: str | None = Field(default=None, description="Files registered for a workflow.")
    page_size: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    page_token: str | None = PAGE_TOKEN


class FileFromUrl(Strict):
    url: str = Field(min_length=1, max_length=2048, description="http or https.")
    name: str | None = Field(
        default=None, max_length=255, description="Display name (default: the URL's last part)."
    )
    kind: FileKind | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    workflow: str | None = Field(default=None, max_length=128)


FILE_UPLOAD: dict[str, Any] = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "tags": {
            "type": "string",
            "pattern": r"^\s*([A-Za-z0-9._-]{1,64}\s*=[^\r\n]{0,256})?$",
            "description": "`key=value` (repeat the part for more); a JSON object of strings "
            "is taken too.",
        },
        "workflow": {"type": "string", "description": "The workflow the file is for."},
    },
}
"""The multipart form of ``POST /files`` (documented only: the view streams it)."""


# -- jobs ---------------------------------------------------------------------------------------
class JobFailure(Open):
    """Why the job failed, from what Snakemake printed for it."""

    exit_code: int | None = Field(default=None, description="The command's exit status.")
    signal: int | None = None
    message: str
    text: str = Field(description="Its stderr and traceback as Snakemake printed them.")
    text_shared: bool = Field(
        default=False, description="Other jobs ran meanwhile: some lines may be theirs."
    )
    truncated: bool = False
    logs: list[dict[str, Any]] = Field(
        default_factory=list, description="`{path, tail}` of its declared logs as it failed."
    )


class ResourcesUsed(Open):
    """What the job's processes used, as the runner measured them."""

    cpu_seconds: float | None = None
    peak_rss_bytes: int | None = None
    wall_seconds: float | None = None
    basis: str | None = None


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
    failure: JobFailure | None = Field(default=None, description="Present while it failed.")
    resources: dict[str, Any] | None = Field(default=None, description="What it requested.")
    resources_used: ResourcesUsed | None = None
    cluster_job_id: str | None = Field(
        default=None, description="The job's id on the cluster scheduler (SLURM jobid)."
    )
    scheduler: str | None = Field(default=None, description="Which scheduler, e.g. `slurm`.")
    partition: str | None = Field(default=None, description="The cluster partition it ran in.")
    node: str | None = Field(default=None, description="The cluster node(s) it ran on.")
    cluster_state: str | None = Field(
        default=None, description="The scheduler's state of it, e.g. `COMPLETED`."
    )
    cluster_reason: str | None = Field(
        default=None, description="The scheduler's reason, where it gives one."
    )


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
    page_token: str | None = PAGE_TOKEN


class LogFile(Open):
    path: str = Field(description="As the job declared it, relative to the run's work dir.")
    stream: str | None = Field(
        default=None, description="Its log stream: follow it with `GET /runs/{id}/log?stream=`."
    )
    exists: bool
    size: int
    truncated: bool = Field(description="Only the tail is returned when the file is large.")
    content: str
    error: str | None = None


class JobLog(Open):
    run_id: str
    jobid: str
    attempt: int | None = None
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
    after_seq: int = Field(default=0, ge=0, le=MAX_SEQ)
    limit: int = Field(default=1000, ge=1, le=MAX_EVENTS_LIMIT)


# -- health -------------------------------------------------------------------------------------
class Health(Open):
    status: str


class RunnerStatus(Open):
    runner_id: str
    host: str
    state: Literal["live", "lost"]
    seconds_since_heartbeat: float
    runs: list[str]
    max_runs: int = 0


class Readiness(Open):
    status: str
    checks: dict[str, str]
    runners: list[RunnerStatus] = Field(default_factory=list)


# -- dead letters -------------------------------------------------------------------------------
class DeadLetter(Open):
    """A message no part of snakedeck could use, filed with the reason."""

    reason: str = Field(description="Why it was dead-lettered, as the part that refused it said.")
    queue: str = Field(
        description="Where it was taken from: `persist`, `runs`, `control` or `updates`."
    )
    routing_key: str
    message_id: str | None = None
    dead_at: str = Field(description="When it was filed (ISO 8601, UTC); empty if unknown.")
    size: int = Field(description="The body's size in bytes.")
    preview: str = Field(description="The body's first 300 bytes, as text.")


class DeadLetterList(Open):
    dead_letters: list[DeadLetter] = Field(description="The oldest first; reading removes none.")
    total: int = Field(description="How many dead letters are waiting, listed or not.")


class DeadLettersQuery(Query):
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)


class ReplayDeadLetters(Strict):
    limit: int | None = Field(
        default=None,
        ge=1,
        le=2**31,
        description="Replay at most this many, oldest first; all if absent.",
    )


class DeadLettersReplayed(Open):
    replayed: int = Field(description="How many went back to the queue they came from.")


class DeadLettersPurged(Open):
    purged: int = Field(description="How many were deleted.")


# -- the audit trail ----------------------------------------------------------------------------
class AuditEntry(Open):
    audit_id: str
    at: str = Field(description="When (ISO 8601, UTC).")
    actor: str = Field(description="The token's name (`local` when no token is configured).")
    role: str
    action: str = Field(description="E.g. `run.submit`, `run.cancel`, `file.upload`.")
    target: str | None = Field(default=None, description="A run id, file id or token name.")
    source: str | None = Field(default=None, description="The client's address.")
    result: Literal["ok", "refused", "failed"]
    status: int = Field(description="The HTTP status the outcome has in this API.")
    detail: str | None = None


class AuditList(Open):
    entries: list[AuditEntry]
    next_page_token: str | None
    total: int


class AuditQuery(Query):
    actor: str | None = None
    action: str | None = Field(default=None, description="Exact, or a prefix ending in `.`.")
    target: str | None = None
    page_size: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    page_token: str | None = PAGE_TOKEN


# -- notifications ------------------------------------------------------------------------------
class NotifyTargetShown(Open):
    target_id: str = Field(description="Stable per URL and format; the log names it.")
    url: str = Field(description="Cut to the site (no query; a Slack URL's path hidden).")
    format: Literal["json", "slack", "email"]
    events: list[Literal["state", "job_failed"]]
    signed: bool = Field(description="Whether bodies are signed (the secret is never shown).")
    default: bool = Field(default=False, description="One of the server's own targets.")


class DeliveryEntry(Open):
    delivery_id: str
    run_id: str
    key: str = Field(description="The idempotency key (`run_id:seq`), as `Idempotency-Key`.")
    event: Literal["state", "job_failed"]
    state: str | None = None
    target: NotifyTargetShown
    target_id: str
    attempt: int = Field(description="1 for the first attempt of this key to this target.")
    at: str = Field(description="When (ISO 8601, UTC).")
    outcome: Literal["delivered", "failed", "gave_up"] = Field(
        description="`failed`: retried later; `gave_up`: the last attempt, or a final refusal."
    )
    status: int | None = Field(default=None, description="The receiver's HTTP status.")
    error: str = ""


class DeliveryList(Open):
    targets: list[NotifyTargetShown]
    deliveries: list[DeliveryEntry]
    next_page_token: str | None
    total: int


class DeliveriesQuery(Query):
    page_size: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    page_token: str | None = PAGE_TOKEN


# -- run artefacts: logs, outputs, report, resume -------------------------------------------------
class JobLogQuery(Query):
    attempt: int | None = Field(default=None, ge=1, description="Default: the latest attempt.")


class RunLogQuery(Query):
    stream: str = Field(
        default="snakemake",
        max_length=600,
        description="`snakemake` (its stdout and stderr), or `job/<jobid>/<attempt>/<path>`.",
    )
    offset: int = Field(default=0, ge=0, description="Byte offset to read from.")
    limit: int = Field(default=256 * 1024, ge=1, le=MAX_LOG_READ)
    tail: int | None = Field(
        default=None, ge=1, le=MAX_LOG_READ, description="Read the last N bytes instead."
    )


class RunLog(Open):
    """A piece of one of the run's logs, as the runner stored it."""

    run_id: str
    stream: str
    offset: int = Field(description="Where `text` starts.")
    next_offset: int = Field(description="Ask from here for what follows.")
    size: int = Field(description="Bytes the stream has so far.")
    start: int = Field(description="The first byte still kept (older ones went past the cap).")
    missed: int = Field(description="Bytes asked for that were no longer kept.")
    text: str
    state: RunStateName | None = None


class Output(Open):
    path: str = Field(description="Relative to the run's work directory (a key, not a path).")
    kind: Literal["table", "text", "image", "vcf", "html", "other"]
    description: str | None = None
    size: int
    sha256: str
    stored_at: str
    jobid: str | None = Field(default=None, description="The job that wrote it, if known.")


class OutputList(Open):
    run_id: str
    outputs: list[Output]
    report: Output | None = Field(default=None, description="Snakemake's HTML report.")


class OutputQuery(Query):
    disposition: Literal["attachment", "inline"] = Field(
        default="attachment",
        description="`inline` for a browser preview (served sandboxed, never as active content "
        "of this site).",
    )


class ResumeAccepted(Open):
    run_id: str
    state: RunStateName
    attempt: int
    runner: str = Field(description="The runner that holds the run's directory.")
