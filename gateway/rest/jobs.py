"""A run's jobs (their logs: :mod:`gateway.rest.artefacts`)."""

from __future__ import annotations

from flask import Response

from gateway import schemas as s
from gateway.rest import answer, api, service


@api.operation(
    "GET",
    "/runs/<run_id>/jobs",
    summary="List a run's jobs",
    tag="jobs",
    query=s.JobListQuery,
    responses={200: s.JobList},
)
def list_jobs(run_id: str, query: s.JobListQuery) -> Response:
    return answer(service().list_jobs(run_id, **query.model_dump()))


@api.operation(
    "GET",
    "/runs/<run_id>/jobs/<jobid>",
    summary="One job",
    tag="jobs",
    responses={200: s.Job},
)
def get_job(run_id: str, jobid: str) -> Response:
    return answer(service().get_job(run_id, jobid))
