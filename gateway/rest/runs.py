"""Runs: submit, list, read, cancel, rerun."""

from __future__ import annotations

import copy
import re
from typing import Any

from flask import Response, url_for

from gateway import schemas as s
from gateway.openapi import Refine
from gateway.rest import PREFIX, answer, api, principal, service
from snakedeck.service import Service


@api.operation(
    "POST",
    "/runs",
    summary="Submit a run",
    tag="runs",
    body=s.SubmitRun,
    responses={201: s.RunCreated},
    rate="submit",
)
def submit_run(body: s.SubmitRun) -> Response:
    """Needs a `submit` token; the run records the token's name as `user`. Checks everything
    before anything is queued: the workflow is available, the config
    file plus overrides match its schema, every declared input is given a registered file of
    the right kind and format, sample sheets fit their table schema (errors name row and
    column), every `notify` target is usable. Then stores the run as QUEUED and enqueues it.
    Notify targets are write-only: answers never show their secrets."""
    created = service().submit_run(
        body.workflow,
        body.config,
        body.inputs,
        body.tags,
        by=principal(),
        config_file=body.config_file,
        notify=body.notify,
    )
    location = url_for(".get_run", run_id=created["run_id"])
    return answer(created, 201, Location=location)


@api.operation(
    "GET",
    "/runs",
    summary="List runs, newest first",
    tag="runs",
    query=s.RunListQuery,
    responses={200: s.RunList},
)
def list_runs(query: s.RunListQuery) -> Response:
    return answer(service().list_runs(**query.model_dump()))


@api.operation(
    "GET",
    "/runs/<run_id>",
    summary="One run with progress and per-rule counts",
    tag="runs",
    responses={200: s.Run},
)
def get_run(run_id: str) -> Response:
    return answer(service().get_run(run_id))


@api.operation(
    "POST",
    "/runs/<run_id>/cancel",
    summary="Cancel a run",
    tag="runs",
    responses={202: s.CancelAccepted},
    problems=(409,),
)
def cancel_run(run_id: str) -> Response:
    """Accepted: the runner stops the run and reports CANCELED. A finished run answers 409.
    A `submit` token may cancel the runs it submitted, an `admin` token any (else 403)."""
    return answer(service().cancel_run(run_id, by=principal()), 202)


@api.operation(
    "POST",
    "/runs/<run_id>/rerun",
    summary="Submit the same run again",
    tag="runs",
    responses={201: s.RunCreated},
    problems=(409,),
    rate="submit",
)
def rerun_run(run_id: str) -> Response:
    """A new run with the same workflow, config, inputs and tags; `rerun_of` names this one.
    A `submit` token may rerun the runs it submitted, an `admin` token any (else 403)."""
    created = service().rerun_run(run_id, by=principal())
    location = url_for(".get_run", run_id=created["run_id"])
    return answer(created, 201, Location=location)


@api.operation(
    "GET",
    "/runs/<run_id>/deliveries",
    summary="A run's notify targets and delivery log",
    tag="runs",
    query=s.DeliveriesQuery,
    responses={200: s.DeliveryList},
)
def list_deliveries(run_id: str, query: s.DeliveriesQuery) -> Response:
    """Every attempt to deliver one of the run's notifications (state changes, job failures)
    to one of its targets, oldest first: when, the receiver's status, the outcome (`failed`
    attempts are retried with back-off; `gave_up` is the last one). Targets are shown without
    their secrets."""
    return answer(service().list_deliveries(run_id, **query.model_dump()))


def document_workflows(svc: Service) -> Refine:
    """The submit body as the server really checks it: one variant per workflow that can run
    here, with that workflow's own config schema and declared inputs, so a body the document
    calls valid is one the server accepts (given registered files) and the other way round."""

    def refine(spec: dict[str, Any]) -> None:
        schemas = spec["components"]["schemas"]
        generic = schemas["SubmitRun"]
        variants: list[dict[str, str]] = []
        for wf in svc.registry.list(strict=False):
            if wf.missing_programs():
                continue
            variant = copy.deepcopy(generic)
            variant["title"] = f"Submit a {wf.name} run"
            props = variant["properties"]
            props["workflow"] = {"type": "string", "enum": [wf.name]}
            config = {k: v for k, v in copy.deepcopy(wf.config_schema).items() if k != "$schema"}
            config["description"] = props["config"].get("description", "")
            props["config"] = config
            file_id = props["inputs"]["additionalProperties"]
            props["inputs"] = {
                "type": "object",
                "description": props["inputs"].get("description", ""),
                "properties": {spec_.name: dict(file_id) for spec_ in wf.inputs},
                "additionalProperties": False,
            }
            required = [spec_.name for spec_ in wf.inputs if spec_.required]
            if required:
                props["inputs"]["required"] = required
                variant["required"] = sorted({*variant.get("required", []), "inputs"})
            name = "SubmitRun_" + re.sub(r"[^A-Za-z0-9_]", "_", wf.name)
            schemas[name] = variant
            variants.append({"$ref": f"#/components/schemas/{name}"})
        if variants:
            body = spec["paths"][f"{PREFIX}/runs"]["post"]["requestBody"]
            body["content"]["application/json"]["schema"] = {"oneOf": variants}
        # A file registered "for a workflow" must name a registered one.
        names = sorted(wf.name for wf in svc.registry.list(strict=False))
        upload = spec["paths"][f"{PREFIX}/files"]["post"]["requestBody"]["content"]
        form = copy.deepcopy(upload["multipart/form-data"]["schema"])
        form["properties"]["workflow"] = {  # an empty part is no workflow
            **form["properties"]["workflow"],
            "enum": ["", *names],
        }
        upload["multipart/form-data"]["schema"] = form
        from_url = schemas["FileFromUrl"]["properties"]["workflow"]
        from_url["anyOf"] = [{"type": "string", "enum": names}, {"type": "null"}]

    return refine
