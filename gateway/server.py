"""Serve the gateway: gunicorn, one process, the gevent worker (Flask-SocketIO in gevent mode).

One worker because live-feed subscriptions are per process; scale out with more gateway
processes behind a load balancer (each binds its own updates queue).

``python -m gateway.server [--host H] [--port P]`` (``--port 0`` picks a free port; the chosen
address is logged as ``Listening at: http://H:P``). Settings come from ``SNAKEDECK_*``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from gunicorn.app.base import BaseApplication

from snakedeck.settings import Settings

log = logging.getLogger(__name__)


class GatewayServer(BaseApplication):
    """gunicorn application whose app is built in the worker, after gevent has patched it."""

    def __init__(self, settings: Settings, *, bind: str, standalone: bool = False) -> None:
        self.settings = settings
        self.standalone = standalone
        self.options: dict[str, Any] = {
            "bind": bind,
            "workers": 1,
            "worker_class": "gevent",
            "worker_connections": 1000,
            "timeout": 60,
            "graceful_timeout": 10,
            "keepalive": 5,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "info",
            "preload_app": False,
            # gunicorn's control socket has one fixed default path: two gateways would collide.
            "control_socket_disable": True,
        }
        self._services: list[Any] = []
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("worker_exit", lambda _server, _worker: self._stop_services())

    def load(self) -> Any:
        from gateway.app import create_app

        if not self.standalone:
            return create_app(self.settings)
        # Standalone: gateway, consumer and runner share one in-process bus and one store.
        from runner.service import Runner
        from snakedeck.bus import open_bus
        from snakedeck.consumer import Consumer
        from snakedeck.store import open_store

        store = open_store(self.settings)
        bus = open_bus(self.settings)
        bus.declare()
        self._services = [Consumer(self.settings, store, bus), Runner(self.settings, bus)]
        app = create_app(self.settings, store=store, bus=bus)
        app.extensions["snakedeck.live"].count_persisted = False  # the consumer counts them here
        for service in self._services:
            service.start()
        return app

    def _stop_services(self) -> None:
        for service in reversed(self._services):
            try:
                service.stop()
            except Exception:
                log.exception("stopping %s failed", type(service).__name__)


def serve(settings: Settings, *, standalone: bool = False, port: int | None = None) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    bind = f"{settings.host}:{settings.port if port is None else port}"
    GatewayServer(settings, bind=bind, standalone=standalone).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.server", description=__doc__)
    parser.add_argument("--host", help="address to bind (default SNAKEDECK_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (0: any free one; default SNAKEDECK_PORT)")
    parser.add_argument("--standalone", action="store_true", help="also run runner and consumer")
    args = parser.parse_args(argv)
    settings = Settings.from_env(host=args.host)
    return serve(settings, standalone=args.standalone, port=args.port)


if __name__ == "__main__":
    raise SystemExit(main())
