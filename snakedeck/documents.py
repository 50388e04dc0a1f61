"""The documents snakedeck stores and serves: runs, jobs and their parts, typed once.

The projection writes them, the stores keep them, the service hands them to the REST API, the
dashboard and the live feed. Storage internals (``_rev``, Mongo's ``_id`` and ``_ix``) start with
an underscore and never leave the service (:func:`public`). Stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from snakedeck.bundles import BundleDoc
from snakedeck.envelope import Envelope


class Progress(TypedDict, total=False):
    """A run's jobs by outcome; ``total`` is what Snakemake planned."""

    total: int
    done: int
    failed: int
    cancelled: int
    not_run: int
    """Planned jobs that never started and never will (the run ended first)."""
    running: int
    pending: int
    """Planned jobs that have not started yet (only while the run is active)."""


RuleCounts = dict[str, int]
"""Job count by job state for one rule, plus ``total``."""


class RunAttempt(TypedDict, total=False):
    """One execution of a run: the first, and one more per resume (same work directory)."""

    attempt: int
    state: str
    reason: str
    started_at: str | None
    """When the attempt reached INITIALIZING (for a resume: when its runner took it up)."""
    finished_at: str | None
    requested_at: str | None
    """For a resume: when it was asked for."""
    requested_by: str | None
    runner: str | None
    host: str | None
    exit_code: int | None
    signal: int | None
    state_seq: int
    closed_seq: int | None
    """Seq of the attempt's terminal ``run_state`` (exactly one per attempt)."""


class ResourceSeries(TypedDict):
    """A run's CPU and memory over time: one point per bucket of ``width`` seconds (the
    width doubles whenever more than the maximum number of points would be needed)."""

    width: float
    points: list[list[float]]
    """``[bucket start (epoch seconds), peak CPU %, peak RSS bytes]``, oldest first."""


class RuleDurations(TypedDict):
    count: int
    seconds: float
    """Summed wall time of the rule's finished jobs."""


class Eta(TypedDict):
    """An estimate of when an active run ends, and what it is based on."""

    seconds_remaining: float
    estimated_end: str
    basis: str


class RunDoc(TypedDict, total=False):
    run_id: str
    workflow: str | None
    workflow_version: str | None
    state: str
    state_reason: str
    state_seq: int
    last_seq: int
    closed_seq: int | None
    exit_code: int | None
    signal: int | None
    progress: Progress
    rule_counts: dict[str, RuleCounts]
    rule_totals: dict[str, int]
    rule_order: list[str]
    """Rules in pipeline order (from the rule graph), for display."""
    tags: dict[str, str]
    user: str | None
    submitted_at: str | None
    initialized_at: str | None
    started_at: str | None
    finished_at: str | None
    config: dict[str, Any]
    cores: int
    """``--cores`` asked for at submit (WES ``workflow_engine_parameters``); absent: the
    runner's ``SNAKEDECK_CORES``."""
    """The merged configuration (config file, then the submitted overrides on top)."""
    inputs: dict[str, RunFileRef]
    """Declared input name → the registered file that fills it."""
    config_file: RunFileRef | None
    file_ids: list[str]
    """Every registered file the run uses (inputs, sheet rows, config file): what a delete of
    a file checks while the run is active."""
    rerun_of: str | None
    workflow_source: str
    """``attachment`` for a private workflow (WES ``workflow_attachment``); absent: the
    registered workflow ``workflow`` names."""
    workflow_bundle: BundleDoc
    """A private workflow's files (relative paths, sha256, sizes) and its Snakefile."""
    hand_run: bool
    cancel_requested: bool
    cancel_requested_at: str | None
    cancel_requested_by: str | None
    rulegraph: Any
    snakemake: dict[str, Any]
    error: str
    counts: dict[str, dict[str, int]]
    """Per rule (``""`` for jobs whose rule is not known yet): job count by state, kept
    incrementally by the projection; ``rule_counts`` and ``progress`` are derived from it."""
    runner: str | None
    """The runner that executes the run (and holds its work directory)."""
    host: str | None
    attempt: int
    """The current attempt (1, and one more per resume)."""
    attempts: list[RunAttempt]
    settled_seq: int | None
    """The highest seq of any attempt's end: jobs left open before it are settled."""
    resource_series: ResourceSeries
    rule_durations: dict[str, RuleDurations]
    """Per rule, the finished jobs' wall time, fixed when the run ends (what the ETA of
    later runs of the workflow is estimated from)."""
    cores: int | None
    """Cores Snakemake was given (its ``resources_info``)."""
    eta: Eta
    """Only in answers about an active run, never stored."""


class JobError(TypedDict, total=False):
    msg: str
    rule_msg: str | None
    aux: Any
    conda_env: Any
    container_img: Any
    log: Any
    input: Any
    output: Any
    shellcmd: Any


class JobFailure(TypedDict, total=False):
    """Why a job failed, as the runner found it in Snakemake's output."""

    exit_code: int | None
    """The command's exit status, where Snakemake reports one (shell jobs)."""
    signal: int | None
    message: str
    """One line: the exception and its message, or Snakemake's error line."""
    text: str
    """What Snakemake printed for the job (its stderr, the traceback), bounded."""
    text_shared: bool
    """Other jobs ran meanwhile: some lines of ``text`` may be theirs."""
    truncated: bool
    logs: list[dict[str, Any]]
    """``{path, tail}`` of each declared log file when the job failed."""
    attempt: int


class JobResources(TypedDict, total=False):
    """What a job used, measured by the runner from its processes."""

    cpu_seconds: float
    peak_rss_bytes: int
    wall_seconds: float | None
    processes: int
    basis: str


