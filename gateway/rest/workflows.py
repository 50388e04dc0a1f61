"""Registered workflows."""

from __future__ import annotations

from flask import Response

from gateway import schemas as s
from gateway.rest import answer, api, service


@api.operation(
    "GET",
    "/workflows",
    summary="List registered workflows",
    tag="workflows",
    responses={200: s.WorkflowList},
)
def list_workflows() -> Response:
    return answer({"workflows": service().list_workflows()})


@api.operation(
    "GET",
    "/workflows/<name>",
    summary="One workflow with its config schema",
    tag="workflows",
    responses={200: s.Workflow},
)
def get_workflow(name: str) -> Response:
    return answer(service().get_workflow(name))
