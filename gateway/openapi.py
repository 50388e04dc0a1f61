"""REST operations declared once: the declaration validates each request and generates the
OpenAPI document, so the docs describe exactly what the code checks.

The document is OpenAPI 3.1 (``/apispec_1.json``): its schemas are JSON Schema 2020-12, which
is what pydantic and the workflows' config schemas are written in, so nothing is translated
and nothing is lost (nulls, ``propertyNames``, numeric exclusive bounds). The Swagger UI that
flasgger bundles predates 3.1; it is given a 3.0 rendition (:func:`downgrade`) at
``/apidocs/openapi-3.0.json``, which is for reading only.

Every JSON body goes through :mod:`snakedeck.json_limits` (:data:`BODY_LIMITS`) before a model
sees it, so deep nesting, huge integers, lone surrogates, over-long strings and arrays are a
422 naming the field, never a crash further in."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Flask, Request, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.schemas import Problem
from snakedeck import json_limits
from snakedeck.service import Invalid, ServiceError

BODY_LIMITS = json_limits.Limits(max_depth=32, max_string=64 * 1024, max_items=10_000)
"""What a JSON request body may hold: nothing snakedeck accepts needs more (a config value
longer than 64 KiB belongs in a registered config file)."""

OPENAPI_VERSION = "3.1.0"
UI_OPENAPI_VERSION = "3.0.3"
_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    400: "Malformed request",
    401: "Missing or wrong API token",
    403: "The token's role may not do this, or a cross-site request",
    404: "Not found",
    409: "Conflict with the resource's state",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid field(s)",
    429: "Too many requests for this token; retry after `Retry-After` seconds",
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
    bodies: dict[str, type[BaseModel] | dict[str, Any]] | None = None
    """Documented request bodies by media type, for a view that reads its body itself
    (e.g. a streamed multipart upload)."""
    rate: str | None = None
    """The rate limit the operation counts against (``submit``, ``upload``), per token."""

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
        bodies: dict[str, type[BaseModel] | dict[str, Any]] | None = None,
        rate: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a view; it receives ``body=`` / ``query=`` as validated model instances.
        With ``bodies`` (media type → model or raw schema) the view reads its own body and the
        declaration only documents it (:func:`validated_body` checks a JSON one)."""

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
                bodies=bodies,
                rate=rate,
            )
            self.operations.append(op)

            @functools.wraps(view)
            def handler(**path: Any) -> Any:
                if rate is not None:
                    current_app.extensions["snakedeck.rates"].hit(rate, g.snakedeck_principal)
                kwargs: dict[str, Any] = dict(path)
                if query is not None:
                    kwargs["query"] = _validate(query, request.args.to_dict(), "query")
                if body is not None:
                    kwargs["body"] = _validate(body, _json_body(), "body")
                return view(**kwargs)

            self.blueprint.add_url_rule(rule, view.__name__, handler, methods=[op.method])
            return handler

        return decorate


def validated_body[M: BaseModel](model: type[M]) -> M:
    """The request's JSON body checked against ``model`` (for views declared with ``bodies``)."""
    return _validate(model, _json_body(), "body")  # type: ignore[return-value]


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
        return _integral_floats(json_limits.parse(raw, BODY_LIMITS))
    except json_limits.JsonLimitError as exc:
        field = shown_field(exc.field)
        raise Invalid(
            f"invalid body: {field}: {exc.message}", [{"field": field, "message": exc.message}]
        ) from None
    except ValueError as exc:
        raise MalformedBody(
            f"the request body is {exc}", [{"field": "body", "message": str(exc)}]
        ) from None


