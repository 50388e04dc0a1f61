"""The RabbitMQ bus (pika).

pika connections are not thread-safe, so:

- the small publishes (update, submit, control) and inspection share one lock-guarded
  BlockingConnection with publisher confirms;
- ``publish_events`` goes through one SelectConnection driven by its own I/O thread, so a whole
  batch is in flight at once and confirms (``multiple=True`` aware) are counted as they arrive;
- each ``consume_*`` runs on its own thread with its own connection, reconnects with back-off
  when the broker goes away, and settles acks on that thread (``add_callback_threadsafe`` when a
  handler settles from elsewhere).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties

from snakedeck.backoff import Backoff
from snakedeck.bus.base import (
    DEAD_AT_HEADER,
    NOTIFY_BINDINGS,
    QUEUE_HEADER,
    REASON_HEADER,
    ROUTING_KEY_HEADER,
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
# pika logs every lost socket at ERROR; without this, Python's last-resort handler would print
# them into a hand-run Snakemake's output during an outage. Apps that configure logging see them.
logging.getLogger("pika").addHandler(logging.NullHandler())

JSON = "application/json"
PERSISTENT = 2
RUNNER_QUEUE_EXPIRES_MS = 14 * 24 * 3600 * 1000
"""A runner's own queue goes after two weeks without a consumer (a runner retired for good);
a command sent later declares it again and waits there."""


def redact(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _props(message_id: str | None = None) -> BasicProperties:
    return BasicProperties(delivery_mode=PERSISTENT, content_type=JSON, message_id=message_id)


def _dead_letter(props: BasicProperties, body: bytes) -> DeadLetter:
    headers = dict(props.headers or {})
    reason = headers.get(REASON_HEADER)
    if reason is None:  # dead-lettered by the broker itself (x-death), not by snakedeck
        deaths = headers.get("x-death") or [{}]
        first = deaths[0] if isinstance(deaths, list) and deaths else {}
        reason = f"dead-lettered by RabbitMQ ({first.get('reason', 'unknown reason')})"
        queue_name = str(first.get("queue", "")).rsplit(".", 1)[-1]
        keys = first.get("routing-keys") or [""]
        routing_key = str(keys[0])
    else:
        queue_name = str(headers.get(QUEUE_HEADER, ""))
        routing_key = str(headers.get(ROUTING_KEY_HEADER, ""))
    return DeadLetter(
        body=body,
        reason=_text(reason),
        queue=_text(queue_name),
        routing_key=_text(routing_key),
        message_id=props.message_id,
        dead_at=_text(headers.get(DEAD_AT_HEADER, "")),
    )


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class _Batch:
    """Confirms outstanding for one ``publish_events`` call."""

    __slots__ = ("done", "error", "remaining")

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.error: str | None = None
        self.done = threading.Event()

    def settle(self, ok: bool) -> None:
        if not ok and self.error is None:
            self.error = "the broker refused (nacked) a message"
        self.remaining -= 1
        if self.remaining <= 0:
            self.done.set()

    def fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
        self.done.set()


class _ConfirmPublisher:
    """One SelectConnection + confirm channel on its own I/O thread; many messages in flight."""

    def __init__(self, params: pika.URLParameters, exchange: str, where: str) -> None:
        self._params = params
        self._exchange = exchange
        self._where = where
        self._ready = threading.Event()
        self._error: str | None = None
        self._conn: pika.SelectConnection | None = None
        self._channel: Any = None
        self._pending: OrderedDict[int, _Batch] = OrderedDict()
        self._next_tag = 0
        self.alive = False
        self._thread = threading.Thread(target=self._run, name="amqp-publisher", daemon=True)

    # -- caller side ----------------------------------------------------------------------------
    def start(self, timeout: float) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            self.close()
            raise BusError(f"RabbitMQ at {self._where} did not open a channel within {timeout}s")
        if self._error is not None:
            raise BusError(f"cannot connect to RabbitMQ at {self._where}: {self._error}")

    def publish(self, messages: list[tuple[str, bytes, BasicProperties]], timeout: float) -> None:
        batch = _Batch(len(messages))
        conn = self._conn
        if not self.alive or conn is None:
            raise BusError(f"connection to RabbitMQ at {self._where} is closed")
        try:
            conn.ioloop.add_callback_threadsafe(lambda: self._publish(batch, messages))
        except Exception as exc:
            raise BusError(f"connection to RabbitMQ at {self._where} is closed: {exc}") from exc
        if not batch.done.wait(timeout):
            self.close()
            raise BusError(
                f"RabbitMQ at {self._where} did not confirm {batch.remaining} of {len(messages)} "
                f"events within {timeout}s"
            )
        if batch.error is not None:
            raise BusError(f"publishing events to {self._where} failed: {batch.error}")

    def close(self) -> None:
        conn = self._conn
        if conn is not None and self.alive:
            with contextlib.suppress(Exception):
                conn.ioloop.add_callback_threadsafe(self._close_now)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5)
        self.alive = False

    # -- I/O thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._conn = pika.SelectConnection(
                self._params,
                on_open_callback=self._on_open,
                on_open_error_callback=self._on_open_error,
                on_close_callback=self._on_closed,
            )
            self._conn.ioloop.start()
        except Exception as exc:  # noqa: BLE001 - reported to the caller waiting on _ready
            self._error = f"{type(exc).__name__}: {exc}"
        finally:
            self.alive = False
            self._fail_all("the connection to RabbitMQ was lost")
            self._ready.set()

    def _on_open(self, conn: pika.SelectConnection) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: Any) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirming)

    def _on_confirming(self, _frame: Any) -> None:
        self.alive = True
        self._ready.set()

    def _on_open_error(self, conn: pika.SelectConnection, exc: BaseException) -> None:
        self._error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        conn.ioloop.stop()

    def _on_closed(self, conn: pika.SelectConnection, exc: BaseException) -> None:
        self.alive = False
        self._fail_all(f"the connection to RabbitMQ was lost ({type(exc).__name__}: {exc})")
        conn.ioloop.stop()

    def _on_channel_closed(self, _channel: Any, exc: BaseException) -> None:
        self.alive = False
        self._fail_all(f"the channel was closed ({exc})")
        if self._conn is not None and self._conn.is_open:
            self._conn.close()

    def _close_now(self) -> None:
        if self._conn is not None and self._conn.is_open:
            self._conn.close()

    def _fail_all(self, reason: str) -> None:
        pending, self._pending = self._pending, OrderedDict()
        for batch in pending.values():
            batch.fail(reason)

    def _publish(self, batch: _Batch, messages: list[tuple[str, bytes, BasicProperties]]) -> None:
        if not self.alive:
            batch.fail("the connection to RabbitMQ was lost")
            return
        if not messages:
            batch.done.set()
            return
        try:
            for routing_key, body, props in messages:
                self._next_tag += 1
                self._pending[self._next_tag] = batch
                self._channel.basic_publish(self._exchange, routing_key, body, props)
        except Exception as exc:  # noqa: BLE001 - any failure here fails the batch
            batch.fail(f"{type(exc).__name__}: {exc}")

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        ok = isinstance(method, Basic.Ack)
        tag = method.delivery_tag
        if method.multiple:
            while self._pending:
                first = next(iter(self._pending))
                if first > tag:
                    break
                self._pending.popitem(last=False)[1].settle(ok)
        else:
            batch = self._pending.pop(tag, None)
            if batch is not None:
                batch.settle(ok)


class _AmqpSubscription(Subscription):
    """A consumer with its own connection, on two threads.

    The **I/O thread** owns the connection: it reads deliveries, answers heartbeats, sends
    acknowledgements, and reconnects with back-off when the broker goes away (or deletes the
    queue). The **handler thread** runs the handler on one batch at a time. However long a
    handler takes (a slow store), the I/O thread keeps the connection alive; the handler's
    settlements reach the I/O thread through ``add_callback_threadsafe``.
    """

    def __init__(
        self,
        bus: AmqpBus,
        handler: Handler,
        *,
        kind: QueueKind,
        options: ConsumeOptions,
        queue_name: str = "",
    ) -> None:
        self._bus = bus
        self._handler = handler
        self._kind = kind
        self._queue = queue_name
        self._options = options
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._conn: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._generation = 0
        self._buffer: list[tuple[Basic.Deliver, BasicProperties, bytes]] = []
        self._outstanding: OrderedDict[int, None] = OrderedDict()
        self._acked: set[int] = set()
        self._pending_acks: list[tuple[int, int]] = []
        """Acks the handler gave, ``(generation, tag)``, waiting for the I/O thread: one
        callback hands over a whole batch's (a callback per ack cost a wake-up each)."""
        self._pending_lock = threading.Lock()
        self._cancelled = False
        self.connected = False
        self._work: queue.Queue[list[Delivery] | None] = queue.Queue(maxsize=1)
        self._busy = threading.Event()
        """Set while the handler thread holds a batch (the I/O thread hands over the next one
        only when it is clear)."""
        self._io = threading.Thread(target=self._loop, name=f"amqp:{kind}", daemon=True)
        self._worker = threading.Thread(
            target=self._work_loop, name=f"amqp:{kind}:handler", daemon=True
        )
        self._worker.start()
        self._io.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    @property
    def healthy(self) -> bool:
        return self.connected and not self._stop.is_set()

    @property
    def connections(self) -> int:
        return self._generation

    # -- I/O thread -----------------------------------------------------------------------------
    def _loop(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                self._connect()
                backoff.reset()
                self._consume()
            except Exception as exc:  # noqa: BLE001 - any broker trouble: reconnect with back-off
                if self._stop.is_set():
                    break
                log.warning(
                    "%s consumer lost RabbitMQ at %s (%s: %s); reconnecting",
                    self._kind,
                    self._bus.where,
                    type(exc).__name__,
                    exc,
                )
                backoff.wait(self._stop)
            finally:
                self._disconnect()

    def _connect(self) -> None:
        self._generation += 1
        self._buffer = []
        self._outstanding.clear()
        self._acked.clear()
        with self._pending_lock:
            self._pending_acks.clear()  # of the previous channel: the broker requeued them
        self._cancelled = False
        self._conn = self._bus._connect()
        ch = self._conn.channel()
        self._channel = ch
        ch.confirm_delivery()  # dead-lettering publishes a copy: confirmed before the ack
        queue_name = self._bus._declare_on(ch, self._kind, self._queue)
        ch.basic_qos(prefetch_count=self._options.prefetch or 0)  # 0: no limit
        ch.add_on_cancel_callback(self._on_cancel)
        ch.basic_consume(queue_name, self._on_message, auto_ack=self._options.auto_ack)
        self.connected = True
        self._ready.set()

    def _on_cancel(self, _frame: Any) -> None:
        """The broker cancelled the consumer (its queue was deleted): reconnect, re-declare."""
        self._cancelled = True

    def _disconnect(self) -> None:
        self.connected = False
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):
                conn.close()

    def _on_message(
        self, _ch: BlockingChannel, method: Basic.Deliver, props: BasicProperties, body: bytes
    ) -> None:
        self._buffer.append((method, props, body))
        if not self._options.auto_ack:
            self._outstanding[method.delivery_tag] = None

    def _consume(self) -> None:
        assert self._conn is not None
        first_at: float | None = None
        while not self._stop.is_set():
            self._conn.process_data_events(time_limit=self._wait_limit(first_at))
            self._flush_acks()
            if self._cancelled:
                raise BusError(f"the broker cancelled the {self._kind} consumer (queue deleted?)")
            if not self._buffer:
                first_at = None
                continue
            if first_at is None:
                first_at = time.monotonic()
            full = len(self._buffer) >= self._options.batch_size
            if not full and time.monotonic() - first_at < self._options.max_wait:
                continue
            if self._busy.is_set():
                continue  # the handler still has the previous batch; keep the connection alive
            chunk = self._buffer[: self._options.batch_size]
            del self._buffer[: self._options.batch_size]
            first_at = None if not self._buffer else time.monotonic()
            self._busy.set()
            self._work.put([self._delivery(m, p, b) for m, p, b in chunk])

    def _wait_limit(self, first_at: float | None) -> float:
        """How long the next wait for the broker may block: a batch that has begun is handed
        over when its ``max_wait`` is up, not when the next message happens to come."""
        if not self._buffer:
            return 0.2
        if first_at is None or self._busy.is_set():
            return 0.02
        return min(0.02, max(0.0, first_at + self._options.max_wait - time.monotonic()))

    def _delivery(self, method: Basic.Deliver, props: BasicProperties, body: bytes) -> Delivery:
        tag, gen = method.delivery_tag, self._generation
        settled = threading.Lock()
        headers = {"routing_key": method.routing_key, "message_id": props.message_id}

        def settle(kind: Settlement, reason: str) -> None:
            if kind not in ("ack", "requeue", "dead"):
                raise BusError(f"unknown settlement {kind!r}")
            if self._options.auto_ack:
                if kind == "dead":
                    self._on_io(lambda: self._file_dead(body, headers, reason, None, gen))
                return
            if not settled.acquire(blocking=False):
                raise BusError("delivery was already settled (ack, requeue or dead_letter once)")
            if kind == "dead":
                self._on_io(lambda: self._file_dead(body, headers, reason, tag, gen))
            elif kind == "ack":
                self._queue_ack(gen, tag)
            else:
                self._on_io(lambda: self._settle_here(gen, tag, kind))

        return Delivery(
            body=body,
            routing_key=method.routing_key,
            message_id=props.message_id,
            redelivered=bool(method.redelivered),
            _settle=settle,
        )

    def _on_io(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the I/O thread (now, if this is it)."""
        if threading.current_thread() is self._io:
            fn()
            return
        conn = self._conn
        if conn is None:
            return  # the channel is gone; the broker redelivers the message
        try:
            conn.add_callback_threadsafe(fn)
        except Exception:  # noqa: BLE001 - closed meanwhile: the broker redelivers the message
            log.debug("settle after the %s connection closed", self._kind)

    def _queue_ack(self, gen: int, tag: int) -> None:
        """Hand an ack to the I/O thread; only the first of a run of acks wakes it."""
        with self._pending_lock:
            self._pending_acks.append((gen, tag))
            wake = len(self._pending_acks) == 1
        if wake:
            self._on_io(self._take_pending_acks)

    def _take_pending_acks(self) -> None:
        """On the I/O thread: record every ack handed over so far (sent by _flush_acks)."""
        with self._pending_lock:
            pending, self._pending_acks = self._pending_acks, []
        for gen, tag in pending:
            self._settle_here(gen, tag, "ack")

    def _settle_here(self, gen: int, tag: int, kind: str) -> None:
        ch = self._channel
        if gen != self._generation or ch is None or tag not in self._outstanding:
            return  # from a previous channel: the broker already requeued it
        if kind == "ack":
            self._acked.add(tag)  # sent in _flush_acks, coalesced with multiple=True
            return
        del self._outstanding[tag]
        ch.basic_nack(tag, multiple=False, requeue=True)

    def _file_dead(
        self, body: bytes, headers: dict[str, Any], reason: str, tag: int | None, gen: int
    ) -> None:
        """Publish a copy with the reason to the dead-letter queue, then drop the original."""
        ch = self._channel
        if gen != self._generation or ch is None:
            return
        if tag is not None and tag not in self._outstanding:
            return
        t = self._bus.topology
        props = BasicProperties(
            delivery_mode=PERSISTENT,
            content_type=JSON,
            message_id=headers.get("message_id"),
            headers={
                REASON_HEADER: reason,
                QUEUE_HEADER: self._kind,
                ROUTING_KEY_HEADER: headers.get("routing_key") or "",
                DEAD_AT_HEADER: now_iso(),
            },
        )
        ch.basic_publish(t.dlx, t.dead, body, props)
        if tag is not None:
            del self._outstanding[tag]
            ch.basic_ack(tag, multiple=False)

    def _flush_acks(self) -> None:
        """Ack the longest fully-acked prefix with one ``multiple=True`` frame, the rest singly."""
        if not self._acked or self._channel is None:
            return
        ch = self._channel
        last = None
        while self._outstanding:
            first = next(iter(self._outstanding))
            if first not in self._acked:
                break
            self._outstanding.popitem(last=False)
            self._acked.discard(first)
            last = first
        if last is not None:
            ch.basic_ack(last, multiple=True)
        for tag in sorted(self._acked):
            self._outstanding.pop(tag, None)
            ch.basic_ack(tag, multiple=False)
        self._acked.clear()

    # -- handler thread -------------------------------------------------------------------------
    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._work.get(timeout=0.5)
            except queue.Empty:
                continue
            if batch is None:
                return
            parts = [[d] for d in batch] if self._options.batch_size == 1 else [batch]
            try:
                for part in parts:
                    self._run_handler(part)
            finally:
                self._busy.clear()

    def _run_handler(self, deliveries: list[Delivery]) -> None:
        try:
            self._handler(deliveries)
        except Exception:  # a handler bug must not kill the consumer
            log.exception("%s handler failed; requeueing its unsettled deliveries", self._kind)
            for d in deliveries:
                with contextlib.suppress(BusError):
                    d.requeue()
            self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if threading.current_thread() not in (self._io, self._worker):
            self._io.join(10)
            self._worker.join(10)


QUEUE_TYPES = ("classic", "quorum")
"""Kinds of the ``runs`` and ``persist`` queues (``SNAKEDECK_QUEUE_TYPE``): classic for a
single broker node, quorum (Raft-replicated) for a RabbitMQ cluster."""


class AmqpBus(Bus):
    """RabbitMQ implementation of :class:`Bus`. Connects lazily, declares topology once."""

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        heartbeat: int = 10,
        blocked_connection_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        confirm_timeout: float = 30.0,
        queue_type: str = "classic",
    ) -> None:
        super().__init__(namespace)
        if queue_type not in QUEUE_TYPES:
            raise BusError(f"queue type {queue_type!r}: use one of {', '.join(QUEUE_TYPES)}")
        self.queue_type = queue_type
        self.url = url
        self.where = redact(url)
        try:
            params = pika.URLParameters(url)
        except Exception as exc:
            raise BusError(f"{self.where!r} is not a valid AMQP URL: {exc}") from exc
        params.heartbeat = heartbeat
        params.blocked_connection_timeout = blocked_connection_timeout
        params.socket_timeout = connect_timeout
        params.stack_timeout = connect_timeout * 2
        params.connection_attempts = 1
        params.client_properties = {"connection_name": f"snakedeck:{namespace}"}
        self._params = params
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self._lock = threading.Lock()
        self._chan_lock = threading.RLock()
        self._conn: pika.BlockingConnection | None = None
        self._ch: BlockingChannel | None = None
        self._publisher: _ConfirmPublisher | None = None
        self._declared = False
        self._runner_queues: set[str] = set()
        """Runner queues this bus declared (a test's teardown deletes them with the rest)."""
        self._subs: list[_AmqpSubscription] = []
        self._closed = False

    # -- connections ----------------------------------------------------------------------------
    def _connect(self) -> pika.BlockingConnection:
        if self._closed:
            raise BusError(f"bus for RabbitMQ at {self.where} is closed")
        try:
            return pika.BlockingConnection(self._params)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise BusError(f"cannot connect to RabbitMQ at {self.where}: {detail}") from exc

    def _channel(self) -> BlockingChannel:
        """The shared confirm channel (caller holds ``_chan_lock``), reopened when it broke."""
        conn, ch = self._conn, self._ch
        if conn is not None and conn.is_open and ch is not None and ch.is_open:
            try:
                conn.process_data_events(0)  # services heartbeats; raises if the socket died
                return ch
            except Exception:  # noqa: BLE001 - stale connection: open a fresh one below
                pass
        self._drop_channel()
        conn = self._connect()
        ch = conn.channel()
        ch.confirm_delivery()
        self._conn, self._ch = conn, ch
        try:
            self._ensure_declared(ch)
        except pika.exceptions.ChannelClosedByBroker as exc:
            # e.g. a queue declared before with another type (SNAKEDECK_QUEUE_TYPE changed)
            self._drop_channel()
            raise BusError(f"declaring topology: RabbitMQ at {self.where} said {exc}") from exc
        return ch

    def _drop_channel(self) -> None:
        conn, self._conn, self._ch = self._conn, None, None
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):
                conn.close()

    def _with_channel(self, what: str, fn: Callable[[BlockingChannel], Any]) -> Any:
        """Run ``fn`` on the shared channel; one retry on a fresh connection if it broke.

        One lock-guarded BlockingConnection (not one per thread): under gunicorn's gevent worker
        every request is a greenlet, and per-greenlet connections would pile up."""
        with self._chan_lock:
            for attempt in (1, 2):
                ch = self._channel()
                try:
                    return fn(ch)
                except BusError:
                    raise
                except (pika.exceptions.UnroutableError, pika.exceptions.NackError) as exc:
                    raise BusError(f"{what}: RabbitMQ at {self.where} refused it ({exc})") from exc
                except pika.exceptions.ChannelClosedByBroker as exc:
                    self._drop_channel()
                    raise BusError(f"{what}: RabbitMQ at {self.where} said {exc}") from exc
                except Exception as exc:
                    self._drop_channel()
                    if attempt == 2:
                        raise BusError(
                            f"{what}: lost RabbitMQ at {self.where} ({type(exc).__name__}: {exc})"
                        ) from exc
        raise AssertionError("unreachable")

    # -- topology -------------------------------------------------------------------------------
    def _declare_on(self, ch: BlockingChannel, kind: str = "all", queue: str = "") -> str:
        """Declare what ``kind`` needs on ``ch``; return the queue name to consume, if any."""
        t = self.topology
        dl = {"x-dead-letter-exchange": t.dlx, "x-dead-letter-routing-key": t.dead}
        # The queues whose messages are the system's state in flight (submit commands, events
        # on their way to the store or the notifier): replicated across a cluster's nodes if
        # asked.
        work = {**dl, "x-queue-type": "quorum"} if self.queue_type == "quorum" else dl
        if kind == "runner":
            ch.exchange_declare(t.dlx, "direct", durable=True)
            ch.queue_declare(t.dead, durable=True)
            ch.queue_bind(t.dead, t.dlx, routing_key=t.dead)
            ch.queue_declare(
                queue, durable=True, arguments={**dl, "x-expires": RUNNER_QUEUE_EXPIRES_MS}
            )
            self._runner_queues.add(queue)
            return queue
        if kind in ("all", "persist"):
            ch.exchange_declare(t.events, "topic", durable=True)
            ch.queue_declare(t.persist, durable=True, arguments=work)
            ch.queue_bind(t.persist, t.events, routing_key="run.#")
        if kind in ("all", "notify"):
            ch.exchange_declare(t.events, "topic", durable=True)
            quorum = {"x-queue-type": "quorum"} if self.queue_type == "quorum" else {}
            ch.queue_declare(t.notify, durable=True, arguments=quorum or None)
            for key in NOTIFY_BINDINGS:
                ch.queue_bind(t.notify, t.events, routing_key=key)
        if kind in ("all", "persist", "runs"):
            ch.exchange_declare(t.dlx, "direct", durable=True)
            ch.queue_declare(t.dead, durable=True)
            ch.queue_bind(t.dead, t.dlx, routing_key=t.dead)
        if kind in ("all", "runs"):
            ch.queue_declare(t.runs, durable=True, arguments=work)
        if kind in ("all", "updates"):
            ch.exchange_declare(t.updates, "fanout", durable=True)
        if kind in ("all", "control"):
            ch.exchange_declare(t.control, "fanout", durable=True)
        if kind in ("updates", "control"):
            exchange = t.updates if kind == "updates" else t.control
            q = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
            ch.queue_bind(q, exchange)
            return q
        return {"persist": t.persist, "notify": t.notify, "runs": t.runs}.get(kind, "")

    def _ensure_declared(self, ch: BlockingChannel) -> None:
        if not self._declared:
            self._declare_on(ch)
            self._declared = True

    def declare(self) -> None:
        self._declared = False
        self._with_channel("declaring topology", self._ensure_declared)

    def delete_topology(self) -> None:
        t = self.topology

        def delete(ch: BlockingChannel) -> None:
            for q in (t.persist, t.notify, t.runs, t.dead, *sorted(self._runner_queues)):
                ch.queue_delete(q)
            for x in (t.events, t.updates, t.control, t.dlx):
                ch.exchange_delete(x)

        self._with_channel("deleting topology", delete)
        self._declared = False

    # -- publishing -----------------------------------------------------------------------------
    def publish_events(self, messages: Iterable[Outgoing], *, timeout: float | None = None) -> None:
        batch = [(m.routing_key, m.encode(), _props(m.message_id)) for m in messages]
        if not batch:
            return
        publisher = self._ensure_publisher()
        try:
            publisher.publish(batch, self.confirm_timeout if timeout is None else timeout)
        except BusError:
            with self._lock:
                if self._publisher is publisher:
                    self._publisher = None
            publisher.close()
            raise

    def _ensure_publisher(self) -> _ConfirmPublisher:
        with self._lock:
            if self._closed:
                raise BusError(f"bus for RabbitMQ at {self.where} is closed")
            if self._publisher is not None and self._publisher.alive:
                return self._publisher
            old, self._publisher = self._publisher, None
        if old is not None:
            old.close()
        if not self._declared:
            self.declare()  # so events are never published before the persist queue exists
        publisher = _ConfirmPublisher(self._params, self.topology.events, self.where)
        publisher.start(self.connect_timeout * 2)
        with self._lock:
            if self._publisher is None and not self._closed:
                self._publisher = publisher
                return publisher
        publisher.close()  # another thread won the race
        return self._ensure_publisher()

    def _publish_one(self, what: str, exchange: str, routing_key: str, body: dict) -> None:
        raw = Outgoing(routing_key, body).encode()
        self._with_channel(
            what, lambda ch: ch.basic_publish(exchange, routing_key, raw, _props(), mandatory=False)
        )

    def publish_update(self, body: dict[str, Any]) -> None:
        self._publish_one("publishing an update", self.topology.updates, "", body)

    def submit_run(self, command: dict[str, Any]) -> None:
        self._publish_one("submitting a run", "", self.topology.runs, command)

    def send_control(self, command: dict[str, Any]) -> None:
        self._publish_one("sending a control command", self.topology.control, "", command)

    def send_to_runner(self, runner_id: str, command: dict[str, Any]) -> None:
        name = self.topology.runner(runner_id)
        raw = Outgoing(name, command).encode()

        def send(ch: BlockingChannel) -> None:
            self._declare_on(ch, "runner", name)  # so the command waits for an absent runner
            ch.basic_publish("", name, raw, _props(), mandatory=True)

        self._with_channel(f"sending a command to runner {runner_id}", send)

    # -- consuming ------------------------------------------------------------------------------
    def _subscribe(
        self, kind: QueueKind, handler: Handler, options: ConsumeOptions, *, queue: str = ""
    ) -> Subscription:
        if self._closed:
            raise BusError(f"bus for RabbitMQ at {self.where} is closed")
        sub = _AmqpSubscription(self, handler, kind=kind, options=options, queue_name=queue)
        with self._lock:
            self._subs.append(sub)
        return sub

    # -- inspection -----------------------------------------------------------------------------
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        dead = self.topology.dead

        def peek(ch: BlockingChannel) -> list[DeadLetter]:
            letters: list[DeadLetter] = []
            last_tag = None
            while len(letters) < limit:
                method, props, body = ch.basic_get(dead, auto_ack=False)
                if method is None:
                    break
                letters.append(_dead_letter(props, body))
                last_tag = method.delivery_tag
            if last_tag is not None:
                ch.basic_nack(last_tag, multiple=True, requeue=True)
                # The requeue is asynchronous in the broker: wait (bounded) until the peeked
                # messages count as ready again, so a reader right after us sees them.
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    ready = ch.queue_declare(dead, passive=True).method.message_count
                    if ready >= len(letters):
                        break
                    time.sleep(0.005)
            return letters

        return self._with_channel("reading dead letters", peek)

    def replay_dead_letters(self, limit: int | None = None) -> int:
        t = self.topology

        def replay(ch: BlockingChannel) -> int:
            # Only the letters there when asked: a replayed message that fails again is filed
            # again behind them while we read, and must wait for the next replay, not loop.
            present = ch.queue_declare(t.dead, passive=True).method.message_count
            moved = 0
            skipped: list[int] = []
            for _ in range(present):
                if limit is not None and moved >= limit:
                    break
                method, props, body = ch.basic_get(t.dead, auto_ack=False)
                if method is None:
                    break
                letter = _dead_letter(props, body)
                target = {
                    "persist": (t.events, letter.routing_key),
                    "runs": ("", t.runs),
                    "runner": ("", letter.routing_key),
                }.get(letter.queue)
                if target is None:  # a fanout's best-effort message: nowhere to send it back
                    skipped.append(method.delivery_tag)
                    continue
                ch.basic_publish(target[0], target[1], body, _props(letter.message_id))
                ch.basic_ack(method.delivery_tag)
                moved += 1
            for tag in skipped:
                ch.basic_nack(tag, requeue=True)
            return moved

        return self._with_channel("replaying dead letters", replay)

    def purge_dead_letters(self) -> int:
        dead = self.topology.dead
        return self._with_channel(
            "purging dead letters", lambda ch: ch.queue_purge(dead).method.message_count
        )

    def queue_depth(self, queue: str) -> int:
        t = self.topology
        name = {"persist": t.persist, "notify": t.notify, "runs": t.runs, "dead": t.dead}.get(
            queue, queue
        )

        def depth(ch: BlockingChannel) -> int:
            return ch.queue_declare(name, passive=True).method.message_count

        try:
            return self._with_channel(f"reading the depth of {name}", depth)
        except BusError as exc:
            if "NOT_FOUND" in str(exc) or "404" in str(exc):
                raise BusError(f"no queue named {name!r} on RabbitMQ at {self.where}") from exc
            raise

    def ping(self) -> None:
        self._with_channel("ping", lambda ch: None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            subs, self._subs = self._subs, []
            publisher, self._publisher = self._publisher, None
        for sub in subs:
            sub.stop()
        if publisher is not None:
            publisher.close()
        with self._chan_lock:
            self._drop_channel()
