"""REST v1 (/api/v1): thin views over :class:`snakedeck.service.Service`."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from gateway import schemas as s
from gateway.openapi import Api
from snakedeck.service import Service

PREFIX = "/api/v1"
USER_HEADER = "X-Snakedeck-User"
"""Who submitted: informational only, not an identity check (tokens are not per user)."""

blueprint = Blueprint("api_v1", __name__, url_prefix=PREFIX)
api = Api(blueprint, PREFIX)


def service() -> Service:
    return current_app.extensions["snakedeck.service"]


def _user() -> str | None:
    value = request.headers.get(USER_HEADER, "").strip()
    return value[:128] or None


def _json(body: Any, status: int = 200, **headers: str) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    resp.headers.update(headers)
    return resp


@blueprint.before_request
def _require_token_for_writes() -> Response | None:
    return current_app.extensions["snakedeck.auth"].check_write(request)


# -- workflows ----------------------------------------------------------------------------------
@api.operation(
    "GET",
    "/workflows",
    summary="List registered workflows",
    tag="workflows",
    responses={200: s.WorkflowList},
)
def list_workflows() -> Response:
    return _json({"workflows": service().list_workflows()})


@api.operation(
    "GET",
    "/workflows/<name>",
    summary="One workflow with its config schema",
    tag="workflows",
    responses={200: s.Workflow},
)
def get_workflow(name: str) -> Response:
    return _json(service().get_workflow(name))


# -- runs ---------------------------------------------------------------------------------------
@api.operation(
    "POST",
    "/runs",
    summary="Submit a run",
    tag="runs",
    body=s.SubmitRun,
    responses={201: s.RunCreated},
)
def submit_run(body: s.SubmitRun) -> Response:
    """Validates the workflow and its config, stores the run as QUEUED and enqueues it."""
    created = service().submit_run(
        body.workflow,
        body.config,
        [{"file_id": i} if isinstance(i, str) else i.model_dump() for i in body.inputs],
        body.tags,
        _user(),
    )
    location = url_for(".get_run", run_id=created["run_id"])
    return _json(created, 201, Location=location)


@api.operation(
    "GET",
    "/runs",
    summary="List runs, newest first",
    tag="runs",
    query=s.RunListQuery,
    responses={200: s.RunList},
)
def list_runs(query: s.RunListQuery) -> Response:
    return _json(service().list_runs(**query.model_dump()))


@api.operation(
    "GET",
    "/runs/<run_id>",
    summary="One run with progress and per-rule counts",
    tag="runs",
    responses={200: s.Run},
)
def get_run(run_id: str) -> Response:
    return _json(service().get_run(run_id))


@api.operation(
    "POST",
    "/runs/<run_id>/cancel",
    summary="Cancel a run",
    tag="runs",
    responses={202: s.CancelAccepted},
    problems=(409,),
)
def cancel_run(run_id: str) -> Response:
    """Accepted: the runner stops the run and reports CANCELED. A finished run answers 409."""
    return _json(service().cancel_run(run_id, _user()), 202)


@api.operation(
    "POST",
    "/runs/<run_id>/rerun",
    summary="Submit the same run again",
    tag="runs",
    responses={201: s.RunCreated},
    problems=(409,),
)
def rerun_run(run_id: str) -> Response:
    """A new run with the same workflow, config, inputs and tags; `rerun_of` names this one."""
    created = service().rerun_run(run_id, _user())
    location = url_for(".get_run", run_id=created["run_id"])
    return _json(created, 201, Location=location)


# -- jobs ---------------------------------------------------------------------------------------
@api.operation(
    "GET",
    "/runs/<run_id>/jobs",
    summary="List a run's jobs",
    tag="jobs",
    query=s.JobListQuery,
    responses={200: s.JobList},
)
def list_jobs(run_id: str, query: s.JobListQuery) -> Response:
    return _json(service().list_jobs(run_id, **query.model_dump()))


@api.operation(
    "GET",
    "/runs/<run_id>/jobs/<jobid>",
    summary="One job",
    tag="jobs",
    responses={200: s.Job},
)
def get_job(run_id: str, jobid: str) -> Response:
    return _json(service().get_job(run_id, jobid))


@api.operation(
    "GET",
    "/runs/<run_id>/jobs/<jobid>/log",
    summary="The tail of a job's log files",
    tag="jobs",
    responses={200: s.JobLog},
)
def job_log(run_id: str, jobid: str) -> Response:
    return _json(service().job_log(run_id, jobid))


# -- events -------------------------------------------------------------------------------------
@api.operation(
    "GET",
    "/runs/<run_id>/events",
    summary="A run's events in seq order",
    tag="events",
    query=s.EventsQuery,
    responses={200: s.EventList},
)
def list_events(run_id: str, query: s.EventsQuery) -> Response:
    return _json(service().list_events(run_id, **query.model_dump()))
