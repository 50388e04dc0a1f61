"""REST operations declared once: the declaration validates each request and generates the
OpenAPI 3.0 document flasgger serves, so the docs describe exactly what the code checks."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from gateway.schemas import Problem
from snakedeck.service import Invalid, ServiceError

OPENAPI_VERSION = "3.0.3"
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Malformed request",
    401: "Missing or wrong API token",
    404: "Not found",
    409: "Conflict with the resource's state",
    415: "Unsupported media type",
    422: "Invalid field(s)",
    503: "A backing service is unavailable",
}


class MalformedBody(ServiceError):
    status, title, slug = 400, "Malformed request body", "malformed-body"


class UnsupportedMediaType(ServiceError):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


@dataclass
class Operation:
    method: str
    rule: str
    """The Flask rule, e.g. ``/runs/<run_id>``; the OpenAPI path is derived from it."""
    summary: str
    tag: str
    responses: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    write: bool = False
    operation_id: str = ""
    description: str = ""
    problems: tuple[int, ...] = ()

    @property
    def path(self) -> str:
        return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", self.rule)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{([^}]+)\}", self.path)


@dataclass
class Api:
    """A blueprint plus the operations registered on it."""

    blueprint: Blueprint
    prefix: str
    operations: list[Operation] = field(default_factory=list)

    def operation(
        self,
        method: str,
        rule: str,
        *,
        summary: str,
        tag: str,
        responses: dict[int, type[BaseModel] | None],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        problems: tuple[int, ...] = (),
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a view; it receives ``body=`` / ``query=`` as validated model instances."""

        def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
            op = Operation(
                method=method.upper(),
                rule=rule,
                summary=summary,
                tag=tag,
                responses=responses,
                body=body,
                query=query,
                write=method.upper() in ("POST", "PUT", "PATCH", "DELETE"),
                operation_id=view.__name__,
                description=(view.__doc__ or "").strip(),
                problems=problems,
            )
            self.operations.append(op)

            @functools.wraps(view)
            def handler(**path: Any) -> Any:
                kwargs: dict[str, Any] = dict(path)
                if query is not None:
                    kwargs["query"] = _validate(query, request.args.to_dict(), "query")
                if body is not None:
                    kwargs["body"] = _validate(body, _json_body(), "body")
                return view(**kwargs)

            self.blueprint.add_url_rule(rule, view.__name__, handler, methods=[op.method])
            return handler

        return decorate


def _json_body() -> Any:
    if not request.mimetype or not request.is_json:
        raise UnsupportedMediaType(
            f"send the request body as application/json (got {request.mimetype or 'nothing'})"
        )
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise MalformedBody(
            "the request body is empty; send a JSON object",
            [{"field": "body", "message": "empty"}],
        )
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedBody(
            f"the request body is not valid JSON: {exc}",
            [{"field": "body", "message": f"not valid JSON: {exc}"}],
        ) from None


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or where, "message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Invalid(f"invalid {where}: {detail}", errors) from None


# -- the document -------------------------------------------------------------------------------
def build_spec(apis: list[Api], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document for every registered operation."""
    models: set[type[BaseModel]] = {Problem}
    for api in apis:
        for op in api.operations:
            models.update(m for m in op.responses.values() if m is not None)
            if op.body is not None:
                models.add(op.body)
    keyed = sorted([(m, "validation") for m in models], key=lambda pair: pair[0].__name__)
    _, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    schemas = {name: _to_oas30(schema) for name, schema in defs.get("$defs", {}).items()}

    paths: dict[str, dict[str, Any]] = {}
    uses_auth = False
    for api in apis:
        for op in api.operations:
            item = paths.setdefault(api.prefix + op.path, {})
            item[op.method.lower()] = _operation(op)
            uses_auth = uses_auth or op.write
    spec: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Submit Snakemake workflow runs and follow their jobs. Errors are RFC 9457 "
                "problem details. When the server has API tokens configured, every write needs "
                "`Authorization: Bearer <token>`; reads stay open."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if uses_auth:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return spec


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
        "responses": {},
    }
    if op.description:
        out["description"] = op.description
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in op.path_params
    ]
    if op.query is not None:
        schema = op.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = _to_oas30(prop)
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": {k: v for k, v in prop.items() if k != "description"},
            }
            if prop.get("description"):
                param["description"] = prop["description"]
            params.append(param)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    for status, model in sorted(op.responses.items()):
        resp: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "Response")}
        if model is not None:
            resp["content"] = {"application/json": {"schema": _ref(model)}}
        out["responses"][str(status)] = resp
    problems = set(op.problems) | {503}
    if op.body is not None or op.query is not None:
        problems.add(422)
    if op.body is not None:
        problems |= {400, 415}
    if op.path_params:
        problems.add(404)
    if op.write:
        problems.add(401)
        out["security"] = [{"bearer": []}, {}]
    for status in sorted(problems):
        out["responses"][str(status)] = {
            "description": _STATUS_TEXT.get(status, "Problem"),
            "content": {"application/problem+json": {"schema": _ref(Problem)}},
        }
    return out


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _to_oas30(schema: Any) -> Any:
    """JSON Schema (pydantic) → the OpenAPI 3.0 dialect: ``nullable`` instead of a null type,
    ``enum`` instead of ``const``."""
    if isinstance(schema, list):
        return [_to_oas30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _to_oas30(v) for k, v in schema.items() if k not in ("$schema", "examples")}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if not isinstance(options, list):
            continue
        non_null = [o for o in options if o != {"type": "null"}]
        if len(non_null) == len(options):
            continue
        out.pop(key)
        out["nullable"] = True
        if len(non_null) == 1:
            only = non_null[0]
            if "$ref" in only:
                out["allOf"] = [only]
            else:
                out.update(only)
        elif non_null:
            out[key] = non_null
    if out.get("type") == "null":
        out.pop("type")
        out["nullable"] = True
    return out


def init_app(app: Flask, apis: list[Api], *, title: str, version: str) -> dict[str, Any]:
    """Serve the generated document through flasgger at /apispec_1.json, UI at /apidocs."""
    from flasgger import Swagger

    spec = build_spec(apis, title=title, version=version)
    Swagger(
        app,
        template=spec,
        config={
            "headers": [],
            "openapi": OPENAPI_VERSION,
            "specs": [
                {
                    "endpoint": "apispec_1",
                    "route": "/apispec_1.json",
                    # Only the generated template: no docstring-parsed extras that could drift.
                    "rule_filter": lambda rule: False,
                    "model_filter": lambda tag: False,
                }
            ],
            "static_url_path": "/flasgger_static",
            "swagger_ui": True,
            "specs_route": "/apidocs/",
        },
        merge=False,
    )
    app.extensions["snakedeck.openapi"] = spec
    return spec
