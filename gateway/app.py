"""The gateway's Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, redirect

from snakedeck.bus.base import Bus, BusError
from snakedeck.service import Service
from snakedeck.settings import Settings
from snakedeck.store.base import Store

log = logging.getLogger(__name__)

TITLE = "snakedeck API"
API_VERSION = "1.0.0"


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    bus: Bus | None = None,
    registry: Any = None,
    live: bool = True,
) -> Flask:
    """Build the gateway: REST v1, probes, OpenAPI docs and the live feed.

    ``store``/``bus`` default to the ones the settings describe (pass them to share one in-process
    bus with a runner and consumer, as standalone mode does). ``live=False`` skips the update
    subscription (for tools that only need the REST side).
    """
    from gateway import api, health, openapi, problems
    from gateway import live as live_feed
    from gateway.auth import TokenCheck
    from snakedeck.workflows import WorkflowRegistry

    owned: list[Any] = []  # what shutdown() closes: only what this factory opened
    if store is None:
        from snakedeck.store import open_store

        store = open_store(settings)
        owned.append(store)
    if bus is None:
        from snakedeck.bus import open_bus

        bus = open_bus(settings)
        owned.append(bus)
    try:
        bus.declare()
    except BusError as exc:  # /readyz reports it; submissions answer 503 until it is back
        log.warning("message bus not reachable at start: %s", exc)
    registry = registry or WorkflowRegistry(settings.workflows_dir)
    service = Service(settings, store, bus, registry)

    app = Flask("gateway")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024 * 1024
    app.extensions["snakedeck.settings"] = settings
    app.extensions["snakedeck.owned"] = owned
    app.extensions["snakedeck.service"] = service
    app.extensions["snakedeck.auth"] = TokenCheck(settings.api_tokens)

    problems.init_app(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(health.blueprint)
    openapi.init_app(app, [api.api], title=TITLE, version=API_VERSION)

    hub = live_feed.LiveHub(store, bus)
    app.extensions["snakedeck.live"] = hub
    live_feed.init_socketio(app, hub)
    live_feed.init_websocket(app, hub)
    if live:
        hub.start()

    from dashboard.app import init_dashboard

    init_dashboard(app, service, settings)

    @app.get("/")
    def index() -> Any:
        return redirect("/dashboard/", code=302)

    return app


def socketio_of(app: Flask) -> Any:
    """The app's Flask-SocketIO instance (one per app, so tests may build several apps)."""
    return app.extensions["socketio"]


def shutdown(app: Flask) -> None:
    """Stop the live feed and release the store and bus the app opened."""
    app.extensions["snakedeck.live"].stop()
    for resource in app.extensions["snakedeck.owned"]:
        resource.close()
