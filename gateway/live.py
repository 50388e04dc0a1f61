"""The live feed: every update the consumers persist, pushed to Socket.IO and WebSocket clients.

Each gateway process binds its own exclusive queue to the updates fanout (``bus.consume_updates``),
so every process sees every update. A client's subscription is one :class:`FeedSubscriber`, whose
job is the seam between history and live: it is registered (buffering live updates) *before* the
store is read, replays stored events after the client's ``after_seq``, then delivers buffered and
live events with ``seq`` above the last one sent. A live event that skips ahead (another consumer
persisted an earlier one that has not been pushed yet) is held back; the gap is filled from the
store, and nothing is sent until the sequence is contiguous again. So a client sees each event of
a run exactly once, in seq order.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from flask import Flask, Response, current_app, request

from snakedeck import envelope
from snakedeck.bus.base import Bus, Delivery, Subscription
from snakedeck.store.base import Store

log = logging.getLogger(__name__)

Send = Callable[[str, Any], None]
"""``send(kind, data)`` with kind ``event`` | ``run`` | ``job``."""

REPLAY_PAGE = 1000
POLL_SECONDS = 1.0
CATCH_UP_SECONDS = 5.0
"""A run subscriber idle this long re-reads the store: a lost update must not stall a client."""


class FeedClosed(Exception):
    """The client went away; the subscriber stops."""


class FeedSubscriber:
    """One client's subscription to one run (``run_id``) or to every run (``run_id=None``)."""

    def __init__(self, store: Store, send: Send, *, run_id: str | None, after_seq: int = 0) -> None:
        self.store = store
        self.send = send
        self.run_id = run_id
        self.after_seq = after_seq
        self.closed = False
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._last: dict[str, int] = {}
        """Per run: the highest seq sent (everything up to it has been sent)."""
        self._held: dict[str, dict[int, dict[str, Any]]] = {}
        """Per run: events that arrived ahead of a gap, waiting until it is filled."""

    # -- called from the bus thread -------------------------------------------------------------
    def offer(self, update: dict[str, Any]) -> None:
        """Queue the part of an update this subscriber wants (never blocks, never sends)."""
        if self.closed:
            return
        if self.run_id is None:
            self._inbox.put(update)
            return
        mine = {
            key: [d for d in update.get(key) or [] if d.get("run_id") == self.run_id]
            for key in ("events", "runs", "jobs")
        }
        if any(mine.values()):
            self._inbox.put(mine)

    # -- called from the client's own greenlet/thread -------------------------------------------
    def replay(self) -> int | None:
        """Send the stored events after ``after_seq``; returns the last seq sent (for the ack)."""
        if self.run_id is None:
            return None
        last = self.after_seq
        while True:
            batch = self.store.list_events(self.run_id, after_seq=last, limit=REPLAY_PAGE)
            for event in batch:
                self._send("event", _public(event))
                last = int(event["seq"])
            if len(batch) < REPLAY_PAGE:
                break
        self._last[self.run_id] = last
        run = self.store.get_run(self.run_id)
        if run is not None:
            from snakedeck.projection import run_summary

            self._send("run", run_summary(run))
        return last

    def pump(self, timeout: float | None = None) -> None:
        """Deliver queued updates until closed (or, with ``timeout``, until the queue idles)."""
        idle_since = time.monotonic()
        while not self.closed:
            try:
                item = self._inbox.get(timeout=timeout or POLL_SECONDS)
            except queue.Empty:
                if timeout is not None:
                    return
                if time.monotonic() - idle_since >= CATCH_UP_SECONDS:
                    idle_since = time.monotonic()
                    item = {"catch_up": True}
                else:
                    continue
            idle_since = time.monotonic()
            if item is None:
                break
            try:
                self.handle(item)
            except FeedClosed:
                self.close()
            except Exception:
                log.exception("live feed subscriber failed; closing it")
                self.close()

    def handle(self, update: dict[str, Any]) -> None:
        if update.get("catch_up"):
            self.catch_up()
            return
        for event in update.get("events") or []:
            self._deliver(event)
        for run in update.get("runs") or []:
            self._send("run", run)
        for job in update.get("jobs") or []:
            self._send("job", job)

    def catch_up(self) -> None:
        """Send what the store has beyond the last seq sent (the consumer may have lost an
        update: it publishes them best effort, after the store has the events)."""
        if self.run_id is None or self.run_id not in self._last:
            return
        last = self._last[self.run_id]
        for event in self.store.list_events(self.run_id, after_seq=last, limit=REPLAY_PAGE):
            self._deliver(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._inbox.put(None)

    # -- the seam -------------------------------------------------------------------------------
    def _deliver(self, event: dict[str, Any]) -> None:
        run_id = event["run_id"]
        seq = int(event["seq"])
        last = self._last.get(run_id)
        if last is None:  # an all-runs subscriber meeting this run for the first time
            last = seq - 1
        if seq <= last:
            return  # already sent (replayed, or a redelivered update)
        held = self._held.setdefault(run_id, {})
        held[seq] = event
        if seq > last + 1 and last + 1 not in held:
            for stored in self.store.list_events(run_id, after_seq=last, limit=seq - last - 1):
                held.setdefault(int(stored["seq"]), stored)
        while last + 1 in held:
            last += 1
            self._send("event", _public(held.pop(last)))
        self._last[run_id] = last
        if not held:
            self._held.pop(run_id, None)

    def _send(self, kind: str, data: Any) -> None:
        if self.closed:
            raise FeedClosed
        try:
            self.send(kind, data)
        except Exception as exc:
            raise FeedClosed from exc


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("_")}