class JobDoc(TypedDict, total=False):
    run_id: str
    jobid: str
    jobid_num: int
    rule: str | None
    state: str
    state_seq: int
    info_seq: int
    started_at: str | None
    finished_at: str | None
    duration: float | None
    wildcards: dict[str, Any] | list[Any]
    threads: int | None
    resources: dict[str, Any]
    log: list[Any] | dict[str, Any]
    input: Any
    output: Any
    shellcmd: str | None
    error: JobError
    failure: JobFailure
    """Present while the job's last attempt failed."""
    resources_used: JobResources
    attempt: int
    attempts: list[dict[str, Any]]
    cluster_job_id: str
    """The job's id on the cluster scheduler (SLURM jobid), when an executor plugin ran it."""
    scheduler: str
    partition: str
    node: str
    cluster_state: str
    """The scheduler's state of the cluster job (``COMPLETED``, ``CANCELLED``, …)."""
    cluster_reason: str
    """The scheduler's reason, when it gives one (why a job is pending or failed)."""


class OutputDoc(TypedDict, total=False):
    """A result of a run, stored in the store (its bytes are the blob ``sha256``)."""

    run_id: str
    path: str
    """Relative to the run's work directory: a key, never a server path."""
    kind: str
    """``table``, ``text``, ``image``, ``vcf``, ``html`` or ``other`` (as the workflow
    declares it)."""
    description: str
    size: int
    sha256: str
    stored_at: str
    jobid: str | None
    """The job whose output it is, when it was stored as that job finished."""
    report: bool
    """Snakemake's own HTML report (``--report``) of the run."""


class WorkflowDoc(TypedDict):
    """A registered workflow as the API shows it (no server paths)."""

    name: str
    version: str
    description: str
    config_schema: dict[str, Any]
    inputs: list[dict[str, Any]]
    results: list[dict[str, Any]]
    report: bool
    """Whether a COMPLETE run also gets Snakemake's HTML report."""
    executor: str | None
    """The Snakemake executor its runs ask for (a runner's SNAKEDECK_EXECUTOR wins)."""
    requires: list[str]
    available: bool
    unavailable_reason: str | None
    """Why runs cannot start here, e.g. the programs missing from PATH."""


def public[D: Mapping[str, Any]](doc: D) -> D:
    """The document without storage internals (keys starting with ``_``)."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}  # type: ignore[return-value]


# -- registered files ---------------------------------------------------------------------------
class TableSummary(TypedDict):
    """What a parsed sample sheet or info table looks like (the rows themselves are re-read
    from the file's content when needed, never kept in its document)."""

    format: str
    """``csv``, ``tsv`` or ``xlsx``."""
    columns: list[str]
    rows: int
    preview: list[dict[str, Any]]
    """The first rows, as ``{column: cell}``."""


class FileDoc(TypedDict, total=False):
    """A registered file: its content is a blob in the store, named by ``sha256``. ``name`` is
    the client's file name, kept as metadata only (never a path)."""

    file_id: str
    name: str
    kind: str
    """``fasta``, ``fastq``, ``table``, ``config``, ``text`` or ``other``."""
    format: str
    """What the content is, e.g. ``fasta``, ``fastq.gz``, ``csv``, ``xlsx``, ``yaml``."""
    size: int
    sha256: str
    created: str
    tags: dict[str, str]
    workflow: str | None
    """The workflow the file was registered for (config files), if any."""
    user: str | None
    source: str
    """``upload`` or ``url``."""
    url: str | None
    """For ``source: url``: where it was fetched from (without credentials)."""
    table: TableSummary


class RunFileRef(TypedDict, total=False):
    """How a run records a registered file it uses: enough to check a rerun is exact."""

    file_id: str
    sha256: str
    name: str
    kind: str
    format: str
    size: int
    files: dict[str, RunFileRef]
    """For a sample sheet: the registered files its rows name, by file id."""


# -- access: tokens and the audit trail ---------------------------------------------------------
class TokenDoc(TypedDict, total=False):
    """A named API token as the store keeps it: never the token itself, only its sha256."""

    name: str
    role: str
    """``read``, ``submit`` or ``admin``."""
    sha256: str
    created: str
    created_by: str | None
    revoked_at: str | None
    last_used_at: str | None
    """Updated at most once a minute, so a busy token does not write on every request."""


class AuditDoc(TypedDict, total=False):
    """One entry of the audit trail: who did what to which thing, when, from where, and how it
    ended."""

    audit_id: str
    at: str
    actor: str
    """The principal's name (a token's name; ``local`` when no token is configured)."""
    role: str
    action: str
    """E.g. ``run.submit``, ``run.cancel``, ``file.upload``, ``token.create``."""
    target: str | None
    """What it acted on: a run id, a file id, a token's name."""
    source: str | None
    """Where the request came from (the client address), when known."""
    result: str
    """``ok``, or ``refused`` / ``failed``."""
    status: int
    """The HTTP status the same outcome has in the REST API (200-class when ``ok``)."""
    detail: str | None


__all__ = [
    "AuditDoc",
    "Envelope",
    "Eta",
    "FileDoc",
    "JobDoc",
    "JobError",
    "JobFailure",
    "JobResources",
    "OutputDoc",
    "Progress",
    "ResourceSeries",
    "RuleCounts",
    "RuleDurations",
    "RunAttempt",
    "RunDoc",
    "RunFileRef",
    "TableSummary",
    "TokenDoc",
    "WorkflowDoc",
    "public",
]
