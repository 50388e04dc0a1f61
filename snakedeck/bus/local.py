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
    NOTIFY_BINDINGS,
    Bus,
    BusError,
    ConsumeOptions,
    DeadLetter,
    Delivery,
    Handler,
    Outgoing,
    QueueKind,
    Settlement,
    Subscription,
)
from snakedeck.envelope import now_iso

log = logging.getLogger(__name__)


@dataclass
class _Message:
    body: bytes
    routing_key: str
    message_id: str | None
    redelivered: bool = False
    dead: DeadLetter | None = None
    """Set once the message is in the dead-letter queue: why, and where from."""


class _Queue:
    def __init__(self, name: str, kind: str, dead: _Queue | None = None) -> None:
        self.name = name
        self.kind = kind
        self.ready: deque[_Message] = deque()
        self.dead = dead
        """Where ``dead_letter`` files a message."""

    def file_dead(self, msg: _Message, reason: str) -> None:
        if self.dead is None:
            return
        letter = DeadLetter(msg.body, reason, self.kind, msg.routing_key, msg.message_id, now_iso())
        self.dead.ready.append(_Message(msg.body, msg.routing_key, msg.message_id, dead=letter))


class _Broker:
    """All queues of one namespace, guarded by one condition variable."""

    def __init__(self, bus: Bus) -> None:
        t = bus.topology
        self.cond = threading.Condition()
        self.dead = _Queue(t.dead, "dead")
        self.persist = _Queue(t.persist, "persist", self.dead)
        self.notify = _Queue(t.notify, "notify", self.dead)
        self.runs = _Queue(t.runs, "runs", self.dead)
        self.updates: set[_Queue] = set()
        self.control: set[_Queue] = set()
        self.runners: dict[str, _Queue] = {}

    def runner(self, name: str) -> _Queue:
        """A runner's own queue (made on first use, kept while the process lives)."""
        queue = self.runners.get(name)
        if queue is None:
            queue = self.runners[name] = _Queue(name, "runner", self.dead)
        return queue

    def queue(self, name: str) -> _Queue | None:
        for q in (self.persist, self.notify, self.runs, self.dead):
            if name in (q.name, q.name.rsplit(".", 1)[-1]):
                return q
        return self.runners.get(name)


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

    def wait_ready(self, timeout: float) -> bool:
        return True  # registered on creation

    @property
    def healthy(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    @property
    def connections(self) -> int:
        return 1

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

            def settle_auto(kind: Settlement, reason: str, msg: _Message = msg) -> None:
                if kind == "dead":
                    with self._broker.cond:
                        self._queue.file_dead(msg, reason)

            return Delivery(msg.body, msg.routing_key, msg.message_id, msg.redelivered, settle_auto)
        self._next_id += 1
        tag = self._next_id
        self._unsettled[tag] = msg
        return Delivery(
            msg.body,
            msg.routing_key,
            msg.message_id,
            msg.redelivered,
            lambda kind, reason, tag=tag: self._settle(tag, kind, reason),
        )

    def _settle(self, tag: int, kind: Settlement, reason: str) -> None:
        with self._broker.cond:
            msg = self._unsettled.pop(tag, None)
            if msg is None:
                if self._stopped:
                    return  # already returned to the queue by stop()
                raise BusError("delivery was already settled (ack, requeue or dead_letter once)")
            if kind == "requeue":
                msg.redelivered = True
                self._queue.ready.appendleft(msg)
            elif kind == "dead":
                self._queue.file_dead(msg, reason)
            elif kind != "ack":
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


def _notifies(routing_key: str) -> bool:
    """Whether the notify queue's bindings (``run.*.<type>``) take this routing key."""
    parts = routing_key.split(".")
    return len(parts) == 3 and any(
        [parts[0], parts[2]] == [key.split(".")[0], key.split(".")[2]] for key in NOTIFY_BINDINGS
    )


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

    def publish_events(self, messages: Iterable[Outgoing], *, timeout: float | None = None) -> None:
        self._check()
        every = [_Message(m.encode(), m.routing_key, m.message_id) for m in messages]
        # the persist queue's binding is run.#
        encoded = [m for m in every if m.routing_key.startswith("run.")]
        notified = [m for m in every if _notifies(m.routing_key)]
        with self._broker.cond:
            self._broker.persist.ready.extend(encoded)
            self._broker.notify.ready.extend(
                _Message(m.body, m.routing_key, m.message_id) for m in notified
            )
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

    def send_to_runner(self, runner_id: str, command: dict[str, Any]) -> None:
        self._check()
        name = self.topology.runner(runner_id)
        with self._broker.cond:
            self._broker.runner(name).ready.append(_Message(_encode(command), name, None))
            self._broker.cond.notify_all()

    def _subscribe(
        self, kind: QueueKind, handler: Handler, options: ConsumeOptions, *, queue: str = ""
    ) -> Subscription:
        self._check()
        on_stop = None
        if kind == "persist":
            target = self._broker.persist
        elif kind == "notify":
            target = self._broker.notify
        elif kind == "runs":
            target = self._broker.runs
        elif kind == "runner":
            with self._broker.cond:
                target = self._broker.runner(queue)
        else:  # a fanout: this subscriber's own queue, bound while it runs
            group = self._broker.control if kind == "control" else self._broker.updates
            name = self.topology.control if kind == "control" else self.topology.updates
            own = target = _Queue(name, kind, self._broker.dead)
            with self._broker.cond:
                group.add(own)

            def on_stop() -> None:
                with self._broker.cond:
                    group.discard(own)

        sub = _LocalSubscription(
            self._broker,
            target,
            handler,
            options=options,
            on_stop=on_stop,
        )
        self._subs.append(sub)
        return sub

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        self._check()
        with self._broker.cond:
            return [m.dead for m in list(self._broker.dead.ready)[:limit] if m.dead is not None]

    def replay_dead_letters(self, limit: int | None = None) -> int:
        self._check()
        targets = {"persist": self._broker.persist, "runs": self._broker.runs}
        with self._broker.cond:
            moved = 0
            kept: deque[_Message] = deque()
            while self._broker.dead.ready:
                msg = self._broker.dead.ready.popleft()
                target = targets.get(msg.dead.queue if msg.dead else "")
                if msg.dead is not None and msg.dead.queue == "runner":
                    target = self._broker.runner(msg.routing_key)
                if target is None or (limit is not None and moved >= limit):
                    kept.append(msg)
                    continue
                target.ready.append(_Message(msg.body, msg.routing_key, msg.message_id))
                moved += 1
            self._broker.dead.ready = kept
            self._broker.cond.notify_all()
            return moved

    def purge_dead_letters(self) -> int:
        self._check()
        with self._broker.cond:
            n = len(self._broker.dead.ready)
            self._broker.dead.ready.clear()
            return n

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
