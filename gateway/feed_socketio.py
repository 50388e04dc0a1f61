"""The live feed over Socket.IO at ``/socket.io``: a thin adapter over :mod:`snakedeck.feed`.

Connect with ``auth={"token": …}`` when tokens are configured; emit ``subscribe`` with
``{"run_id": …, "after_seq": N}`` or ``{"all": true}``; the ack carries ``last_seq``. The server
emits ``event``, ``run``, ``job`` and ``log``. Each subscription is served by one background task
running :meth:`FeedSubscriber.serve`, exactly as the plain WebSocket does.

Every packet's JSON is read through :mod:`snakedeck.json_limits` (:class:`LimitedJson`): a
payload too deep, too large or not Unicode still gets an ack, carrying the problem, instead of
no answer at all. The ``Origin`` is checked as for writes (:mod:`gateway.origins`).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from flask import Flask, request

from gateway.auth import HttpAuth, socketio_token
from gateway.origins import OriginPolicy
from snakedeck import json_limits
from snakedeck.auth import AuthError, Role
from snakedeck.feed import (
    FeedSubscriber,
    LiveHub,
    SubscribeError,
    parse_subscription,
    wants_batches,
)

SOCKET_LIMITS = json_limits.Limits(max_depth=8, max_string=4096, max_items=64)
"""A subscribe is a flat object of a few short fields; nothing a client sends needs more."""
MALFORMED = "__malformed__"
PING_TIMEOUT = 60
"""Seconds a client may go without answering a ping (and the client without one) before the
connection counts as lost."""


class EngineJson:
    """The ``json`` module Engine.IO reads its packets with: a nesting too deep for the parser
    is a ``ValueError`` like any other non-JSON (Engine.IO then keeps the text as it is)."""

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        try:
            return json.loads(text, **kwargs)
        except RecursionError:
            raise ValueError("nested too deeply") from None

    @staticmethod
    def dumps(value: Any, **kwargs: Any) -> str:
        return json.dumps(value, **kwargs)


class LimitedJson(EngineJson):
    """The ``json`` module Socket.IO decodes packets with, bounded: what breaks a limit decodes
    as a ``__malformed__`` event carrying the problem (the packet's ack id is read before its
    JSON), so the client still gets an answer."""

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        try:
            return json_limits.parse(text, SOCKET_LIMITS)
        except json_limits.JsonLimitError as exc:
            return [MALFORMED, _problem(422, str(exc), exc.field)]
        except ValueError as exc:
            return [MALFORMED, _problem(400, f"the message is {exc}", "body")]


def _problem(status: int, detail: str, field: str) -> dict[str, Any]:
    return {"status": status, "detail": detail, "errors": [{"field": field, "message": detail}]}


def init_socketio(app: Flask, hub: LiveHub, auth: HttpAuth, policy: OriginPolicy) -> Any:
    from flask_socketio import SocketIO

    try:
        from gevent import monkey

        async_mode = "gevent" if monkey.is_module_patched("socket") else "threading"
    except ImportError:
        async_mode = "threading"
    sio = SocketIO(
        app,
        async_mode=async_mode,
        json=EngineJson,
        cors_allowed_origins=policy.socketio_allows,
        # A busy gateway (a big run's fan-out on a loaded host) may answer pings late; Engine.IO's
        # 20 s default then drops clients that are fine. A dead client is found a little later.
        ping_timeout=PING_TIMEOUT,
    )
    # This server's packets are read bounded. A subclass, not the shared class: setting
    # ``json`` on ``socketio.packet.Packet`` would bound every Socket.IO *client* in the
    # process too, which then drops a big event as malformed.
    sio.server.packet_class = type(
        "LimitedPacket", (sio.server.packet_class,), {"json": LimitedJson}
    )
    by_sid: dict[str, dict[str, FeedSubscriber]] = {}
    lock = threading.Lock()

    @sio.on("connect")
    def connect(data: object = None) -> bool:
        try:
            principal = auth.socket_principal(socketio_token(data), request.remote_addr)
        except AuthError as exc:
            raise ConnectionRefusedError(f"unauthorized: {exc}") from None
        if not principal.may(Role.READ):
            raise ConnectionRefusedError("forbidden: this token may not read")
        with lock:
            by_sid[request.sid] = {}  # type: ignore[attr-defined]
        return True

    @sio.on("disconnect")
    def disconnect(*_: object) -> None:
        with lock:
            subs = by_sid.pop(request.sid, {})  # type: ignore[attr-defined]
        for sub in subs.values():
            hub.remove(sub)

    @sio.on("subscribe")
    def subscribe(data: object = None) -> dict[str, Any]:
        sid: str = request.sid  # type: ignore[attr-defined]
        try:
            run_id, after_seq = parse_subscription(data, hub.store)
            batch = wants_batches(data)
        except SubscribeError as exc:
            return {"error": exc.problem}
        key = run_id or "*"

        def send(kind: str, payload: Any) -> None:
            sio.emit(kind, payload, to=sid)

        sub = hub.subscribe(send, run_id=run_id, after_seq=after_seq, batch=batch)
        with lock:
            if sid not in by_sid:
                hub.remove(sub)
                return {"error": {"status": 410, "detail": "the connection is gone"}}
            old = by_sid[sid].pop(key, None)
            by_sid[sid][key] = sub
        if old is not None:
            hub.remove(old)
        last = sub.open()
        sio.start_background_task(sub.serve)
        return {"last_seq": last}

    @sio.on(MALFORMED)
    def malformed(problem: object = None) -> dict[str, Any]:
        return {"error": problem if isinstance(problem, dict) else {"status": 400}}

    @sio.on("unsubscribe")
    def unsubscribe(data: object = None) -> dict[str, Any]:
        sid: str = request.sid  # type: ignore[attr-defined]
        run_id = data.get("run_id") if isinstance(data, dict) else None
        key = run_id if isinstance(run_id, str) else "*"
        with lock:
            sub = by_sid.get(sid, {}).pop(key, None)
        if sub is not None:
            hub.remove(sub)
        return {"unsubscribed": sub is not None}

    return sio
