"""The one message-bus interface, after Dramatiq's ``Broker``: RabbitMQ in production
(:mod:`snakedeck.bus.amqp`), an in-process implementation for standalone mode and tests
(:mod:`snakedeck.bus.local`). Both pass ``tests/contract/test_bus_contract.py``.

Topology (every name prefixed with the namespace):

- ``<ns>.events``   topic exchange, durable; routing key ``run.<run_id>.<type>``
- ``<ns>.persist``  durable queue bound to ``run.#`` on events; dead-letters to ``<ns>.dead``
- ``<ns>.updates``  fanout exchange; each gateway binds its own exclusive queue
- ``<ns>.runs``     durable queue of submit commands (prefetch = MAX_RUNS); dead-letters too
- ``<ns>.control``  fanout exchange of control commands (cancel); each runner binds its own queue
- ``<ns>.dlx`` / ``<ns>.dead``  dead-letter exchange and queue
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal


class BusError(RuntimeError):
    """The bus could not take or deliver a message (broker down, channel closed, nack)."""


@dataclass(frozen=True)
class Topology:
    namespace: str

    @property
    def events(self) -> str:
        return f"{self.namespace}.events"

    @property
    def persist(self) -> str:
        return f"{self.namespace}.persist"

    @property
    def updates(self) -> str:
        return f"{self.namespace}.updates"

    @property
    def runs(self) -> str:
        return f"{self.namespace}.runs"

    @property
    def control(self) -> str:
        return f"{self.namespace}.control"

    @property
    def dlx(self) -> str:
        return f"{self.namespace}.dlx"

    @property
    def dead(self) -> str:
        return f"{self.namespace}.dead"


@dataclass(frozen=True)
class Outgoing:
    """One message to publish: JSON body, routing key, and an id consumers may de-duplicate on."""

    routing_key: str
    body: dict[str, Any]
    message_id: str | None = None

    def encode(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Delivery:
    """A received message. Exactly one of ack / nack / dead_letter must be called."""

    body: bytes
    routing_key: str
    message_id: str | None
    redelivered: bool
    _settle: Callable[[str], None] = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.body)

    def ack(self) -> None:
        self._settle("ack")

    def requeue(self) -> None:
        self._settle("requeue")

    def dead_letter(self) -> None:
        self._settle("dead")


QueueKind = Literal["persist", "runs", "control", "updates"]


@dataclass(frozen=True)
class ConsumeOptions:
    """How a subscription takes messages: the one place these policies are set."""

    batch_size: int
    max_wait: float
    prefetch: int | None
    """Most unsettled deliveries at once; ``None``: no limit."""
    auto_ack: bool
    """Settled on arrival (best-effort fanouts); otherwise the handler settles each delivery."""


Handler = Callable[[Sequence[Delivery]], None]
"""Receives a batch of deliveries (one or more) and settles each of them."""


class Subscription(abc.ABC):
    @abc.abstractmethod
    def stop(self) -> None:
        """Stop consuming; unsettled deliveries go back to the queue."""


class Bus(abc.ABC):
    """Publish and consume snakedeck's messages. Thread-safe: each thread gets its own channel."""

    def __init__(self, namespace: str) -> None:
        self.topology = Topology(namespace)

    # -- topology -------------------------------------------------------------------------------
    @abc.abstractmethod
    def declare(self) -> None:
        """Create exchanges and durable queues (idempotent)."""

    # -- publishing (each returns once the broker has confirmed) --------------------------------
    @abc.abstractmethod
    def publish_events(self, messages: Iterable[Outgoing]) -> None:
        """Publish persistent messages to the events exchange, many in flight, and return when
        every one is confirmed. Raises :class:`BusError` if any was not."""

    @abc.abstractmethod
    def publish_update(self, body: dict[str, Any]) -> None:
        """Fan an already-persisted update out to every gateway."""

    @abc.abstractmethod
    def submit_run(self, command: dict[str, Any]) -> None:
        """Enqueue a run for a runner (persistent)."""

    @abc.abstractmethod
    def send_control(self, command: dict[str, Any]) -> None:
        """Broadcast a control command (e.g. cancel) to every runner."""

    # -- consuming (each handler runs on a background thread owned by the bus) ------------------
    def consume_persist(
        self, handler: Handler, *, batch_size: int = 500, max_wait: float = 0.05
    ) -> Subscription:
        """Deliver events from the persist queue in batches of up to ``batch_size``."""
        options = ConsumeOptions(batch_size, max_wait, prefetch=batch_size * 2, auto_ack=False)
        return self._subscribe("persist", handler, options)

    def consume_runs(self, handler: Handler, *, prefetch: int) -> Subscription:
        """Deliver submit commands one at a time; at most ``prefetch`` unsettled at once."""
        if prefetch < 1:
            raise BusError(f"prefetch must be at least 1, got {prefetch}")
        return self._subscribe("runs", handler, ConsumeOptions(1, 0, prefetch, auto_ack=False))

    def consume_control(self, handler: Handler) -> Subscription:
        """Deliver every control command to this process (own exclusive queue)."""
        return self._subscribe("control", handler, ConsumeOptions(1, 0, None, auto_ack=True))

    def consume_updates(self, handler: Handler) -> Subscription:
        """Deliver every update to this process (own exclusive queue); best effort."""
        return self._subscribe("updates", handler, ConsumeOptions(100, 0, None, auto_ack=True))

    @abc.abstractmethod
    def _subscribe(
        self, kind: QueueKind, handler: Handler, options: ConsumeOptions
    ) -> Subscription:
        """Start a consumer thread on the queue of ``kind`` (for fanouts: a new own queue)."""

    # -- inspection -----------------------------------------------------------------------------
    @abc.abstractmethod
    def dead_letters(self, limit: int = 100) -> list[bytes]:
        """Read (without removing) up to ``limit`` dead-lettered message bodies."""

    @abc.abstractmethod
    def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (for the consumer-lag metric)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`BusError` if the bus is unreachable."""

    @abc.abstractmethod
    def close(self) -> None: ...
