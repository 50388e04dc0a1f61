"""The gateway's Flask application factory.

:func:`create_app` configures: blueprints, problem documents, OpenAPI docs, the live-feed
adapters, and the checks every request passes first (allowed host and origin, token, role
rules in the service, rate limits, security headers). It starts nothing: the composition root
(``cli.processes``) starts the live hub once the server's worker runs (:func:`start`), and
mounts the dashboard beside the API.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, redirect

from snakedeck.auth import Authenticator
from snakedeck.bus.base import Bus
from snakedeck.feed import LiveHub
from snakedeck.service import Service
from snakedeck.settings import Settings

log = logging.getLogger(__name__)

TITLE = "snakedeck API"
API_VERSION = "1.0.0"
MAX_BODY_BYTES = 16 * 1024 * 1024


def create_app(
    settings: Settings,
    service: Service,
    hub: LiveHub,
    authenticator: Authenticator,
) -> Flask:
    """Build the gateway on an already wired service and live hub (see ``cli.processes``)."""
    from gateway import (
        auth as http_auth,
    )
    from gateway import (
        feed_socketio,
        feed_websocket,
        headers,
        health,
        openapi,
        origins,
        problems,
        rest,
        wes,
    )
    from gateway.rates import RateLimits
    from gateway.rest.runs import document_workflows
    from gateway.wes.document import document as wes_document

    app = Flask("gateway")
    app.request_class = openapi.LimitedRequest
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    auth = http_auth.HttpAuth(authenticator)
    policy = origins.OriginPolicy(settings.allowed_origins, settings.allowed_hosts, settings.host)
    app.extensions["snakedeck.settings"] = settings
    app.extensions["snakedeck.service"] = service
    app.extensions["snakedeck.auth"] = auth
    app.extensions["snakedeck.live"] = hub
    app.extensions["snakedeck.rates"] = RateLimits(
        {"submit": settings.rate_submit, "upload": settings.rate_upload}
    )

    problems.init_app(app)
    origins.init_app(app, policy)  # first: preflights and cross-site writes
    http_auth.init_app(app, auth)  # then: who is asking
    headers.init_app(app)
    rest.register_views()
    app.register_blueprint(rest.blueprint)
    app.register_blueprint(health.blueprint)
    wes.init_app(app)
    openapi.init_app(
        app,
        [rest.api],
        title=TITLE,
        version=API_VERSION,
        refine=document_workflows(service),
        documents=[
            openapi.Document("GA4GH WES 1.1", "ga4gh_wes", wes.DOCUMENT_ROUTE, wes_document)
        ],
    )
    feed_socketio.init_socketio(app, hub, auth, policy)
    feed_websocket.init_websocket(app, hub, ping_interval=settings.ws_ping_interval)

    @app.get("/")
    def index() -> Any:
        return redirect("/dashboard/", code=302)

    origins.guard_hosts(app, policy)  # outside Socket.IO's middleware too
    headers.wrap(app)  # last: its answers and the guard's get the security headers too
    return app


def start(app: Flask) -> None:
    """Start what serving needs beyond the app itself: the live hub's update consumer."""
    bus: Bus = app.extensions["snakedeck.service"].bus
    try:
        bus.declare()
    except Exception as exc:  # noqa: BLE001 - /readyz reports it; writes answer 503 until back
        log.warning("message broker not reachable at start: %s", exc)
    app.extensions["snakedeck.live"].start()


def stop(app: Flask) -> None:
    app.extensions["snakedeck.live"].stop()


def socketio_of(app: Flask) -> Any:
    """The app's Flask-SocketIO instance (one per app, so tests may build several apps)."""
    return app.extensions["socketio"]
