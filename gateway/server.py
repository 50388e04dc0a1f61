"""Serve a gateway app: gunicorn, one process, the gevent worker (Flask-SocketIO in gevent mode).

One worker because live-feed subscriptions are per process; scale out with more gateway
processes behind a load balancer (each binds its own updates queue). The app is built by a
factory inside the worker, after gevent has patched the standard library, and whatever it
starts is stopped when the worker exits.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as http_errors
from gunicorn.workers.ggevent import GeventWorker

log = logging.getLogger(__name__)

AppFactory = Callable[[], tuple[Flask, Callable[[], None]]]
"""Builds and starts the app in the worker; returns it with the function that stops it."""


# gunicorn refuses some requests before the app sees them; these are its answers' status codes.
_GUNICORN_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (http_errors.LimitRequestLine, 414, "URI too long"),
    (http_errors.LimitRequestHeaders, 431, "Request header fields too large"),
    (http_errors.UnsupportedTransferCoding, 501, "Not implemented"),
    (http_errors.ExpectationFailed, 417, "Expectation failed"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden"),
    (http_errors.ParseException, 400, "Malformed request"),
)


def _gunicorn_problem(exc: BaseException) -> tuple[int, str, str]:
    for kind, status, title in _GUNICORN_STATUS:
        if isinstance(exc, kind):
            detail = str(exc) or title
            if status == 414:
                detail = f"the request line is too long ({detail}); send long values in a body"
            elif status == 431:
                detail = f"a request header is too large or there are too many ({detail})"
            return status, title, detail[:300]
    return 500, "Internal error", "the server failed before it could read the request"


class ProblemWorker(GeventWorker):
    """gunicorn's gevent worker, whose own refusals (request line too long, headers too large,
    malformed HTTP) are problem documents like every other answer, not HTML pages."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, title, detail = _gunicorn_problem(exc)
        if status >= 500:
            self.log.exception("Error handling request")
        else:
            # The exception's text may quote the request line (and a ?token= in it): not logged.
            self.log.warning(
                "Invalid request from ip=%s: %s (%s)", (addr or ("",))[0], title, type(exc).__name__
            )
        body = json.dumps(
            {
                "type": "https://snakedeck.dev/problems/" + title.lower().replace(" ", "-"),
                "title": title,
                "status": status,
                "detail": detail,
            }
        ).encode()
        head = (
            f"HTTP/1.1 {status} {title}\r\nConnection: close\r\n"
            f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n"
            "X-Content-Type-Options: nosniff\r\n\r\n"
        ).encode("latin-1")
        try:
            util.write_nonblock(client, head + body)
        except Exception:  # noqa: BLE001 - the client may be gone already
            self.log.debug("Failed to send error message.")


class GatewayServer(BaseApplication):
    """gunicorn application whose app is built in the worker, after gevent has patched it."""

    def __init__(self, factory: AppFactory, *, bind: str) -> None:
        self.factory = factory
        self.options: dict[str, Any] = {
            "bind": bind,
            "workers": 1,
            "worker_class": ProblemWorker,
            # gunicorn's most generous request-line limit; its refusals are problem documents.
            "limit_request_line": 8190,
            "limit_request_field_size": 8190,
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
        self._stop: Callable[[], None] | None = None
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("worker_exit", lambda _server, _worker: self._shutdown())

    def load(self) -> Flask:
        app, self._stop = self.factory()
        return app

    def _shutdown(self) -> None:
        if self._stop is not None:
            try:
                self._stop()
            except Exception:
                log.exception("stopping the gateway's services failed")


def serve(factory: AppFactory, *, host: str, port: int) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status."""
    GatewayServer(factory, bind=f"{host}:{port}").run()
    return 0
