"""GA4GH WES 1.1 over the service: its documents, its request, and the mapping from snakedeck's
runs and jobs onto them, free of any transport.

The gateway's WES blueprint (``gateway/wes``) only reads the HTTP request into a
:class:`RunRequestForm` and writes these models out; every rule (what ``workflow_type``,
``workflow_url``, ``workflow_params`` and ``workflow_engine_parameters`` may be, what a task
is, which runs a list shows) lives here, over the same :class:`~snakedeck.service.Service`
calls REST v1 makes, so roles, ownership, validation and the audit trail are the same.

A WES run is a snakedeck run: ``workflow_type`` ``SMK``, ``workflow_type_version`` the
Snakemake version this server runs, ``workflow_url`` a registered workflow's name (or
``name@version``), ``workflow_params`` its config, with its registered inputs under the key
``inputs`` as file ids (as the runner hands them to the workflow, ``config["inputs"][name]``).
With ``SNAKEDECK_ALLOW_ATTACHMENTS`` on, ``workflow_attachment`` files are the run's private
workflow instead (:mod:`snakedeck.bundles`), and ``workflow_url`` the Snakefile among them.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from snakedeck import bundles, json_limits
from snakedeck.auth import Principal
from snakedeck.cluster import FIELDS as CLUSTER_FIELDS
from snakedeck.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from snakedeck.service.errors import Conflict, NotFound, ServiceError
from snakedeck.states import JobState, RunState
from snakedeck.store.artefacts import REPORT_PATH

if TYPE_CHECKING:
    from snakedeck.service import Service

WES_VERSION: Final = "1.1.0"
WORKFLOW_TYPE: Final = "SMK"
ENGINE: Final = "snakemake"
INPUTS_KEY: Final = "inputs"
"""The key of ``workflow_params`` that maps declared input names to registered file ids."""
ENGINE_PARAMETERS: Final = {"cores": "int"}
"""The ``workflow_engine_parameters`` a request may give (name → type); any other is a 400."""
FORM_FIELDS: Final = frozenset(
    {
        "workflow_params",
        "workflow_type",
        "workflow_type_version",
        "tags",
        "workflow_engine",
        "workflow_engine_version",
        "workflow_engine_parameters",
        "workflow_url",
    }
)
FIELD_LIMITS = json_limits.Limits(max_depth=32, max_string=64 * 1024, max_items=10_000)
"""What a JSON form field may hold (the same bounds as a REST v1 body)."""
STATES: Final = (
    "UNKNOWN",
    "QUEUED",
    "INITIALIZING",
    "RUNNING",
    "PAUSED",
    "COMPLETE",
    "EXECUTOR_ERROR",
    "SYSTEM_ERROR",
    "CANCELED",
    "CANCELING",
    "PREEMPTED",
)
"""WES's ``State`` enum; snakedeck's run states are a subset of it, by the same names."""
SERVICE_ID: Final = "dev.snakedeck.wes"
INT64_MAX: Final = 2**63 - 1
"""``page_size`` is an int64 in the spec; a larger number is malformed, a smaller one above
the server's page limit gets the limit."""


class BadRequest(ServiceError):
    """A WES request the server cannot take (WES has one status for every bad input: 400)."""

    status, title, slug = 400, "Bad request", "bad-request"


def wes_state(state: object) -> str:
    """A snakedeck run state as a WES ``State`` (the same names; anything else UNKNOWN)."""
    return state if isinstance(state, str) and state in RunState.__members__ else "UNKNOWN"


