"""REST v1 (``/api/v1``): thin views over :class:`snakedeck.service.Service`, one module per
resource. Every view is declared once with :meth:`gateway.openapi.Api.operation`, which validates
its request and writes its part of the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify

from gateway.openapi import Api
from snakedeck.auth import Principal
from snakedeck.service import Service

PREFIX = "/api/v1"

blueprint = Blueprint("api_v1", __name__, url_prefix=PREFIX)
api = Api(blueprint, PREFIX)


def service() -> Service:
    return current_app.extensions["snakedeck.service"]


def principal() -> Principal:
    """Who is asking (set by :meth:`gateway.auth.HttpAuth.guard` before every API request)."""
    return g.snakedeck_principal


def answer(body: Any, status: int = 200, **headers: str) -> Response:
    resp = jsonify(body)
    resp.status_code = status
    resp.headers.update(headers)
    return resp


def register_views() -> None:
    """Import the resource modules, whose decorators add their views to :data:`blueprint`."""
    from gateway.rest import (  # noqa: F401
        artefacts,
        audit,
        dead_letters,
        events,
        files,
        jobs,
        runs,
        workflows,
    )