def _integral_floats(value: Any) -> Any:
    """``3.0`` as ``3``: JSON Schema counts a number without a fraction as an integer, and the
    body models are strict (so that ``true`` or ``"3"`` is not one)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    if isinstance(value, list):
        return [_integral_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral_floats(v) for k, v in value.items()}
    return value


def shown_field(path: str, keep: int = 6) -> str:
    """A dotted field path short enough to show: a 900-level path keeps its first parts."""
    parts = path.split(".")
    shown = ".".join(parts[:keep]) + (f".… ({len(parts)} levels)" if len(parts) > keep else "")
    return shown if len(shown) <= 200 else shown[:199] + "…"


class LimitedRequest(Request):
    """A request whose body, read whole, is refused with 413 when it reaches the limit.

    Werkzeug stops reading a body without ``Content-Length`` (chunked) at
    ``MAX_CONTENT_LENGTH`` but hands back what it read, cut: a JSON body would then be
    "not valid JSON" (400) instead of too large (413)."""

    def get_data(  # type: ignore[override]
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> bytes | str:
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        limit = self.max_content_length
        if limit is not None and self.content_length is None and len(data) >= limit:
            raise RequestEntityTooLarge(
                f"the request body is larger than the limit of {limit} bytes"
            )
        return data.decode("utf-8", "replace") if as_text else data


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    """Bodies are JSON: validated strictly (``true`` is not a number, ``"3"`` not an
    integer), as the document says; query strings are text, coerced to their types."""
    try:
        return model.model_validate(data, strict=where == "body")
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or where, "message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Invalid(f"invalid {where}: {detail}", errors) from None


# -- the document -------------------------------------------------------------------------------
Refine = Callable[[dict[str, Any]], None]
"""Adds to the generated document what only the running server knows (e.g. the registered
workflows' config schemas)."""


def build_spec(
    apis: list[Api], *, title: str, version: str, refine: Refine | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.0 document for every registered operation."""
    models: set[type[BaseModel]] = {Problem}
    for api in apis:
        for op in api.operations:
            models.update(m for m in op.responses.values() if m is not None)
            if op.body is not None:
                models.add(op.body)
            for body in (op.bodies or {}).values():
                if isinstance(body, type):
                    models.add(body)
    keyed = sorted([(m, "validation") for m in models], key=lambda pair: pair[0].__name__)
    _, defs = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    schemas = dict(defs.get("$defs", {}))

    paths: dict[str, dict[str, Any]] = {}
    uses_auth = False
    for api in apis:
        for op in api.operations:
            item = paths.setdefault(api.prefix + op.path, {})
            item[op.method.lower()] = _operation(op)
            uses_auth = True
    spec: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Submit Snakemake workflow runs and follow their jobs. Errors are RFC 9457 "
                "problem details. When the server has API tokens configured, every request "
                "needs `Authorization: Bearer <token>` (reads too, unless the server makes "
                "them public); a token's role (`read`, `submit`, `admin`) decides what it may "
                "do. Writes from a browser must come from an allowed origin."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if uses_auth:
        spec["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    if refine is not None:
        refine(spec)
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
            prop = _without_null(prop)
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
    elif op.bodies:
        out["requestBody"] = {
            "required": True,
            "content": {
                media: {"schema": _ref(body) if isinstance(body, type) else body}
                for media, body in op.bodies.items()
            },
        }
    for status, model in sorted(op.responses.items()):
        resp: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "Response")}
        if model is not None:
            resp["content"] = {"application/json": {"schema": _ref(model)}}
        out["responses"][str(status)] = resp
    problems = set(op.problems) | {401, 503}
    if op.body is not None or op.query is not None:
        problems.add(422)
    if op.body is not None or op.bodies:
        problems |= {400, 415, 422}
    if op.path_params:
        problems.add(404)
    if op.write:
        problems.add(403)
    if op.rate:
        problems.add(429)
    out["security"] = [{"bearer": []}, {}]
    for status in sorted(problems):
        out["responses"][str(status)] = {
            "description": _STATUS_TEXT.get(status, "Problem"),
            "content": {"application/problem+json": {"schema": _ref(Problem)}},
        }
    if op.rate:
        out["responses"]["429"]["headers"] = {
            "Retry-After": {
                "description": "Seconds until the token may do this again.",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return out


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: absent is its null, so an ``X | None`` field is just X."""
    out = dict(schema)
    options = out.get("anyOf")
    if isinstance(options, list) and any(_is_null(o) for o in options):
        rest = [o for o in options if not _is_null(o)]
        out.pop("anyOf")
        if len(rest) == 1:
            out.update(rest[0])
        else:
            out["anyOf"] = rest
    if "default" in out and out["default"] is None:
        out.pop("default")
    return out


SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
NOT_IN_30 = (
    "propertyNames",
    "patternProperties",
    "prefixItems",
    "contains",
    "$defs",
    "$schema",
    "examples",
    "unevaluatedProperties",
    "dependentRequired",
    "dependentSchemas",
    "if",
    "then",
    "else",
)
"""JSON Schema keywords OpenAPI 3.0 does not have: left out of the UI's rendition."""
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
SCHEMA_ONES = ("items", "additionalProperties", "not", "contains", "propertyNames")


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1


def to_oas30(schema: Any, *, drop_null: bool = False) -> Any:
    """JSON Schema (pydantic, workflow config schemas) → the OpenAPI 3.0 dialect.

    Null branches are found *before* anything below them is converted (``{"type": "null"}``
    must still look like itself), and become ``nullable`` on the one remaining branch; a
    ``null`` in an ``enum`` is added where the schema is nullable, as OpenAPI 3.0.3 asks.
    ``drop_null`` (query parameters: absent is their null) leaves the null branch out.
    Numeric ``exclusiveMinimum``/``exclusiveMaximum`` become the 3.0 boolean forms, ``const``
    an ``enum``, a ``type`` list a single type plus ``nullable``.
    """
    if isinstance(schema, list):
        return [to_oas30(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {k: v for k, v in schema.items() if k not in NOT_IN_30}
    nullable = False
    for key in ("anyOf", "oneOf"):
        options = out.get(key)
        if not isinstance(options, list) or not any(_is_null(o) for o in options):
            continue
        nullable = True
        non_null = [o for o in options if not _is_null(o)]
        out.pop(key)
        if len(non_null) == 1:
            only = non_null[0]
            if "$ref" in only or any(k in out and k != "default" for k in only):
                out["allOf"] = [only]
            else:
                out.update(only)
        elif non_null:
            out[key] = non_null
    types = out.get("type")
    if isinstance(types, list):
        rest = [t for t in types if t != "null"]
        nullable = nullable or len(rest) < len(types)
        if len(rest) == 1:
            out["type"] = rest[0]
        elif rest:
            out.pop("type")
            out["anyOf"] = [{"type": t} for t in rest]
        else:
            out.pop("type")
            out["enum"] = [None]
    if out.get("type") == "null":
        out.pop("type")
        out["enum"] = [None]
        nullable = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(bound)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[inclusive] = value
            out[bound] = True
    for key in SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [to_oas30(s) for s in out[key]]
    for key in SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: to_oas30(s) for name, s in out[key].items()}
    for key in SCHEMA_ONES:
        if isinstance(out.get(key), dict):
            out[key] = to_oas30(out[key])
    if nullable and drop_null:
        if out.get("default", 0) is None:
            out.pop("default")
        if out.get("enum") == [None]:
            out.pop("enum")
        return out
    if nullable:
        out["nullable"] = True
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def downgrade(spec: dict[str, Any]) -> dict[str, Any]:
    """The 3.1 document as OpenAPI 3.0, for the bundled Swagger UI only: every schema through
    :func:`to_oas30` (keywords 3.0 lacks are dropped, so it is looser than the real one)."""
    out = copy.deepcopy(spec)
    out["openapi"] = UI_OPENAPI_VERSION
    out["info"]["description"] += (
        " (This page shows an OpenAPI 3.0 rendition; the exact document is /apispec_1.json.)"
    )
    comps = out.get("components", {})
    comps["schemas"] = {k: to_oas30(v) for k, v in comps.get("schemas", {}).items()}

    def media(content: dict[str, Any]) -> None:
        for body in content.values():
            if "schema" in body:
                body["schema"] = to_oas30(body["schema"])

    for item in out["paths"].values():
        for op in item.values():
            for param in op.get("parameters", []):
                param["schema"] = to_oas30(param["schema"])
            media(op.get("requestBody", {}).get("content", {}))
            for resp in op.get("responses", {}).values():
                media(resp.get("content", {}))
                for header in resp.get("headers", {}).values():
                    header["schema"] = to_oas30(header["schema"])
    return out


@dataclass(frozen=True)
class Document:
    """Another API's document for /apidocs: its name in the UI, where it is served, and how
    it is built."""

    name: str
    endpoint: str
    route: str
    build: Callable[[], dict[str, Any]]


def init_app(
    app: Flask,
    apis: list[Api],
    *,
    title: str,
    version: str,
    refine: Refine | None = None,
    documents: list[Document] | None = None,
) -> dict[str, Any]:
    """Serve the document at /apispec_1.json (built again for each request: ``refine`` may
    describe what changes while the server runs, like the registered workflows), and
    flasgger's UI at /apidocs over its 3.0 rendition; ``documents`` are further APIs' own
    documents (GA4GH WES), served as they are and listed beside it in the UI."""
    from flasgger import Swagger

    def current() -> dict[str, Any]:
        fresh = build_spec(apis, title=title, version=version, refine=refine)
        app.extensions["snakedeck.openapi"] = fresh
        return fresh

    spec = current()
    Swagger(
        app,
        template=downgrade(spec),
        config={
            "headers": [],
            "openapi": UI_OPENAPI_VERSION,
            "specs": [
                {
                    "endpoint": "apispec_ui",
                    "route": "/apidocs/openapi-3.0.json",
                    "name": title,
                    # Only the generated template: no docstring-parsed extras that could drift.
                    "rule_filter": lambda rule: False,
                    "model_filter": lambda tag: False,
                },
                *(
                    {
                        "endpoint": doc.endpoint,
                        "route": doc.route,
                        "name": doc.name,
                        "rule_filter": lambda rule: False,
                        "model_filter": lambda tag: False,
                    }
                    for doc in documents or []
                ),
            ],
            "static_url_path": "/flasgger_static",
            "swagger_ui": True,
            "specs_route": "/apidocs/",
        },
        merge=False,
    )
    app.view_functions["flasgger.apispec_ui"] = lambda: jsonify(downgrade(current()))
    for doc in documents or []:
        app.view_functions[f"flasgger.{doc.endpoint}"] = lambda build=doc.build: jsonify(build())
    app.add_url_rule("/apispec_1.json", "openapi_document", lambda: jsonify(current()))
    return spec
