"""The consumer: persist queue → store → updates fan-out.

Per batch: parse every delivery (what is not a valid envelope is dead-lettered on its own, with
the reason), persist the valid events with :meth:`Store.persist` in chunks sized to what the
store takes in :data:`TARGET_CHUNK_SECONDS`, publish one compact update per chunk for the
gateways, and only then acknowledge. A store failure requeues the rest after a growing back-off,
so nothing is acknowledged that is not written; replays are harmless because the projection is
idempotent. Events of a run the store does not know are held back a while (a hand-run's
registration may still be on its way) and then dead-lettered: they never invent a run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

from snakedeck import envelope, metrics, projection
from snakedeck.backoff import Backoff
from snakedeck.bus.base import Bus, BusError, Delivery, Subscription
from snakedeck.envelope import Envelope, EnvelopeError
from snakedeck.messages import PersistedUpdate
from snakedeck.settings import Settings
from snakedeck.store import PersistResult, Store, StoreError

log = logging.getLogger(__name__)

TARGET_CHUNK_SECONDS: Final = 1.0
"""A chunk of a batch should take the store about this long; chunks shrink and grow to it."""
MIN_CHUNK: Final = 20
# How long a batch waits for more messages once its first arrived (``max_wait``) only matters
# when the consumer is idle: while it persists a batch the next one fills up anyway, so a short
# wait costs no throughput and takes its share out of the live feed's latency.
UNKNOWN_RUN_PATIENCE: Final = 30.0
"""Seconds the events of a run nobody registered are requeued before they are dead-lettered."""


class Consumer:
    """Projects the persist queue into the store; one per process, any number per deployment."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        *,
        batch_size: int = 500,
        max_wait: float = 0.005,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.chunk_size = batch_size
        """Events per ``Store.persist`` call, adapted to the store's speed."""
        self.store_failures = 0
        """Batches requeued because of the store, since start (the tests and logs read it)."""
        self.redeliveries = 0
        """Deliveries that came back (a consumer died, a connection dropped), since start."""
        self._backoff = Backoff()
        self._stopping = threading.Event()
        self._subscription: Subscription | None = None
        self._last_gauges = 0.0
        self._unknown_since: OrderedDict[str, float] = OrderedDict()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Declare the topology and start consuming on the bus's own threads."""
        if self._subscription is not None:
            return
        self._stopping.clear()
        self.bus.declare()
        self._subscription = self.bus.consume_persist(
            self.handle, batch_size=self.batch_size, max_wait=self.max_wait
        )
        log.info("consumer started (batches of up to %d)", self.batch_size)

    def wait_ready(self, timeout: float = 15.0) -> bool:
        return self._subscription is not None and self._subscription.wait_ready(timeout)

    def stop(self) -> None:
        """Stop consuming; unacknowledged deliveries go back to the queue."""
        self._stopping.set()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.stop()

    @property
    def healthy(self) -> bool:
        return self._subscription is not None and self._subscription.healthy

    # -- one batch ------------------------------------------------------------------------------
    @property
    def connections(self) -> int:
        return 0 if self._subscription is None else self._subscription.connections

    def handle(self, deliveries: Sequence[Delivery]) -> None:
        """Settle every delivery of one batch (the bus calls this on its handler thread)."""
        self.redeliveries += sum(d.redelivered for d in deliveries)
        parsed: list[tuple[Delivery, Envelope]] = []
        for delivery in deliveries:
            try:
                parsed.append((delivery, envelope.loads(delivery.body)))
            except EnvelopeError as exc:
                self._dead_letter(delivery, f"not a valid event envelope: {exc}")
        start = 0
        while start < len(parsed) and not self._stopping.is_set():
            chunk = parsed[start : start + self.chunk_size]
            if not self._persist_chunk(chunk):
                for delivery, _ in parsed[start:]:
                    delivery.requeue()
                return
            start += len(chunk)
        for delivery, _ in parsed[start:]:  # stopping: the broker redelivers them
            delivery.requeue()
        self._refresh_gauges()

    def _persist_chunk(self, chunk: list[tuple[Delivery, Envelope]]) -> bool:
        """Persist one chunk and settle its deliveries; False if the store failed."""
        events: list[Envelope] = []
        seen: set[tuple[str, int]] = set()
        for _, event in chunk:
            key = (event["run_id"], int(event["seq"] or 0))
            if key not in seen:  # a redelivered copy in the same batch
                seen.add(key)
                events.append(event)
        redelivered = any(d.redelivered for d, _ in chunk)
        began = time.monotonic()
        try:
            result = self.store.persist(events, recount=redelivered)
        except StoreError as exc:
            self._store_failed(len(events), exc)
            return False
        except Exception:  # a poison event the projection cannot take must not block the queue
            log.exception("persisting %d events failed; trying them one by one", len(events))
            return self._persist_one_by_one(chunk)
        self._adapt(time.monotonic() - began, len(events))
        self._backoff.reset()
        self._settle(chunk, result)
        metrics.CONSUMER_BATCHES.inc()
        return True

    def _settle(self, chunk: list[tuple[Delivery, Envelope]], result: PersistResult) -> None:
        """Announce what was stored, then ack it; hold back or dead-letter unknown runs."""
        self._announce(result)
        now = time.monotonic()
        for run_id in list(self._unknown_since):
            if run_id not in result.unknown_runs and any(
                r["run_id"] == run_id for r in result.runs
            ):
                del self._unknown_since[run_id]
        for delivery, event in chunk:
            run_id = event["run_id"]
            if run_id not in result.unknown_runs:
                delivery.ack()
                continue
            first = self._unknown_since.setdefault(run_id, now)
            while len(self._unknown_since) > 10_000:
                self._unknown_since.popitem(last=False)
            if now - first >= UNKNOWN_RUN_PATIENCE:
                self._dead_letter(delivery, f"no run {run_id!r} exists, and no event registers it")
            else:
                delivery.requeue()
        if result.unknown_runs and not self._stopping.is_set():
            self._stopping.wait(0.5)  # do not spin on events waiting for their registration

    def _persist_one_by_one(self, chunk: list[tuple[Delivery, Envelope]]) -> bool:
        """Dead-letter the events the projection cannot take; persist the rest."""
        for i, (delivery, event) in enumerate(chunk):
            try:
                result = self.store.persist([event], recount=delivery.redelivered)
            except StoreError as exc:
                self._store_failed(len(chunk) - i, exc)
                for later, _ in chunk[i:]:
                    later.requeue()
                return True  # settled here already
            except Exception as exc:  # noqa: BLE001 - reported and dead-lettered, not swallowed
                self._dead_letter(delivery, f"the projection failed on it: {exc!r}")
                continue
            self._settle([(delivery, event)], result)
        return True

    def _announce(self, result: PersistResult) -> None:
        if not result.events:
            return
        metrics.EVENTS_PERSISTED.inc(len(result.events))
        update: PersistedUpdate = {
            "kind": "persisted",
            "events": result.events,
            "runs": list({r["run_id"]: projection.run_summary(r) for r in result.runs}.values()),
            "jobs": list(
                {(j["run_id"], j["jobid"]): projection.job_summary(j) for j in result.jobs}.values()
            ),
        }
        try:
            self.bus.publish_update(dict(update))
        except BusError as exc:
            log.warning("could not publish an update (gateways will re-read the store): %s", exc)

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        log.warning(
            "dead-lettering message %s (routing key %s): %s",
            delivery.message_id or "<no id>",
            delivery.routing_key[:200],
            reason[:500],
        )
        delivery.dead_letter(reason)
        metrics.DEAD_LETTERED.labels(queue="persist").inc()

    def _store_failed(self, count: int, exc: Exception) -> None:
        self.store_failures += 1
        metrics.CONSUMER_STORE_ERRORS.inc()
        delay = self._backoff.delay()
        log.error("store failed on %d events (%s); requeueing them in %.1fs", count, exc, delay)
        # Waiting here also keeps the bus from handing us the same batch straight back.
        self._stopping.wait(delay)

    def _adapt(self, seconds: float, n: int) -> None:
        """Shrink chunks when the store is slow, grow them back when it is fast."""
        if seconds > TARGET_CHUNK_SECONDS and n > MIN_CHUNK:
            self.chunk_size = max(MIN_CHUNK, int(n * TARGET_CHUNK_SECONDS / seconds))
        elif seconds < TARGET_CHUNK_SECONDS / 4 and n >= self.chunk_size:
            self.chunk_size = min(self.batch_size, self.chunk_size * 2)

    def _refresh_gauges(self) -> None:
        """Consumer lag and runs-by-state, at most once a second (they cost a round trip)."""
        now = time.monotonic()
        if now - self._last_gauges < 1.0:
            return
        self._last_gauges = now
        try:
            metrics.CONSUMER_LAG.set(self.bus.queue_depth("persist"))
            metrics.refresh_runs_by_state(self.store)
        except (BusError, StoreError) as exc:
            log.debug("metrics refresh skipped: %s", exc)
