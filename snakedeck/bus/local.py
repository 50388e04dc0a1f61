"""The in-process bus for standalone mode: gateway, runner and consumer in one process.

Same semantics as RabbitMQ where snakedeck relies on them: persist and runs queues with
requeue (``redelivered=True``) and dead-lettering, a prefetch limit on runs, fanout of updates and
control to every subscriber. Queues live in a process-wide registry keyed by namespace, so two
``open_bus`` calls with the same namespace share them. Nothing survives the process.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from snakedeck.bus.base import (
    Bus,
    BusError,
    ConsumeOptions,
    Delivery,
    Handler,
    Outgoing,
    QueueKind,
    Subscription,
)

log = logging.getLogger(__name__)


@dataclass
class _Message:
    body: bytes
    routing_key: str
    message_id: str | None
    redelivered: bool = False


class _Queue:
    def __init__(self, name: str, dead: _Queue | None = None) -> None:
        self.name = name
        self.ready: deque[_Message] = deque()
        self.dead = dead
        """Where ``dead_letter`` sends a message; ``None`` drops it (exclusive fanout queues)."""


class _Broker:
    """All queues of one namespace, guarded by one condition variable."""

    def __init__(self, bus: Bus) -> None:
        t = bus.topology
        self.cond = threading.Condition()
        self.dead = _Queue(t.dead)
        self.persist = _Queue(t.persist, self.dead)
        self.runs = _Queue(t.runs, self.dead)
        self.updates: set[_Queue] = set()
        self.control: set[_Queue] = set()

    def queue(self, name: str) -> _Queue | None:
        for q in (self.persist, self.runs, self.dead):
            if name in (q.name, q.name.rsplit(".", 1)[-1]):
                return q
        return None


_REGISTRY: dict[str, _Broker] = {}
_REGISTRY_LOCK = threading.Lock()


class _LocalSubscription(Subscription):
    def __init__(
        self,
        broker: _Broker,
        queue: _Queue,
        handler: Handler,
        *,
        options: ConsumeOptions,
        on_stop: Any = None,
    ) -> None:
        self._broker = broker
        self._queue = queue
        self._handler = handler
        self._options = options
        self._on_stop = on_stop
        self._unsettled: dict[int, _Message] = {}
        self._next_id = 0
        self._stopped = False
        self._thread = threading.Thread(
            target=self._loop, name=f"localbus:{queue.name}", daemon=True
        )
        self._thread.start()

    def _room(self) -> int:
        room = self._options.batch_size
        if self._options.prefetch is not None:
            room = min(room, self._options.prefetch - len(self._unsettled))
        return room

    def _take(self) -> list[Delivery] | None:
        """Wait for deliverable messages (honouring prefetch and max_wait); None once stopped."""
        cond = self._broker.cond
        q = self._queue
        with cond:
            while not self._stopped and (not q.ready or self._room() <= 0):
                cond.wait(0.5)
            if self._stopped:
                return None
            if self._options.max_wait > 0 and len(q.ready) < self._room():
                deadline = time.monotonic() + self._options.max_wait
                while not self._stopped and len(q.ready) < self._room():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    cond.wait(left)
                if self._stopped:
                    return None
            batch: list[Delivery] = []
            for _ in range(max(0, min(self._room(), len(q.ready)))):
                msg = q.ready.popleft()
                batch.append(self._delivery(msg))
            return batch

    def _delivery(self, msg: _Message) -> Delivery:
        if self._options.auto_ack:
            return Delivery(msg.body, msg.routing_key, msg.message_id, msg.redelivered, _noop)
        self._next_id += 1
        tag = self._next_id
        self._unsettled[tag] = msg
        return Delivery(
            msg.body,
            msg.routing_key,
            msg.message_id,
            msg.redelivered,
            lambda kind, tag=tag: self._settle(tag, kind),
        )

    def _settle(self, tag: int, kind: str) -> None:
        with self._broker.cond:
            msg = self._unsettled.pop(tag, None)
            if msg is None:
                if self._stopped:
                    return  # already returned to the queue by stop()
                raise BusError("delivery was already settled (ack, requeue or dead_letter once)")
            if kind == "requeue":
                msg.redelivered = True
                self._queue.ready.appendleft(msg)
            elif kind == "dead" and self._queue.dead is not None:
                self._queue.dead.ready.append(msg)
            elif kind not in ("ack", "dead"):
                raise BusError(f"unknown settlement {kind!r}")
            self._broker.cond.notify_all()

    def _loop(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            for part in [[d] for d in batch] if self._options.batch_size == 1 else [batch]:
                try:
                    self._handler(part)
                except Exception:  # a handler bug must not kill the consumer
                    log.exception("handler failed on %s; requeueing", self._queue.name)
                    _requeue_unsettled(part)
                    with self._broker.cond:
                        self._broker.cond.wait_for(lambda: self._stopped, 1.0)

    def stop(self) -> None:
        with self._broker.cond:
            if self._stopped:
                return
            self._stopped = True
            # Unsettled deliveries go back to the front of the queue, as RabbitMQ does.
            for msg in reversed(list(self._unsettled.values())):
                msg.redelivered = True
                self._queue.ready.appendleft(msg)
            self._unsettled.clear()
            self._broker.cond.notify_all()
        if self._on_stop is not None:
            self._on_stop()
        if threading.current_thread() is not self._thread:
            self._thread.join(10)


def _requeue_unsettled(deliveries: list[Delivery]) -> None:
    for d in deliveries:
        with contextlib.suppress(BusError):  # the handler settled this one before failing
            d.requeue()


def _noop(kind: str) -> None:
    """Fanout subscriptions are auto-acknowledged; settling them is a no-op."""


def _encode(body: dict[str, Any]) -> bytes:
    return Outgoing("", body).encode()


class LocalBus(Bus):
    """In-memory bus shared by every ``LocalBus`` of the same namespace in this process."""

    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        with _REGISTRY_LOCK:
            broker = _REGISTRY.get(namespace)
            if broker is None:
                broker = _REGISTRY[namespace] = _Broker(self)
        self._broker = broker
        self._subs: list[_LocalSubscription] = []
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise BusError(f"local bus {self.topology.namespace!r} is closed")

    def declare(self) -> None:
        self._check()

    def publish_events(self, messages: Iterable[Outgoing]) -> None:
        self._check()
        encoded = [
            _Message(m.encode(), m.routing_key, m.message_id)
            for m in messages
            if m.routing_key.startswith("run.")  # the persist queue's binding is run.#
        ]
        with self._broker.cond:
            self._broker.persist.ready.extend(encoded)
            self._broker.cond.notify_all()

    def _fanout(self, queues: set[_Queue], body: dict[str, Any]) -> None:
        self._check()
        raw = _encode(body)
        with self._broker.cond:
            for q in queues:
                q.ready.append(_Message(raw, "", None))
            self._broker.cond.notify_all()

    def publish_update(self, body: dict[str, Any]) -> None:
        self._fanout(self._broker.updates, body)

    def submit_run(self, command: dict[str, Any]) -> None:
        self._check()
        with self._broker.cond:
            self._broker.runs.ready.append(_Message(_encode(command), self.topology.runs, None))
            self._broker.cond.notify_all()

    def send_control(self, command: dict[str, Any]) -> None:
        self._fanout(self._broker.control, command)

    def _subscribe(
        self, kind: QueueKind, handler: Handler, options: ConsumeOptions
    ) -> Subscription:
        self._check()
        on_stop = None
        if kind == "persist":
            queue = self._broker.persist
        elif kind == "runs":
            queue = self._broker.runs
        else:  # a fanout: this subscriber's own queue, bound while it runs
            group = self._broker.control if kind == "control" else self._broker.updates
            queue = _Queue(self.topology.control if kind == "control" else self.topology.updates)
            with self._broker.cond:
                group.add(queue)

            def on_stop() -> None:
                with self._broker.cond:
                    group.discard(queue)

        sub = _LocalSubscription(
            self._broker,
            queue,
            handler,
            options=options,
            on_stop=on_stop,
        )
        self._subs.append(sub)
        return sub

    def dead_letters(self, limit: int = 100) -> list[bytes]:
        self._check()
        with self._broker.cond:
            return [m.body for m in list(self._broker.dead.ready)[:limit]]

    def queue_depth(self, queue: str) -> int:
        self._check()
        q = self._broker.queue(queue)
        if q is None:
            raise BusError(f"no queue named {queue!r} in namespace {self.topology.namespace!r}")
        with self._broker.cond:
            return len(q.ready)

    def ping(self) -> None:
        self._check()

    def delete_topology(self) -> None:
        """Forget this namespace's queues (tests' teardown)."""
        with _REGISTRY_LOCK:
            _REGISTRY.pop(self.topology.namespace, None)

    def close(self) -> None:
        for sub in self._subs:
            sub.stop()
        self._subs.clear()
        self._closed = True