def wes_time(value: object) -> str | None:
    """An ISO 8601 timestamp as WES writes them, ``%Y-%m-%dT%H:%M:%SZ`` (UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.cache
def snakemake_version() -> str:
    return importlib.metadata.version("snakemake")


# --- the spec's documents ---------------------------------------------------------------


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def out(self) -> dict[str, Any]:
        """The JSON document: unset optional fields are left out, never sent as null."""
        return self.model_dump(mode="json", exclude_none=True)


class ErrorResponse(Doc):
    msg: str
    status_code: int


class RunId(Doc):
    run_id: str


class RunStatus(Doc):
    run_id: str
    state: str


class RunSummary(RunStatus):
    start_time: str | None = None
    end_time: str | None = None
    tags: dict[str, str]


class RunListResponse(Doc):
    runs: list[RunSummary]
    next_page_token: str
    """Empty when there are no more runs (as the spec says)."""


class Log(Doc):
    name: str | None = None
    cmd: list[str] | None = None
    start_time: str | None = None
    end_time: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    exit_code: int | None = None
    system_logs: list[str] | None = None


class TaskLog(Log):
    id: str
    name: str
    tes_uri: str | None = None


class TaskListResponse(Doc):
    task_logs: list[TaskLog]
    next_page_token: str


class RunRequest(Doc):
    workflow_params: dict[str, Any] | None = None
    workflow_type: str
    workflow_type_version: str
    tags: dict[str, str] | None = None
    workflow_engine_parameters: dict[str, str] | None = None
    workflow_engine: str | None = None
    workflow_engine_version: str | None = None
    workflow_url: str


class RunLog(Doc):
    run_id: str
    request: RunRequest | None = None
    state: str
    run_log: Log | None = None
    task_logs_url: str
    outputs: dict[str, Any]


class ServiceType(Doc):
    group: str
    artifact: str
    version: str


class Organization(Doc):
    name: str
    url: str


class WorkflowTypeVersion(Doc):
    workflow_type_version: list[str]


class WorkflowEngineVersion(Doc):
    workflow_engine_version: list[str]


class DefaultWorkflowEngineParameter(Doc):
    name: str
    type: str
    default_value: str


class ServiceInfo(Doc):
    """service-info 1.0.0's ``Service`` plus WES's own fields."""

    id: str
    name: str
    type: ServiceType
    description: str
    organization: Organization
    documentationUrl: str  # the spec's (camelCase) name
    version: str
    workflow_type_versions: dict[str, WorkflowTypeVersion]
    supported_wes_versions: list[str]
    supported_filesystem_protocols: list[str]
    workflow_engine_versions: dict[str, WorkflowEngineVersion]
    default_workflow_engine_parameters: list[DefaultWorkflowEngineParameter]
    system_state_counts: dict[str, int]
    auth_instructions_url: str
    tags: dict[str, str]


# --- the request -------------------------------------------------------------------------


@dataclass
class RunRequestForm:
    """``POST /runs`` as the transport read it: each text field once, how many
    ``workflow_attachment`` parts came, and (only when attachments are allowed) their files
    by the part's filename (never read while refused)."""

    fields: dict[str, str] = field(default_factory=dict)
    attachments: int = 0
    files: list[bundles.Attachment] = field(default_factory=list)
    repeated: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Submission:
    workflow: str
    """A registered workflow (``name`` or ``name@version``), or with attachments the
    relative path of the Snakefile among them."""
    config: dict[str, Any]
    inputs: dict[str, str]
    tags: dict[str, str]
    cores: int | None
    attachments: tuple[bundles.Attachment, ...] = ()


@dataclass(frozen=True)
class Links:
    """Absolute URLs of this gateway, for the documents' links (the WES spec wants URLs)."""

    root: str
    """e.g. ``http://127.0.0.1:8000`` (no trailing slash)."""
    api: str = "/api/v1"
    wes: str = "/ga4gh/wes/v1"

    def rest(self, path: str) -> str:
        return f"{self.root}{self.api}{path}"

    def run_log(self, run_id: str) -> str:
        return self.rest(f"/runs/{quote(run_id, safe='')}/log")

    def job_log(self, run_id: str, jobid: str) -> str:
        return self.rest(f"/runs/{quote(run_id, safe='')}/jobs/{quote(jobid, safe='')}/log")

    def output(self, run_id: str, path: str) -> str:
        return self.rest(f"/runs/{quote(run_id, safe='')}/outputs/{quote(path, safe='/')}")

    def report(self, run_id: str) -> str:
        return self.rest(f"/runs/{quote(run_id, safe='')}/report")

    def tasks(self, run_id: str) -> str:
        return f"{self.root}{self.wes}/runs/{quote(run_id, safe='')}/tasks"


