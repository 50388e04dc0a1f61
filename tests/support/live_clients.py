"""A gateway served for real, and live-feed clients, for the integration tests.

**How the gateway runs in tests.** :class:`GatewayProcess` starts ``python -m cli gateway
--port 0`` (or ``standalone``) in a subprocess: the production server (gunicorn, one gevent
worker, Flask-SocketIO in gevent mode) with its monkey-patching confined to that process, so
pytest, pika and the runner in the test process keep ordinary threads. Settings travel as
``SNAKEDECK_*`` variables; the port is whatever gunicorn reports in its ``Listening at:`` line,
so parallel runs never collide.
Readiness is polled on ``/readyz``.

The clients (:class:`SocketIOFeed`, :class:`WebSocketFeed`) record every message they receive
in arrival order so tests can assert on the whole sequence.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import requests

from snakedeck.settings import Settings
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
WAIT = 120.0


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT, what: str = "") -> Any:
    """:func:`wait_for` with a longer default: a gateway process and a real run stand behind
    each condition here."""
    return wait_for(predicate, timeout, what or "condition")


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting a child process needs (the data dir and workflows dir always: relative
    defaults would name the child's working directory)."""
    return {
        **settings.to_env(),
        "SNAKEDECK_DATA_DIR": str(settings.data_dir),
        "SNAKEDECK_WORKFLOWS_DIR": str(settings.workflows_dir),
        "SNAKEDECK_NAMESPACE": settings.namespace,
    }


