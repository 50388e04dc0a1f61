"""Checks WES answers against the shipped spec files (``gateway/wes/spec``) as they are, with
openapi-schema-validator (OpenAPI 3.0 schemas) over a ``referencing`` registry: the WES file,
and the service-info file under the remote URL the WES file names it by."""

from __future__ import annotations

import re
from typing import Any

import requests
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from gateway.wes.document import (
    PREFIX,
    SERVICE_INFO_FILE,
    SERVICE_INFO_REF,
    WES_FILE,
    document,
    shipped,
)

WES_URI = "urn:snakedeck:shipped:wes-1.1.0.openapi.yaml"
SPEC = shipped(WES_FILE)
SERVED = document()
"""The served document: the shipped one plus the statuses it documents in addition (each an
``ErrorResponse`` of the shipped file, marked ``x-snakedeck``)."""
REGISTRY = Registry().with_resources(
    [
        (WES_URI, Resource.from_contents(SPEC, default_specification=DRAFT4)),
        (
            SERVICE_INFO_REF.split("#")[0],
            Resource.from_contents(shipped(SERVICE_INFO_FILE), default_specification=DRAFT4),
        ),
    ]
)
TEMPLATES = [
    (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in SPEC["paths"]
]


def template(path: str) -> str:
    """The spec's path template that a concrete WES path matches."""
    rel = path.split("?")[0].removeprefix(PREFIX)
    matches = [t for rx, t in TEMPLATES if rx.match(rel)]
    assert matches, f"{path} is no path of the WES spec"
    return min(matches, key=lambda t: t.count("{"))


def response_schema(method: str, path: str, status: int) -> dict[str, Any]:
    """The shipped spec's schema of this answer (fails when the spec has none)."""
    op = SERVED["paths"][template(path)][method.lower()]
    assert str(status) in op["responses"], (
        f"{method} {path} answered {status}, which the spec does not list for it "
        f"({', '.join(op['responses'])})"
    )
    schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
    return {"$ref": WES_URI + schema["$ref"]}


def check(resp: requests.Response | Any, method: str | None = None) -> Any:
    """Validate one answer (a ``requests`` or a Flask test response) against the shipped
    spec: its status is one the operation lists, its body fits that status's schema. Returns
    the parsed body."""
    if isinstance(resp, requests.Response):
        method, path, status, body = (
            resp.request.method,
            resp.request.path_url,
            resp.status_code,
            resp.json(),
        )
        ctype = resp.headers.get("Content-Type", "")
    else:
        assert method is not None
        path, status, body = resp.request.path, resp.status_code, resp.get_json()
        ctype = resp.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), (status, ctype)
    schema = response_schema(method, path, status)
    validator = OAS30Validator(schema, registry=REGISTRY, format_checker=oas30_format_checker)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {path} {status}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )
    if status >= 400:
        assert body["status_code"] == status and body["msg"], body
    return body
