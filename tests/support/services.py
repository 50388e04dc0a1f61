"""Real services for the tests: RabbitMQ on localhost and mongoeco's MongoDB wire server.

In CI (``CI=true``) a missing service fails the run; elsewhere the tests needing it skip.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Coroutine
from typing import Any
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
    """mongoeco's wire-protocol server in its own event-loop thread.

    The data lives in an in-process client the server does not own, so :meth:`outage` can take
    the server away (every connection dropped, new ones refused) and bring it back on the same
    port with its data, as a real MongoDB would come back from a restart."""

    def __init__(self) -> None:
        self.uri = ""
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._client = None
        self._server = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mongo-wire", daemon=True
        )

    def _call(self, coro: Coroutine[Any, Any, None], timeout: float = 30) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _open(self) -> None:
        from mongoeco.api import AsyncMongoClient
        from mongoeco.wire import AsyncMongoEcoProxyServer

        if self._client is None:
            self._client = AsyncMongoClient()
            await self._client.__aenter__()
        self._server = AsyncMongoEcoProxyServer(client=self._client, port=self.port)
        address = await self._server.start()
        self.port = address.port
        self.uri = f"mongodb://{address.host}:{address.port}/?directConnection=true"

    async def _close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    def start(self) -> MongoWireServer:
        if not self._thread.is_alive():
            self._thread.start()
        try:
            self._call(self._open())
        except Exception as exc:
            raise RuntimeError(f"mongo wire server did not start: {exc!r}") from exc
        return self

    def down(self) -> None:
        """Take the server away: connections drop, new ones are refused; data is kept."""
        self._call(self._close())

    def stop(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
