"""A local webhook receiver (a real ``http.server`` in a thread) that records every request and
can answer 500 to the first ones, and a local SMTP sink (aiosmtpd) that keeps every mail."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    """What the receiver answered."""

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """``Receiver(fail_first=2).start()``; ``url("/hook")``; ``requests``; ``stop()``."""

    def __init__(self, *, fail_first: int = 0, status: int = 500, stall_first: float = 0) -> None:
        self.fail_first = fail_first
        self.stall_first = stall_first
        """Seconds the first request waits before it is answered (a sender's timeout)."""
        self.fail_status = status
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    first = not receiver.requests
                    failing = len(receiver.requests) < receiver.fail_first
                    status = receiver.fail_status if failing else 204
                    receiver.requests.append(
                        Received(self.path, dict(self.headers.items()), body, status)
                    )
                if first and receiver.stall_first:
                    time.sleep(receiver.stall_first)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def accepted(self, path: str | None = None) -> list[Received]:
        """The requests answered 2xx (at ``path``, if given)."""
        with self._lock:
            return [r for r in self.requests if r.status < 300 and (path is None or r.path == path)]

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message it is given."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        sink = self
        self.messages: list[Message] = []

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                sink.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        with socket.socket() as probe:  # aiosmtpd checks its port by connecting: not 0
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()
