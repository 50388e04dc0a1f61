"""The one message-bus interface, after Dramatiq's ``Broker``: RabbitMQ in production
(:mod:`snakedeck.bus.amqp`), an in-process implementation for standalone mode and tests
(:mod:`snakedeck.bus.local`). Both pass ``tests/contract/test_bus_contract.py``.

Topology (every name prefixed with the namespace):

- ``<ns>.events``   topic exchange, durable; routing key ``run.<run_id>.<type>``
- ``<ns>.persist``  durable queue bound to ``run.#`` on events; dead-letters to ``<ns>.dead``
- ``<ns>.notify``   durable queue bound to ``run.*.run_state``, ``run.*.job_error`` and
  ``notify.*.run_state`` on events:
  what the notifier turns into webhooks and mails (it exists from the first declare, so no
  state change is missed while no notifier runs)
- ``<ns>.updates``  fanout exchange; each gateway binds its own exclusive queue
- ``<ns>.runs``     durable queue of submit commands (prefetch = MAX_RUNS); dead-letters too
- ``<ns>.control``  fanout exchange of control commands (cancel); each runner binds its own queue
- ``<ns>.runner.<runner_id>``  durable queue of one runner's own commands (resume a run whose
  work directory it holds); kept while the runner is away, so a command waits for it
- ``<ns>.dlx`` / ``<ns>.dead``  dead-letter exchange and queue
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal


class BusError(RuntimeError):
    """The bus could not take or deliver a message (broker down, channel closed, nack)."""


_RUNNER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_runner_id(runner_id: object) -> str:
    """A runner id names a queue: letters, digits, ``-``, ``_``, ``.`` (as runners make them)."""
    if not isinstance(runner_id, str) or not _RUNNER_ID_RE.match(runner_id):
        raise BusError(f"{runner_id!r} is not a runner id")
    return runner_id


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
    def notify(self) -> str:
        return f"{self.namespace}.notify"

    @property
    def updates(self) -> str:
        return f"{self.namespace}.updates"

    @property
    def runs(self) -> str:
        return f"{self.namespace}.runs"

    @property
    def control(self) -> str:
        return f"{self.namespace}.control"

    def runner(self, runner_id: str) -> str:
        """The queue of one runner's own commands."""
        return f"{self.namespace}.runner.{check_runner_id(runner_id)}"

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


Settlement = Literal["ack", "requeue", "dead"]