class LiveHub:
    """Fans updates from the bus out to subscribers; remembers when each runner last beat."""

    def __init__(self, store: Store, bus: Bus) -> None:
        self.store = store
        self.bus = bus
        self._subs: set[FeedSubscriber] = set()
        self._lock = threading.Lock()
        self._subscription: Subscription | None = None
        self.runners: dict[str, dict[str, Any]] = {}
        self.clients = 0
        self.count_persisted = True
        """Count persisted events from updates into ``events_persisted`` (off when the consumer
        runs in this process and counts them itself)."""

    def start(self) -> None:
        self._subscription = self.bus.consume_updates(self._on_updates)

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.stop()
            self._subscription = None
        with self._lock:
            subs = list(self._subs)
            self._subs.clear()
        for sub in subs:
            sub.close()

    def add(self, sub: FeedSubscriber) -> None:
        with self._lock:
            self._subs.add(sub)

    def remove(self, sub: FeedSubscriber) -> None:
        sub.close()
        with self._lock:
            self._subs.discard(sub)

    def client_connected(self, delta: int) -> None:
        from snakedeck.metrics import WEBSOCKET_CLIENTS

        with self._lock:
            self.clients += delta
            WEBSOCKET_CLIENTS.set(self.clients)

    def runner_status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            rid: {"seconds_since_heartbeat": round(now - beat["seen"], 1), "runs": beat["runs"]}
            for rid, beat in list(self.runners.items())
        }

    def _on_updates(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            try:
                body = delivery.json()
            except ValueError:
                log.warning("dropping an update that is not JSON: %r", delivery.body[:200])
                delivery.ack()
                continue
            kind = body.get("kind") if isinstance(body, dict) else None
            if kind == "heartbeat":
                self.runners[str(body.get("runner_id"))] = {
                    "seen": time.monotonic(),
                    "runs": list(body.get("runs") or []),
                    "ts": body.get("ts"),
                }
            elif kind == "persisted":
                if self.count_persisted:
                    from snakedeck.metrics import EVENTS_PERSISTED

                    EVENTS_PERSISTED.inc(len(body.get("events") or []))
                with self._lock:
                    subs = list(self._subs)
                for sub in subs:
                    sub.offer(body)
            delivery.ack()


# -- Socket.IO ----------------------------------------------------------------------------------
def init_socketio(app: Flask, hub: LiveHub) -> Any:
    """Socket.IO at /socket.io: ``subscribe`` {run_id | all, after_seq} → ack {last_seq}."""
    from flask_socketio import SocketIO, join_room, leave_room

    try:
        from gevent import monkey

        async_mode = "gevent" if monkey.is_module_patched("socket") else "threading"
    except ImportError:
        async_mode = "threading"
    sio = SocketIO(app, async_mode=async_mode, json=json)
    auth = app.extensions["snakedeck.auth"]
    by_sid: dict[str, dict[str, FeedSubscriber]] = {}
    lock = threading.Lock()

    @sio.on("connect")
    def connect(data: object = None) -> bool:
        if not auth.accepts(auth.socketio_token(data)):
            raise ConnectionRefusedError("unauthorized: a valid API token is required")
        with lock:
            by_sid[request.sid] = {}  # type: ignore[attr-defined]
        hub.client_connected(+1)
        return True

    @sio.on("disconnect")
    def disconnect(*_: object) -> None:
        with lock:
            subs = by_sid.pop(request.sid, {})  # type: ignore[attr-defined]
        for sub in subs.values():
            hub.remove(sub)
        hub.client_connected(-1)

    @sio.on("subscribe")
    def subscribe(data: object = None) -> dict[str, Any]:
        sid: str = request.sid  # type: ignore[attr-defined]
        try:
            run_id, after_seq = _parse_subscribe(data, hub.store)
        except SubscribeError as exc:
            return {"error": exc.problem}
        key = f"run:{run_id}" if run_id else "runs"

        def send(kind: str, payload: Any) -> None:
            sio.emit(kind, payload, to=sid)

        sub = FeedSubscriber(hub.store, send, run_id=run_id, after_seq=after_seq)
        with lock:
            if sid not in by_sid:
                return {"error": {"status": 410, "detail": "the connection is gone"}}
            old = by_sid[sid].pop(key, None)
            by_sid[sid][key] = sub
        if old is not None:
            hub.remove(old)
        hub.add(sub)  # buffer live updates from here on, before the store is read
        last = sub.replay()
        join_room(key)
        sio.start_background_task(sub.pump)
        return {"last_seq": last, "room": key}

    @sio.on("unsubscribe")
    def unsubscribe(data: object = None) -> dict[str, Any]:
        sid: str = request.sid  # type: ignore[attr-defined]
        run_id = data.get("run_id") if isinstance(data, dict) else None
        key = f"run:{run_id}" if run_id else "runs"
        with lock:
            sub = by_sid.get(sid, {}).pop(key, None)
        if sub is not None:
            hub.remove(sub)
            leave_room(key)
        return {"unsubscribed": sub is not None}

    return sio


class SubscribeError(Exception):
    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.problem: dict[str, Any] = {"status": status, "detail": detail}
        if field:
            self.problem["errors"] = [{"field": field, "message": detail}]


def _parse_subscribe(data: object, store: Store) -> tuple[str | None, int]:
    """``{"run_id": …}`` or ``{"all": true}``, optional ``after_seq`` (run subscriptions only)."""
    if not isinstance(data, dict):
        raise SubscribeError(422, 'send {"run_id": "..."} or {"all": true}', "body")
    after = data.get("after_seq", 0)
    if after is None:
        after = 0
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise SubscribeError(422, "after_seq must be an integer ≥ 0", "after_seq")
    if data.get("all") is True:
        return None, 0
    run_id = data.get("run_id")
    if not isinstance(run_id, str) or not envelope.is_valid_run_id(run_id):
        raise SubscribeError(422, 'run_id must be a run id (or send {"all": true})', "run_id")
    if store.get_run(run_id) is None:
        raise SubscribeError(404, f"no run with id {run_id!r}", "run_id")
    return run_id, after


# -- plain WebSocket ----------------------------------------------------------------------------
def init_websocket(app: Flask, hub: LiveHub) -> None:
    """/ws/runs/<run_id>?after_seq=N and /ws/runs: messages ``{"type": kind, "data": …}``."""
    from flask_sock import Sock

    sock = Sock(app)
    auth = app.extensions["snakedeck.auth"]

    @app.before_request
    def _check_ws() -> Response | None:
        if not request.path.startswith("/ws/"):
            return None
        refusal = auth.check_socket(request)
        if refusal is not None:
            return refusal
        from gateway.problems import problem

        parts = request.path.rstrip("/").split("/")
        run_id = parts[3] if len(parts) > 3 else None
        try:
            _parse_subscribe(
                {"run_id": run_id, "after_seq": _int_arg("after_seq")} if run_id else {"all": True},
                hub.store,
            )
        except SubscribeError as exc:
            status = exc.problem["status"]
            return problem(
                status,
                "Not found" if status == 404 else "Invalid request",
                exc.problem["detail"],
                errors=exc.problem.get("errors"),
            )
        return None

    def serve(ws: Any, run_id: str | None) -> None:
        def send(kind: str, payload: Any) -> None:
            ws.send(json.dumps({"type": kind, "data": payload}, separators=(",", ":")))

        after = _int_arg("after_seq")
        sub = FeedSubscriber(hub.store, send, run_id=run_id, after_seq=after or 0)
        hub.add(sub)
        hub.client_connected(+1)
        try:
            sub.replay()
            while not sub.closed and ws.connected:
                sub.pump(timeout=POLL_SECONDS)
        except Exception as exc:  # noqa: BLE001 - the client closing ends the feed
            current_app.logger.debug("websocket feed ended: %r", exc)
        finally:
            hub.remove(sub)
            hub.client_connected(-1)

    @sock.route("/ws/runs/<run_id>")
    def ws_run(ws: Any, run_id: str) -> None:
        serve(ws, run_id)

    @sock.route("/ws/runs")
    def ws_all(ws: Any) -> None:
        serve(ws, None)


def _int_arg(name: str) -> Any:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return 0
    try:
        return int(raw)
    except ValueError:
        return raw  # left for _parse_subscribe to name
