"""The composition root: how each snakedeck process is put together from its parts.

``standalone`` (gateway, runner and consumer, with its reaper and notifier, in one process,
in-process bus, SQLite unless ``SNAKEDECK_MONGO_URI`` is set), ``gateway``, ``runner`` and
``consumer`` (with the reaper and the notifier). This is the one module that knows every part;
the parts (core, runner, consumer, gateway, dashboard) never import each other sideways, and
nothing imports this module but the CLI.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from snakedeck.settings import Settings, SettingsError

if TYPE_CHECKING:
    from flask import Flask

    from gateway.server import AppFactory
    from snakedeck.auth import Authenticator
    from snakedeck.bus.base import Bus
    from snakedeck.store import Store

log = logging.getLogger("snakedeck")


class Startable(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def require_broker(settings: Settings, role: str) -> None:
    if not settings.amqp_url:
        raise SettingsError(
            f"`snakedeck {role}` talks to RabbitMQ: set SNAKEDECK_AMQP_URL "
            "(or use `snakedeck standalone` to run everything in one process)"
        )


def require_free_port(settings: Settings) -> None:
    """Refuse to start when another program holds the port (it would answer in our name)."""
    if settings.port == 0:
        return
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise SettingsError(
                    f"port {settings.port} on {settings.host} is already in use by another "
                    "program; stop it, or choose another port with --port or SNAKEDECK_PORT"
                ) from None
            raise SettingsError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from None


# -- the parts ---------------------------------------------------------------------------------
def build_consumer(settings: Settings, store: Store, bus: Bus) -> list[Startable]:
    """The consumer and, beside it, the reaper of lost runners' runs and the notifier."""
    from consumer.notifier import Notifier
    from consumer.reaper import Reaper
    from consumer.service import Consumer

    return [
        Consumer(settings, store, bus),
        Reaper(store, bus, lease=settings.claim_lease),
        Notifier(settings, store, bus),
    ]


def build_runner(settings: Settings, bus: Bus, store: Store) -> Startable:
    from runner.service import Runner

    return Runner(settings, bus, store)


def build_gateway(settings: Settings, store: Store, bus: Bus) -> Flask:
    """The gateway app with the dashboard mounted beside the API (not started)."""
    from dash.exceptions import DependencyException

    from dashboard.app import init_dashboard
    from gateway import problems
    from gateway.app import create_app
    from snakedeck.feed import LiveHub
    from snakedeck.service import Service
    from snakedeck.workflows import WorkflowRegistry

    service = Service(settings, store, bus, WorkflowRegistry(settings.workflows_dir))
    authenticator = build_authenticator(settings, store)
    app = create_app(settings, service, LiveHub(store, bus), authenticator)
    init_dashboard(app, service, settings, authenticator)
    problems.answer_as(
        app, DependencyException, 404, "Not found", "no such dashboard asset"
    )  # Dash's answer to an unknown component suite is an exception
    return app


def build_authenticator(settings: Settings, store: Store) -> Authenticator:
    """Admin tokens from the settings, named tokens from the token file and the store; the
    gateway and the dashboard share this one."""
    from snakedeck.auth import Authenticator, TokenRegistry

    try:
        registry = TokenRegistry(store, settings.token_file)
    except ValueError as exc:
        raise SettingsError(f"SNAKEDECK_TOKEN_FILE: {exc}") from None
    return Authenticator(settings.api_tokens, lookup=registry, public_read=settings.public_read)


def gateway_factory(settings: Settings, *, standalone: bool) -> AppFactory:
    """What the gunicorn worker calls to build and start everything it serves."""

    def factory() -> tuple[Flask, Callable[[], None]]:
        from gateway import app as gateway_app
        from snakedeck.bus import open_bus
        from snakedeck.store import open_store

        store = open_store(settings)
        bus = open_bus(settings)
        services: list[Startable] = []
        if standalone:
            services = [*build_consumer(settings, store, bus), build_runner(settings, bus, store)]
        app = build_gateway(settings, store, bus)
        for service in services:
            service.start()
        gateway_app.start(app)

        def stop() -> None:
            gateway_app.stop(app)
            for service in reversed(services):
                try:
                    service.stop()
                except Exception:
                    log.exception("stopping %s failed", type(service).__name__)
            bus.close()
            store.close()

        return app, stop

    return factory


# -- the processes -----------------------------------------------------------------------------
def run_until_signalled(services: list[Startable]) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for service in services:
        service.start()
    log.info("started %s; Ctrl-C to stop", ", ".join(type(s).__name__ for s in services))
    stop.wait()
    for service in reversed(services):
        service.stop()
    return 0


def announce(settings: Settings, role: str) -> None:
    base = f"http://{settings.host}:{settings.port}"
    bus = "RabbitMQ" if settings.amqp_url else "in-process bus"
    store = f"MongoDB {settings.mongo_db}" if settings.mongo_uri else str(settings.sqlite_path)
    where = (
        f"  dashboard  {base}/dashboard/\n"
        f"  REST API   {base}/api/v1  (docs {base}/apidocs)\n"
        f"  submit     snakedeck submit demo --follow --url {base}"
        if settings.port
        else "  listening on a port the system picks (see 'Listening at' below)"
    )
    print(f"snakedeck {role}: {bus}, store {store}\n{where}", file=sys.stderr, flush=True)


def main(role: str, settings: Settings) -> int:
    configure_logging()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if role in ("runner", "consumer"):
        require_broker(settings, role)
        from snakedeck.bus import open_bus
        from snakedeck.store import open_store

        store, bus = open_store(settings), open_bus(settings)
        if role == "runner":
            return run_until_signalled([build_runner(settings, bus, store)])
        return run_until_signalled(build_consumer(settings, store, bus))
    if role not in ("gateway", "standalone"):
        raise SettingsError(f"unknown process role {role!r}")
    if role == "gateway":
        require_broker(settings, role)
    require_free_port(settings)
    announce(settings, role)
    from gateway.server import serve

    factory = gateway_factory(settings, standalone=role == "standalone")
    return serve(factory, host=settings.host, port=settings.port)
