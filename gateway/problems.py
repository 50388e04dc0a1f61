"""RFC 9457 problem details: the one shape of every error answer the gateway gives."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from snakedeck.service import ServiceError

PROBLEM_TYPE_BASE = "https://snakedeck.dev/problems/"
MEDIA_TYPE = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build a problem+json response; ``errors`` names each offending field."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path if request else None,
    }
    if errors:
        body["errors"] = errors
    resp = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def from_service_error(exc: ServiceError) -> Response:
    return problem(exc.status, exc.title, exc.detail, slug=exc.slug, errors=exc.errors)


def init_app(app: Flask) -> None:
    """Every error (ours, Werkzeug's, an unexpected crash) leaves as a problem document."""

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError) -> Response:
        return from_service_error(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = {}
        allowed = getattr(exc, "valid_methods", None)
        if status == 405 and allowed:
            headers["Allow"] = ", ".join(allowed)
        return problem(status, exc.name, exc.description or exc.name, headers=headers)

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Response:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "Internal error", f"the server failed: {type(exc).__name__}")
