"""Bus calls from request handlers, made on one long-lived worker.

``AmqpBus`` keeps one connection per thread. Under gevent every request is a new greenlet (and
so a new "thread"), which would open, and keep, one RabbitMQ connection per request. Funnelling
the gateway's publishes and pings through one worker keeps it to one connection per process.
Consuming (``consume_updates``) still gets its own thread from the bus.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from snakedeck.bus.base import Bus, Handler, Subscription

CALL_TIMEOUT = 60.0


class _Call:
    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class SerialBus(Bus):
    """A :class:`Bus` whose calls all run on one worker thread (greenlet under gevent)."""

    def __init__(self, inner: Bus) -> None:
        super().__init__(inner.topology.namespace)
        self.inner = inner
        self._calls: queue.Queue[_Call | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="gateway-bus", daemon=True)
        self._worker.start()

    def _work(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            try:
                call.result = call.fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                call.error = exc
            call.done.set()

    def _run(self, fn: Callable[[], Any]) -> Any:
        call = _Call(fn)
        self._calls.put(call)
        if not call.done.wait(CALL_TIMEOUT):
            from snakedeck.bus.base import BusError

            raise BusError("the message bus did not answer in time")
        if call.error is not None:
            raise call.error
        return call.result

    def declare(self) -> None:
        self._run(self.inner.declare)

    def publish_events(self, messages: Any) -> None:
        msgs = list(messages)
        self._run(lambda: self.inner.publish_events(msgs))

    def publish_update(self, body: dict[str, Any]) -> None:
        self._run(lambda: self.inner.publish_update(body))

    def submit_run(self, command: dict[str, Any]) -> None:
        self._run(lambda: self.inner.submit_run(command))

    def send_control(self, command: dict[str, Any]) -> None:
        self._run(lambda: self.inner.send_control(command))

    def consume_persist(self, handler: Handler, **kw: Any) -> Subscription:
        return self.inner.consume_persist(handler, **kw)

    def consume_runs(self, handler: Handler, *, prefetch: int) -> Subscription:
        return self.inner.consume_runs(handler, prefetch=prefetch)

    def consume_control(self, handler: Handler) -> Subscription:
        return self.inner.consume_control(handler)

    def consume_updates(self, handler: Handler) -> Subscription:
        return self.inner.consume_updates(handler)

    def dead_letters(self, limit: int = 100) -> list[bytes]:
        return self._run(lambda: self.inner.dead_letters(limit))

    def queue_depth(self, queue: str) -> int:
        return self._run(lambda: self.inner.queue_depth(queue))

    def ping(self) -> None:
        self._run(self.inner.ping)

    def stop_worker(self) -> None:
        """Stop the worker but leave the wrapped bus open (its owner closes it)."""
        self._calls.put(None)

    def close(self) -> None:
        self.stop_worker()
        self.inner.close()
