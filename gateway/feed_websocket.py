"""The live feed over plain WebSockets: ``/ws/runs/<run_id>?after_seq=N`` and ``/ws/runs``.

For the dashboard (dash-extensions ``WebSocket``) and clients without a Socket.IO library. Each
message is ``{"type": "event" | "run" | "job" | "log", "data": …}``; with ``?batch=1``, events
come as ``{"type": "events", "data": [...]}``. A thin adapter over
:mod:`snakedeck.feed`: the same subscriber, the same :meth:`FeedSubscriber.serve` loop (with
its catch-up) as Socket.IO.
"""

from __future__ import annotations

import json
from typing import Any, Final

from flask import Flask, Response, request

from gateway.problems import problem
from snakedeck.feed import LiveHub, SubscribeError, parse_subscription, wants_batches

TITLES = {404: "Not found", 503: "Service unavailable"}
MAX_CLIENT_MESSAGE: Final = 64 * 1024
"""The feed reads nothing from its client: a bigger message only closes its connection."""


def init_websocket(app: Flask, hub: LiveHub, *, ping_interval: float) -> None:
    """Mount the feed; the token (``?token=`` or ``Authorization``) and the ``Origin`` are
    checked before this (:mod:`gateway.auth`, :mod:`gateway.origins`), as for Socket.IO.
    Pings every ``ping_interval`` seconds keep a quiet feed open (``ws_ping_interval``)."""
    from flask_sock import Sock

    app.config["SOCK_SERVER_OPTIONS"] = {
        "ping_interval": ping_interval or None,
        "max_message_size": MAX_CLIENT_MESSAGE,
    }
    sock = Sock(app)

    def subscription() -> tuple[str | None, int, bool]:
        parts = request.path.rstrip("/").split("/")
        run_id = parts[3] if len(parts) > 3 else None
        query = {"run_id": run_id} if run_id else {"all": True}
        batch = wants_batches({"batch": request.args.get("batch")})
        run_id, after_seq = parse_subscription(
            {**query, "after_seq": request.args.get("after_seq")}, hub.store
        )
        return run_id, after_seq, batch

    @app.before_request
    def _check_ws() -> Response | None:
        """Refuse a bad handshake with a problem document before the upgrade."""
        if not request.path.startswith("/ws/"):
            return None
        try:
            subscription()
        except SubscribeError as exc:
            title = TITLES.get(exc.status, "Invalid request")
            return problem(exc.status, title, exc.detail, errors=exc.problem.get("errors"))
        return None

    def serve(ws: Any) -> None:
        run_id, after_seq, batch = subscription()

        def send(kind: str, payload: Any) -> None:
            ws.send(json.dumps({"type": kind, "data": payload}, separators=(",", ":")))

        sub = hub.subscribe(send, run_id=run_id, after_seq=after_seq, batch=batch)
        try:
            sub.open()
            sub.serve(alive=lambda: bool(ws.connected))
        except Exception as exc:  # noqa: BLE001 - the client closing ends the feed
            app.logger.debug("websocket feed ended: %r", exc)
        finally:
            hub.remove(sub)

    @sock.route("/ws/runs/<run_id>")
    def ws_run(ws: Any, run_id: str) -> None:
        serve(ws)

    @sock.route("/ws/runs")
    def ws_all(ws: Any) -> None:
        serve(ws)