def _json_field(form: RunRequestForm, name: str) -> dict[str, Any]:
    raw = form.fields.get(name)
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = json_limits.parse(raw, FIELD_LIMITS)
    except json_limits.JsonLimitError as exc:
        raise BadRequest(f"{name}: {exc}") from None
    except ValueError as exc:
        raise BadRequest(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _string_map(name: str, value: Mapping[str, Any]) -> dict[str, str]:
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    if bad:
        raise BadRequest(f"{name} maps names to strings; {bad[0]!r} is not a string")
    return dict(value)


def _cores(value: object, most: int) -> int:
    text = str(value).strip() if isinstance(value, str | int) else ""
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= most:
        raise BadRequest(
            f"workflow_engine_parameters.cores must be a whole number from 1 to {most} "
            f"(this server's cores per run), got {str(value)[:40]!r}"
        )
    return int(text)


def check_attachments(files: list[bundles.Attachment], *, max_files: int, max_bytes: int) -> None:
    """Names and limits of an attachment bundle (``workflow_url`` is checked with them)."""
    try:
        bundles.check_names(a.name for a in files)
        bundles.check_limits(files, max_files=max_files, max_bytes=max_bytes)
    except bundles.BundleError as exc:
        raise BadRequest(f"workflow_attachment: {exc}") from None


def parse_request(
    form: RunRequestForm,
    *,
    max_cores: int,
    allow_attachments: bool = False,
    max_files: int = 100,
    max_bytes: int = 8 * 1024 * 1024,
) -> Submission:
    """Every check of the WES form that the service does not make itself (400 each). With
    attachments allowed, ``workflow_url`` names the Snakefile among them (default
    ``Snakefile``)."""
    if form.attachments and not allow_attachments:
        raise BadRequest(
            "workflow_attachment is refused: this server runs only registered workflows "
            "(an attachment would be code executed on the server). Name a registered "
            "workflow in workflow_url and give registered files as inputs instead"
        )
    if form.attachments and len(form.files) != form.attachments:
        raise BadRequest(
            "every workflow_attachment part needs a filename (its relative path inside the "
            "workflow, e.g. Snakefile)"
        )
    if form.files:
        check_attachments(form.files, max_files=max_files, max_bytes=max_bytes)
        if not form.fields.get("workflow_url", "").strip():
            form.fields["workflow_url"] = bundles.DEFAULT_ENTRY
    if form.unknown:
        raise BadRequest(
            f"unknown form field {form.unknown[0][:60]!r}; RunWorkflow takes "
            f"{', '.join(sorted(FORM_FIELDS))} (and workflow_attachment)"
        )
    if form.repeated:
        raise BadRequest(f"form field {form.repeated[0]!r} is given more than once")
    fields = form.fields
    if "workflow_type" in fields and fields["workflow_type"] != WORKFLOW_TYPE:
        raise BadRequest(
            f"workflow_type {fields['workflow_type'][:40]!r} is not supported; "
            f"this server runs {WORKFLOW_TYPE} (Snakemake) workflows"
        )
    for required in ("workflow_type", "workflow_type_version", "workflow_url"):
        if not fields.get(required, "").strip():
            raise BadRequest(f"{required} is required")
    version = snakemake_version()
    if fields["workflow_type_version"] != version:
        raise BadRequest(
            f"workflow_type_version {fields['workflow_type_version'][:40]!r} is not "
            f"supported; this server runs Snakemake {version}"
        )
    engine = fields.get("workflow_engine")
    engine_version = fields.get("workflow_engine_version")
    if engine_version is not None and engine is None:
        raise BadRequest("workflow_engine_version needs workflow_engine")
    if engine is not None and engine != ENGINE:
        raise BadRequest(f"workflow_engine {engine[:40]!r} is not supported; use {ENGINE!r}")
    if engine_version is not None and engine_version != version:
        raise BadRequest(
            f"workflow_engine_version {engine_version[:40]!r} is not supported; "
            f"this server runs {ENGINE} {version}"
        )
    params = _json_field(form, "workflow_params")
    inputs = params.pop(INPUTS_KEY, None) or {}
    if not isinstance(inputs, dict):
        raise BadRequest(
            f"workflow_params.{INPUTS_KEY} maps declared input names to registered file ids"
        )
    inputs = _string_map(f"workflow_params.{INPUTS_KEY}", inputs)
    tags = _string_map("tags", _json_field(form, "tags"))
    engine_params = _json_field(form, "workflow_engine_parameters")
    unknown = sorted(set(engine_params) - set(ENGINE_PARAMETERS))
    if unknown:
        raise BadRequest(
            f"workflow_engine_parameters {unknown[0][:60]!r} is not allowed; allowed: "
            f"{', '.join(ENGINE_PARAMETERS)}"
        )
    cores = _cores(engine_params["cores"], max_cores) if "cores" in engine_params else None
    if form.files:
        try:
            entry = bundles.check_entry(fields["workflow_url"], [a.name for a in form.files])
        except bundles.BundleError as exc:
            raise BadRequest(str(exc)) from None
        return Submission(entry, params, inputs, tags, cores, tuple(form.files))
    return Submission(
        workflow=_workflow_name(fields["workflow_url"]),
        config=params,
        inputs=inputs,
        tags=tags,
        cores=cores,
    )


def _workflow_name(url: str) -> str:
    """``name`` or ``name@version`` (the version is checked against the registry later)."""
    if "/" in url or ":" in url:
        raise BadRequest(
            f"workflow_url {url[:80]!r} must name a registered workflow (name or "
            "name@version), not a URL or a path: this server runs only registered workflows"
        )
    return url


# --- the mapping -------------------------------------------------------------------------


def task_name(job: Mapping[str, Any]) -> str:
    """The rule plus its wildcards, e.g. ``count[sample=s1]``."""
    rule = job.get("rule") or f"job {job.get('jobid')}"
    wildcards = job.get("wildcards")
    if isinstance(wildcards, Mapping) and wildcards:
        shown = ", ".join(f"{k}={v}" for k, v in wildcards.items())
    elif isinstance(wildcards, list) and wildcards:
        shown = ", ".join(str(v) for v in wildcards)
    else:
        return str(rule)
    return f"{rule}[{shown}]"


def task_log(job: Mapping[str, Any], links: Links) -> TaskLog:
    """A job as a WES task: its logs are the job log endpoint of REST v1 (stdout and stderr
    alike: Snakemake writes a job's output into the log files it declares)."""
    run_id, jobid = str(job.get("run_id")), str(job.get("jobid"))
    state = job.get("state")
    failure = job.get("failure") or {}
    exit_code = failure.get("exit_code") if isinstance(failure, Mapping) else None
    if state == JobState.DONE:
        exit_code = 0
    system = [f"state: {state}"]
    if isinstance(failure, Mapping) and failure.get("message"):
        system.append(f"failure: {failure['message']}")
    for name in CLUSTER_FIELDS:  # a cluster job: where the scheduler ran it, and its word
        if job.get(name):
            system.append(f"{name}: {job[name]}")
    shellcmd = job.get("shellcmd")
    log_url = links.job_log(run_id, jobid)
    return TaskLog(
        id=jobid,
        name=task_name(job),
        cmd=[shellcmd] if isinstance(shellcmd, str) and shellcmd else None,
        start_time=wes_time(job.get("started_at")),
        end_time=wes_time(job.get("finished_at")),
        stdout=log_url,
        stderr=log_url,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        system_logs=system,
    )


def run_summary(run: Mapping[str, Any]) -> RunSummary:
    return RunSummary(
        run_id=str(run["run_id"]),
        state=wes_state(run.get("state")),
        start_time=wes_time(run.get("started_at")),
        end_time=wes_time(run.get("finished_at")),
        tags=dict(run.get("tags") or {}),
    )


def run_request(run: Mapping[str, Any]) -> RunRequest:
    """What the run was asked to do, as a WES request (also for runs submitted over REST)."""
    params: dict[str, Any] = dict(run.get("config") or {})
    inputs = run.get("inputs")
    if isinstance(inputs, Mapping) and inputs:
        params[INPUTS_KEY] = {name: str(ref.get("file_id")) for name, ref in inputs.items()}
    name = run.get("workflow") or "hand-run"
    version = run.get("workflow_version")
    bundle = run.get("workflow_bundle")
    if bundles.is_private(run) and isinstance(bundle, Mapping):
        name, version = str(bundle.get("entry") or bundles.DEFAULT_ENTRY), None
    cores = run.get("cores")
    return RunRequest(
        workflow_params=params,
        workflow_type=WORKFLOW_TYPE,
        workflow_type_version=snakemake_version(),
        tags=dict(run.get("tags") or {}),
        workflow_engine=ENGINE,
        workflow_engine_parameters={"cores": str(cores)} if isinstance(cores, int) else None,
        workflow_url=f"{name}@{version}" if version else str(name),
    )


def outputs(listing: Mapping[str, Any], links: Links) -> dict[str, Any]:
    """The run's stored results by path, each a CWL-like File with its download URL."""
    run_id = str(listing.get("run_id"))
    found: dict[str, Any] = {}
    for out in listing.get("outputs") or []:
        found[str(out["path"])] = _file(out, links.output(run_id, str(out["path"])))
    report = listing.get("report")
    if report:
        found[str(report.get("path") or REPORT_PATH)] = _file(report, links.report(run_id))
    return found


def _file(out: Mapping[str, Any], url: str) -> dict[str, Any]:
    doc = {"class": "File", "location": url, "size": out.get("size")}
    if out.get("sha256"):
        doc["checksum"] = f"sha256${out['sha256']}"
    if out.get("kind"):
        doc["format"] = out["kind"]
    return doc


def page_size(value: str | None) -> int:
    """The spec's ``page_size``: a whole number from 1; more than the server's limit gets
    the limit (the spec lets a server return fewer)."""
    if value is None or value == "":
        return DEFAULT_PAGE_SIZE
    text = value.strip()
    if not (text.isdigit() or (text.startswith("-") and text[1:].isdigit())):
        raise BadRequest(f"page_size must be a whole number, got {value[:40]!r}")
    if int(text) < 1:
        raise BadRequest(f"page_size must be at least 1, got {text[:40]}")
    if int(text) > INT64_MAX:
        raise BadRequest(f"page_size is an int64, so at most {INT64_MAX}, got {text[:40]}")
    return min(int(text), MAX_PAGE_SIZE)


class Wes:
    """The WES operations, each a :class:`Service` call plus the mapping of its answer."""

    def __init__(self, service: Service, links: Links) -> None:
        self.service = service
        self.links = links

    def service_info(self) -> ServiceInfo:
        version = snakemake_version()
        settings = self.service.settings
        counts = {state: 0 for state in STATES}
        for state in RunState:
            counts[state.value] = int(
                self.service.list_runs(state=state.value, page_size=1)["total"]
            )
        workflows = sorted(w["name"] for w in self.service.list_workflows())
        return ServiceInfo(
            id=SERVICE_ID,
            name="snakedeck WES",
            type=ServiceType(group="org.ga4gh", artifact="wes", version=WES_VERSION),
            description="Registered Snakemake workflows run by snakedeck, through GA4GH WES",
            organization=Organization(name="snakedeck", url=f"{self.links.root}/"),
            documentationUrl=f"{self.links.root}/apidocs/",
            version=_snakedeck_version(),
            workflow_type_versions={
                WORKFLOW_TYPE: WorkflowTypeVersion(workflow_type_version=[version])
            },
            supported_wes_versions=[WES_VERSION],
            supported_filesystem_protocols=["snakedeck-file-id"],
            workflow_engine_versions={
                ENGINE: WorkflowEngineVersion(workflow_engine_version=[version])
            },
            default_workflow_engine_parameters=[
                DefaultWorkflowEngineParameter(
                    name="cores", type="int", default_value=str(settings.cores)
                )
            ],
            system_state_counts=counts,
            auth_instructions_url=f"{self.links.root}/apidocs/",
            tags={
                "workflows": ",".join(workflows),
                "inputs": f"workflow_params.{INPUTS_KEY}: declared input name -> file id "
                "(POST /api/v1/files registers one)",
                "workflow_url": "a registered workflow's name, or name@version"
                + (
                    "; with workflow_attachment, the Snakefile's relative path among them"
                    if settings.allow_attachments
                    else ""
                ),
                "list_filters": "GET /runs also takes state=<State> and tag=key or key=value",
                "max_page_size": str(MAX_PAGE_SIZE),
                "workflow_attachment": (
                    f"accepted: plain files, relative paths, at most "
                    f"{settings.attachment_max_files} files and "
                    f"{settings.attachment_max_bytes} bytes; workflow_url names the "
                    "Snakefile among them (default Snakefile)"
                    if settings.allow_attachments
                    else "refused"
                ),
            },
        )

    def list_runs(
        self,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        page_token: str | None = None,
        state: str | None = None,
        tag: str | None = None,
    ) -> RunListResponse:
        """Newest first (a stable keyset order); ``state`` and ``tag`` as in REST v1."""
        if state is not None and state not in STATES:
            raise BadRequest(f"state {state[:40]!r} is not a WES State ({', '.join(STATES)})")
        if state is not None and state not in RunState.__members__:
            return RunListResponse(runs=[], next_page_token="")  # a state no run here has
        try:
            page = self.service.list_runs(
                state=state, tag=tag or None, page_size=page_size, page_token=page_token or None
            )
        except ServiceError as exc:
            raise _as_bad_request(exc) from None
        return RunListResponse(
            runs=[run_summary(r) for r in page["runs"]],
            next_page_token=page["next_page_token"] or "",
        )

    def submit(self, form: RunRequestForm, *, by: Principal) -> RunId:
        settings = self.service.settings
        wanted = parse_request(
            form,
            max_cores=settings.cores,
            allow_attachments=settings.allow_attachments,
            max_files=settings.attachment_max_files,
            max_bytes=settings.attachment_max_bytes,
        )
        if wanted.attachments:
            try:
                created = self.service.submit_attached_run(
                    wanted.attachments,
                    wanted.workflow,
                    wanted.config,
                    wanted.inputs,
                    wanted.tags,
                    by=by,
                    cores=wanted.cores,
                )
            except ServiceError as exc:
                raise _as_bad_request(exc) from None
            return RunId(run_id=created["run_id"])
        name, _, version = wanted.workflow.partition("@")
        try:
            registered = self.service.get_workflow(name)
        except NotFound:
            raise BadRequest(
                f"workflow_url {wanted.workflow[:80]!r} names no registered workflow "
                "(GET /service-info lists them in tags.workflows)"
            ) from None
        if version and version != registered.get("version"):
            raise BadRequest(
                f"workflow {name!r} is registered at version {registered.get('version')}, "
                f"not {version[:40]!r}"
            )
        try:
            created = self.service.submit_run(
                name, wanted.config, wanted.inputs, wanted.tags, by=by, cores=wanted.cores
            )
        except ServiceError as exc:
            raise _as_bad_request(exc) from None
        return RunId(run_id=created["run_id"])

    def run_log(self, run_id: str) -> RunLog:
        run = self.service.get_run(run_id)
        listing = self.service.list_outputs(run_id)
        log_url = self.links.run_log(run_id)
        system = [str(run["state_reason"])] if run.get("state_reason") else None
        exit_code = run.get("exit_code")
        return RunLog(
            run_id=run_id,
            request=run_request(run),
            state=wes_state(run.get("state")),
            run_log=Log(
                name=str(run.get("workflow") or "hand-run"),
                start_time=wes_time(run.get("started_at")),
                end_time=wes_time(run.get("finished_at")),
                stdout=log_url,
                stderr=log_url,
                exit_code=exit_code if isinstance(exit_code, int) else None,
                system_logs=system,
            ),
            task_logs_url=self.links.tasks(run_id),
            outputs=outputs(listing, self.links),
        )

    def status(self, run_id: str) -> RunStatus:
        run = self.service.get_run(run_id)
        return RunStatus(run_id=run_id, state=wes_state(run.get("state")))

    def tasks(
        self, run_id: str, *, page_size: int = DEFAULT_PAGE_SIZE, page_token: str | None = None
    ) -> TaskListResponse:
        """The run's jobs by job id (the order of ``RunLog``), paginated."""
        self.service.get_run(run_id)  # 404 first, as for every run endpoint
        try:
            page = self.service.list_jobs(
                run_id, sort="jobid", page_size=page_size, page_token=page_token or None
            )
        except ServiceError as exc:
            raise _as_bad_request(exc) from None
        return TaskListResponse(
            task_logs=[task_log(j, self.links) for j in page["jobs"]],
            next_page_token=page["next_page_token"] or "",
        )

    def task(self, run_id: str, task_id: str) -> TaskLog:
        return task_log(self.service.get_job(run_id, task_id), self.links)

    def cancel(self, run_id: str, *, by: Principal) -> RunId:
        """Cancel; a run that already ended is left as it is (the answer is the same: WES
        has no status for "nothing to cancel"), one started by hand cannot be (403)."""
        try:
            self.service.cancel_run(run_id, by=by)
        except Conflict as exc:
            run = self.service.get_run(run_id)
            if run.get("hand_run"):
                raise ForbiddenHere(exc.detail) from None
        return RunId(run_id=run_id)


class ForbiddenHere(ServiceError):
    status, title, slug = 403, "Forbidden", "forbidden"


def _as_bad_request(exc: ServiceError) -> ServiceError:
    """A refusal of the request's content (422, 409, 413) is WES's 400; others stay."""
    if exc.status in (409, 413, 422):
        return BadRequest(exc.detail, exc.errors)
    return exc


def _snakedeck_version() -> str:
    try:
        return importlib.metadata.version("snakedeck")
    except importlib.metadata.PackageNotFoundError:
        return "0"


__all__ = [
    "ENGINE_PARAMETERS",
    "STATES",
    "BadRequest",
    "ErrorResponse",
    "Links",
    "RunRequestForm",
    "Wes",
    "page_size",
    "parse_request",
]
