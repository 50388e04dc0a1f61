"""RFC 9457 problem details: the one shape of every error answer the gateway gives."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from snakedeck.service import ServiceError

PROBLEM_TYPE_BASE = "https://snakedeck.dev/problems/"
MEDIA_TYPE = "application/problem+json"
MAX_DETAIL = 4000
MAX_MESSAGE = 500
MAX_ERRORS = 50
"""A problem names what is wrong; it never echoes a whole bad value back (a 5 MB config value
once came back twice in a 10 MB answer)."""


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        "detail": clip(detail, MAX_DETAIL),
        "instance": clip(request.path, 300) if request else None,
    }
    if errors:
        body["errors"] = [
            {
                **e,
                "field": clip(str(e.get("field", "")), 200),
                "message": clip(str(e.get("message", "")), MAX_MESSAGE),
            }
            for e in errors[:MAX_ERRORS]
        ]
    resp = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def from_service_error(exc: ServiceError) -> Response:
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return problem(
        exc.status, exc.title, exc.detail, slug=exc.slug, errors=exc.errors, headers=headers
    )


def answer_as(app: Flask, error: type[Exception], status: int, title: str, detail: str) -> None:
    """Answer ``error`` (raised by a part mounted on the gateway, e.g. Dash's unknown asset)
    with a fixed problem instead of a 500."""
    app.register_error_handler(error, lambda _exc: problem(status, title, detail))


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
