"""Property-based test of GA4GH WES 1.1 (``/ga4gh/wes/v1``) from the shipped spec (schemathesis).

The document is the one the gateway serves at ``/apidocs/ga4gh-wes-1.1.0.json``: the shipped
file with service-info's ``Service`` bundled in (``gateway/wes/document``). The gateway runs
in-process (WSGI) as standalone mode builds it (SQLite store, in-process bus, no runner: runs
stay QUEUED), seeded with runs submitted through WES and one finished run with jobs, so path
parameters hit real runs and tasks.

Every check schemathesis has runs on every generated request (no 5xx, status codes, content
types, headers and bodies as documented, schema-violating requests refused, undeclared methods
405 with ``Allow``), with a fixed seed and :data:`MAX_EXAMPLES` per operation.

Narrowed here, each for a stated reason:

* path parameters are mapped onto the seeded runs and jobs for about two cases in three
  (random ids would all be 404);
* in schema-valid cases ``page_token`` is left out (server-issued, opaque values) and a
  ``page_size`` below 1 is raised to 1 (the spec leaves it unbounded; a page of no runs is
  refused with 400);
* ``RunWorkflow``'s form fields are free strings in the spec whose JSON content and allowed
  values (``SMK``, the Snakemake version, a registered workflow) it cannot describe, so a
  schema-valid form refused with 400 is not counted as "valid request rejected" there.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as _openapi_checks  # registers the OpenAPI checks

from gateway.wes import DOCUMENT_ROUTE
from snakedeck.auth import LOCAL_ADMIN
from snakedeck.service.wes import Links, RunRequestForm, Wes, snakemake_version
from snakedeck.settings import Settings
from tests.support.events import persist, synthetic_run
from tests.support.in_process import in_process_gateway

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 40
assert _openapi_checks
RUN_CHECKS = [c for c in CHECKS.get_all() if c.__name__ != "max_response_time"]


class Seeded:
    runs: list[str] = []
    jobbed_run = ""


SEEDED = Seeded()


def build_app(data_dir: Path) -> tuple[Any, Any, Any]:
    settings = Settings(
        data_dir=data_dir,
        workflows_dir=REPO / "workflows",
        namespace="wes-schemathesis",
        rate_submit="off",
        rate_upload="off",
    )
    app, store, bus = in_process_gateway(settings)
    wes = Wes(app.extensions["snakedeck.service"], Links(root="http://localhost"))
    fields = {
        "workflow_type": "SMK",
        "workflow_type_version": snakemake_version(),
        "workflow_url": "demo",
        "workflow_params": json.dumps({"samples": 2}),
        "tags": json.dumps({"seeded": "yes"}),
    }
    SEEDED.runs = [
        wes.submit(RunRequestForm(fields=dict(fields)), by=LOCAL_ADMIN).run_id for _ in range(2)
    ]
    finished = synthetic_run("01seededwesrunjobs0", samples=2)
    persist(store, finished.events)
    SEEDED.jobbed_run = finished.run_id
    SEEDED.runs.append(finished.run_id)
    return app, store, bus


RUN_REQUEST_FIELDS = (
    "workflow_url", "workflow_type", "workflow_type_version", "workflow_params",
    "workflow_engine", "workflow_engine_version", "workflow_engine_parameters",
    "workflow_attachment", "tags",
)  # fmt: skip
"""RunRequest's form fields (WES 1.1): a refusal must say which one it refuses."""


def load_schema(app: Any) -> Any:
    schema = schemathesis.openapi.from_wsgi(DOCUMENT_ROUTE, app)

    @schema.hook("map_case")
    def onto_seeded_resources(ctx: Any, case: Any) -> Any:
        params = case.path_parameters or {}
        for name, value in list(params.items()):
            pick = int(hashlib.sha256(str(value).encode()).hexdigest(), 16)
            if pick % 3 == 0:
                continue  # keep the generated (unknown) id
            if name == "run_id":
                params[name] = (
                    SEEDED.jobbed_run
                    if "task_id" in params
                    else SEEDED.runs[pick % len(SEEDED.runs)]
                )
            elif name == "task_id":
                params[name] = str(1 + pick % 2)
        if not case.meta.is_negative_at(ParameterLocation.QUERY) and case.query:
            case.query.pop("page_token", None)
            size = case.query.get("page_size")
            if size is not None and int(size) < 1:
                case.query["page_size"] = 1
        return case

    @schema.hook("filter_failure")
    def form_content_refusals(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
        """Keep every failure except 'valid request rejected' for RunWorkflow's 400 that names
        the form field it refuses: the spec types every field as free text, and this server
        runs only registered workflows with parameters their schemas accept."""
        run_workflow = (case.operation.method.upper(), case.operation.path) == ("POST", "/runs")
        rejected = type(failure).__name__ == "RejectedPositiveData"
        if not (run_workflow and rejected and response.status_code == 400):
            return True
        try:
            msg = str(response.json().get("msg", ""))
        except ValueError:
            return True
        return not any(name in msg for name in RUN_REQUEST_FIELDS)

    return schema


_DATA = tempfile.TemporaryDirectory(prefix="sd-wes-schemathesis-")
APP, STORE, BUS = build_app(Path(_DATA.name) / "data")
schema = load_schema(APP)


@pytest.fixture(scope="module", autouse=True)
def _close() -> Iterator[None]:
    yield
    BUS.close()
    STORE.close()
    _DATA.cleanup()


def test_every_wes_operation_is_generated() -> None:
    ops = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert ops == {
        ("GET", "/service-info"),
        ("GET", "/runs"),
        ("POST", "/runs"),
        ("GET", "/runs/{run_id}"),
        ("GET", "/runs/{run_id}/status"),
        ("GET", "/runs/{run_id}/tasks"),
        ("GET", "/runs/{run_id}/tasks/{task_id}"),
        ("POST", "/runs/{run_id}/cancel"),
    }


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_wes_keeps_the_shipped_spec(case: Any) -> None:
    response = case.call_and_validate(checks=RUN_CHECKS)
    assert (
        response.request.url.split("?")[0].split("localhost", 1)[-1].startswith("/ga4gh/wes/v1/")
    ), response.request.url