@dataclass
class Delivery:
    """A received message. Exactly one of ack / requeue / dead_letter must be called (on an
    auto-acknowledged subscription only dead_letter does anything: it files a copy)."""

    body: bytes
    routing_key: str
    message_id: str | None
    redelivered: bool
    _settle: Callable[[Settlement, str], None] = field(repr=False)

    def json(self) -> Any:
        """The body as JSON; any failure to decode (deep nesting included) is a ValueError."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ValueError("nested too deeply to decode") from None

    def ack(self) -> None:
        self._settle("ack", "")

    def requeue(self) -> None:
        self._settle("requeue", "")

    def dead_letter(self, reason: str) -> None:
        """Move the message to the dead-letter queue with ``reason`` beside it."""
        self._settle("dead", reason[:1000])


@dataclass(frozen=True)
class DeadLetter:
    """A message no part of snakedeck could use, as an operator inspects it."""

    body: bytes
    reason: str
    queue: str
    """Where it was taken from: ``persist``, ``runs``, ``runner``, ``control`` or ``updates``."""
    routing_key: str
    message_id: str | None
    dead_at: str

    def describe(self) -> dict[str, Any]:
        preview = self.body[:300].decode("utf-8", errors="replace")
        return {
            "reason": self.reason,
            "queue": self.queue,
            "routing_key": self.routing_key,
            "message_id": self.message_id,
            "dead_at": self.dead_at,
            "size": len(self.body),
            "preview": preview,
        }


REASON_HEADER = "x-snakedeck-reason"
QUEUE_HEADER = "x-snakedeck-queue"
ROUTING_KEY_HEADER = "x-snakedeck-routing-key"
DEAD_AT_HEADER = "x-snakedeck-dead-at"


QueueKind = Literal["persist", "notify", "runs", "runner", "control", "updates"]

NOTIFY_BINDINGS = ("run.*.run_state", "run.*.job_error", "notify.*.run_state")
"""The events the notify queue takes from the events exchange: ``run.<id>.<type>`` as every
event is routed, and ``notify.<id>.run_state``, a state declared outside the run's event stream
(the reaper's, for a lost runner), which the persist queue (``run.#``) never sees."""


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

    @abc.abstractmethod
    def wait_ready(self, timeout: float) -> bool:
        """True once the consumer is registered with the broker (a broadcast sent before that
        would not reach it); False if that did not happen within ``timeout`` seconds."""

    @property
    @abc.abstractmethod
    def healthy(self) -> bool:
        """Whether messages are flowing in now (connected and consuming)."""

    @property
    @abc.abstractmethod
    def connections(self) -> int:
        """How often this subscription has connected (1: it never had to reconnect)."""


class Bus(abc.ABC):
    """Publish and consume snakedeck's messages; every method is safe from any thread."""

    def __init__(self, namespace: str) -> None:
        self.topology = Topology(namespace)

    # -- topology -------------------------------------------------------------------------------
    @abc.abstractmethod
    def declare(self) -> None:
        """Create exchanges and durable queues (idempotent)."""

    @abc.abstractmethod
    def delete_topology(self) -> None:
        """Delete this namespace's exchanges and queues (tests' teardown; loses messages)."""

    # -- publishing (each returns once the broker has confirmed) --------------------------------
    @abc.abstractmethod
    def publish_events(self, messages: Iterable[Outgoing], *, timeout: float | None = None) -> None:
        """Publish persistent messages to the events exchange, many in flight, and return when
        every one is confirmed (within ``timeout`` seconds, default the bus's own). Raises
        :class:`BusError` if any was not."""

    @abc.abstractmethod
    def publish_update(self, body: dict[str, Any]) -> None:
        """Fan an already-persisted update out to every gateway."""

    @abc.abstractmethod
    def submit_run(self, command: dict[str, Any]) -> None:
        """Enqueue a run for a runner (persistent)."""

    @abc.abstractmethod
    def send_control(self, command: dict[str, Any]) -> None:
        """Broadcast a control command (e.g. cancel) to every runner."""

    @abc.abstractmethod
    def send_to_runner(self, runner_id: str, command: dict[str, Any]) -> None:
        """Enqueue a command (persistent) for one runner only; it waits in the runner's queue
        while that runner is away."""

    # -- consuming (each handler runs on a background thread owned by the bus) ------------------
    def consume_persist(
        self, handler: Handler, *, batch_size: int = 500, max_wait: float = 0.05
    ) -> Subscription:
        """Deliver events from the persist queue in batches of up to ``batch_size``."""
        options = ConsumeOptions(batch_size, max_wait, prefetch=batch_size * 2, auto_ack=False)
        return self._subscribe("persist", handler, options)

    def consume_notify(self, handler: Handler, *, prefetch: int) -> Subscription:
        """Deliver state changes and job failures from the notify queue, up to ``prefetch``
        at once and unsettled (the handler hands them to its own threads and settles later)."""
        if prefetch < 1:
            raise BusError(f"prefetch must be at least 1, got {prefetch}")
        options = ConsumeOptions(prefetch, 0.0, prefetch, auto_ack=False)
        return self._subscribe("notify", handler, options)

    def consume_runs(self, handler: Handler, *, prefetch: int) -> Subscription:
        """Deliver submit commands one at a time; at most ``prefetch`` unsettled at once."""
        if prefetch < 1:
            raise BusError(f"prefetch must be at least 1, got {prefetch}")
        return self._subscribe("runs", handler, ConsumeOptions(1, 0, prefetch, auto_ack=False))

    def consume_runner(self, runner_id: str, handler: Handler, *, prefetch: int) -> Subscription:
        """Deliver this runner's own commands one at a time (at most ``prefetch`` unsettled)."""
        if prefetch < 1:
            raise BusError(f"prefetch must be at least 1, got {prefetch}")
        options = ConsumeOptions(1, 0, prefetch, auto_ack=False)
        return self._subscribe("runner", handler, options, queue=self.topology.runner(runner_id))

    def consume_control(self, handler: Handler) -> Subscription:
        """Deliver every control command to this process (own exclusive queue)."""
        return self._subscribe("control", handler, ConsumeOptions(1, 0, None, auto_ack=True))

    def consume_updates(self, handler: Handler) -> Subscription:
        """Deliver every update to this process (own exclusive queue); best effort."""
        return self._subscribe("updates", handler, ConsumeOptions(100, 0, None, auto_ack=True))

    @abc.abstractmethod
    def _subscribe(
        self, kind: QueueKind, handler: Handler, options: ConsumeOptions, *, queue: str = ""
    ) -> Subscription:
        """Start a consumer thread on the queue of ``kind`` (for fanouts: a new own queue; for
        ``runner``: the named ``queue``)."""

    # -- dead letters ---------------------------------------------------------------------------
    @abc.abstractmethod
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Read (without removing) up to ``limit`` dead letters, oldest first."""

    @abc.abstractmethod
    def replay_dead_letters(self, limit: int | None = None) -> int:
        """Send up to ``limit`` dead letters (all: ``None``) back where they came from; returns
        how many. Only letters filed before the call move: a message that fails again comes
        back with a new reason and waits for the next replay."""

    @abc.abstractmethod
    def purge_dead_letters(self) -> int:
        """Delete every dead letter; returns how many."""

    # -- inspection -----------------------------------------------------------------------------

    @abc.abstractmethod
    def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (for the consumer-lag metric)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`BusError` if the bus is unreachable."""

    @abc.abstractmethod
    def close(self) -> None: ...