class GatewayProcess:
    """``snakedeck gateway`` (or ``standalone``) on an ephemeral port, stopped with SIGTERM."""

    def __init__(
        self, settings: Settings, *, standalone: bool = False, prefix: Sequence[str] = ()
    ) -> None:
        self.settings = settings
        self.prefix = tuple(prefix)  # e.g. ``ip netns exec NS``: the gateway on another host
        self.standalone = standalone
        self.url = ""
        self.output: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._listening = threading.Event()

    @staticmethod
    def workflows_dir() -> Path:
        return REPO / "workflows"

    def start(self, timeout: float = 60) -> GatewayProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
        env.update(settings_env(self.settings))
        env["PYTHONUNBUFFERED"] = "1"
        role = "standalone" if self.standalone else "gateway"
        port = self.url.rsplit(":", 1)[-1] if self.url else "0"  # a restart keeps its port
        self._listening.clear()
        cmd = [*self.prefix, sys.executable, "-m", "cli", role, "--port", port]
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._listening.wait(timeout):
            self.stop()
            raise RuntimeError("gateway did not start:\n" + self.log())
        wait_until(self._ready, timeout, f"gateway at {self.url} to be ready\n{self.log()}")
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.output.append(line.rstrip())
            m = re.search(r"Listening at: (http://\S+)", line)
            if m:
                self.url = m.group(1)
                self._listening.set()

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError("gateway exited:\n" + self.log())
        try:
            return requests.get(self.url + "/readyz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return "\n".join(self.output[-200:])

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class Pipeline:
    """Consumer (and optionally the real runner) in this process, gateway(s) in subprocesses,
    one namespace and one store. Stopping deletes the namespace's RabbitMQ topology."""

    def __init__(self, settings: Settings) -> None:
        from consumer.service import Consumer
        from snakedeck.bus import open_bus
        from snakedeck.store import open_store

        self.settings = settings
        self.store = open_store(settings)
        self.bus = open_bus(settings)
        self.bus.declare()
        self.consumer = Consumer(settings, self.store, self.bus)
        self.runner: Any = None
        self.gateways: list[GatewayProcess] = []

    def start(self, gateways: int = 1, *, runner: bool = False) -> Pipeline:
        self.consumer.start()
        if runner:
            from runner.service import Runner
            from snakedeck.bus import open_bus

            self.runner = Runner(self.settings, open_bus(self.settings), self.store)
            self.runner.start()
        for _ in range(gateways):
            self.gateways.append(GatewayProcess(self.settings).start())
        return self

    @property
    def url(self) -> str:
        return self.gateways[0].url

    def submit(self, config: dict[str, Any] | None = None) -> str:
        resp = requests.post(
            self.url + "/api/v1/runs",
            json={"workflow": "demo", "config": config or {}},
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        return resp.json()["run_id"]

    def publish(self, events: list[dict[str, Any]]) -> None:
        """As the forwarder does: persistent, confirmed, ``message_id`` run_id:seq."""
        from snakedeck import envelope
        from snakedeck.bus import Outgoing

        self.bus.publish_events(
            Outgoing(envelope.routing_key(e), e, envelope.message_id(e)) for e in events
        )

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()
        if self.runner is not None:
            self.runner.stop()
        self.consumer.stop()  # before any topology goes: it would see its queue deleted
        if self.runner is not None:
            delete_runner_queue = getattr(self.runner.bus, "delete_topology", None)
            if delete_runner_queue is not None:
                delete_runner_queue()  # the runner's own queue is durable
            self.runner.bus.close()
        delete = getattr(self.bus, "delete_topology", None)
        if delete is not None:
            delete()
        self.bus.close()
        self.store.close()


class Recorder:
    """Messages in arrival order, ``(kind, data)``, with waiting helpers."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any]] = []
        self.kinds: set[str] = set()
        """The kinds of message that came, as sent (``events``, not the events in it)."""
        self._lock = threading.Lock()

    def add(self, kind: str, data: Any) -> None:
        """One message; an ``events`` batch (``batch`` subscriptions) is kept as its events."""
        with self._lock:
            self.kinds.add(kind)
            if kind == "events" and isinstance(data, list):
                self.messages.extend(("event", e) for e in data)
            else:
                self.messages.append((kind, data))

    def events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                d
                for k, d in self.messages
                if k == "event" and (run_id is None or d.get("run_id") == run_id)
            ]

    def seqs(self, run_id: str) -> list[int]:
        return [e["seq"] for e in self.events(run_id)]

    def runs(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [d for k, d in self.messages if k == "run" and d.get("run_id") == run_id]

    def saw_state(self, run_id: str, states: set[str] | frozenset[str]) -> bool:
        return any(r.get("state") in states for r in self.runs(run_id))


class SocketIOFeed(Recorder):
    """A python-socketio client recording ``event``, ``run`` and ``job`` messages.

    With ``reconnect``, it behaves as a real client does (the CLI's follow, the dashboard):
    after a dropped connection it connects again and resubscribes after the last seq it has,
    and :attr:`reconnects` counts how often that happened."""

    def __init__(self, url: str, token: str | None = None, *, reconnect: bool = False) -> None:
        super().__init__()
        import socketio

        self.url = url
        self.token = token
        self.reconnects = 0
        self._subscriptions: list[dict[str, Any]] = []
        self.client = socketio.Client(reconnection=reconnect, reconnection_delay=0.5)
        self._record_in_arrival_order()
        for kind in ("event", "events", "run", "job", "log"):
            self.client.on(kind, self._handler(kind))
        if reconnect:
            self.client.on("connect", self._resubscribe)

    def _record_in_arrival_order(self) -> None:
        """engine.io's Python client hands each message to a thread of its own, so two events
        sent in order could be recorded out of it (seen in CI: seq 31 before 30). A browser's
        client handles them in order, and the order is what the tests check: handle each
        message on the read loop. (Acks still work: a ``call`` waits on another thread.)"""
        eio = self.client.eio
        trigger = eio._trigger_event

        def in_order(event: str, *args: Any, **kwargs: Any) -> Any:
            if event == "message":
                kwargs["run_async"] = False
            return trigger(event, *args, **kwargs)

        eio._trigger_event = in_order

    def _handler(self, kind: str) -> Callable[[Any], None]:
        return lambda data: self.add(kind, data)

    def _resubscribe(self) -> None:
        if not self._subscriptions:
            return
        self.reconnects += 1
        for payload in self._subscriptions:
            run_id = payload.get("run_id")
            again = dict(payload)
            if run_id:
                again["after_seq"] = max(self.seqs(run_id), default=payload.get("after_seq", 0))
            self.client.start_background_task(self.client.call, "subscribe", again, timeout=60)

    def connect(self) -> SocketIOFeed:
        self.client.connect(
            self.url,
            auth={"token": self.token} if self.token else None,
            transports=["websocket"],
            wait_timeout=20,
        )
        return self

    def subscribe(self, **payload: Any) -> dict[str, Any]:
        self._subscriptions.append(payload)
        return self.client.call("subscribe", payload, timeout=60)

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()


class WebSocketFeed(Recorder):
    """A plain WebSocket client (websocket-client) of /ws/runs[/<run_id>]."""

    def __init__(self, url: str, path: str) -> None:
        super().__init__()
        import websocket

        self.ws = websocket.create_connection(url.replace("http://", "ws://", 1) + path, timeout=30)
        self.ws.settimeout(None)  # as a browser's: a quiet feed (a store outage) is not an end
        self.ended: str | None = None
        """Why the feed ended (a failing test says it), ``None`` while it is open."""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        import websocket

        while True:
            try:
                raw = self.ws.recv()
            except (websocket.WebSocketException, OSError) as exc:
                self.ended = f"{type(exc).__name__}: {exc}"
                return
            if not raw:
                self.ended = "closed by the gateway"
                return
            message = json.loads(raw)
            self.add(message["type"], message["data"])

    def close(self) -> None:
        self.ws.close()
