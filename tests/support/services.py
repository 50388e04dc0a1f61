"""Real services for the tests: RabbitMQ on localhost and mongoeco's MongoDB wire server.

In CI (``CI=true``) a missing service fails the run; elsewhere the tests needing it skip.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from urllib.parse import urlparse

import pytest

AMQP_URL = os.environ.get("SNAKEDECK_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(what: str) -> None:
    """A missing service is a failure in CI and a skip on a developer's machine."""
    if IN_CI:
        pytest.fail(f"{what} is not available, and CI must not skip it")
    pytest.skip(f"{what} is not available")


def tcp_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 5672), timeout=2):
            return True
    except OSError:
        return False


def unique_namespace(prefix: str = "sdtest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class MongoWireServer:
    """mongoeco's wire-protocol server on an ephemeral port, in its own event-loop thread."""

    def __init__(self) -> None:
        self.uri = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mongo-wire", daemon=True)

    def _run(self) -> None:
        from mongoeco.wire import AsyncMongoEcoProxyServer

        async def main() -> None:
            self._server = AsyncMongoEcoProxyServer()
            address = await self._server.start()
            self.uri = f"mongodb://{address.host}:{address.port}/?directConnection=true"
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await self._server.close()

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()

    def start(self) -> MongoWireServer:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None or not self.uri:
            raise RuntimeError(f"mongo wire server did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and hasattr(self, "_stop"):
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
