"""The consumer: persist queue → store → updates fan-out.

Per batch: parse every delivery (what is not a valid envelope is dead-lettered with the reason
logged), persist the valid events in one :meth:`Store.persist`, publish one compact update for
the gateways, and only then acknowledge. A store failure requeues the batch after a growing
back-off, so nothing is acknowledged that is not written; replays are harmless because the
projection is idempotent.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from snakedeck import envelope, metrics, projection
from snakedeck.bus.base import Bus, BusError, Delivery, Subscription
from snakedeck.envelope import EnvelopeError
from snakedeck.settings import Settings
from snakedeck.store.base import PersistResult, Store, StoreError

log = logging.getLogger(__name__)


class Consumer:
    """Projects the persist queue into the store; one per process, any number per deployment."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        *,
        batch_size: int = 500,
        max_wait: float = 0.05,
        max_backoff: float = 5.0,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.max_backoff = max_backoff
        self.store_failures = 0
        """Batches requeued because of the store, since start (the tests and logs read it)."""
        self._failing_in_a_row = 0
        self._stopping = threading.Event()
        self._subscription: Subscription | None = None
        self._last_gauges = 0.0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Declare the topology and start consuming on the bus's own thread."""
        if self._subscription is not None:
            return
        self._stopping.clear()
        self.bus.declare()
        self._subscription = self.bus.consume_persist(
            self.handle, batch_size=self.batch_size, max_wait=self.max_wait
        )
        log.info("consumer started (batches of up to %d)", self.batch_size)

    def stop(self) -> None:
        """Stop consuming; unacknowledged deliveries go back to the queue."""
        self._stopping.set()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.stop()

    def run_forever(self) -> None:
        """``snakedeck consumer``: consume until SIGINT or SIGTERM."""
        done = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            log.info("consumer stopping on signal %d", signum)
            done.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not done.wait(1.0):
                pass
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    # -- one batch ------------------------------------------------------------------------------
    def handle(self, deliveries: Sequence[Delivery]) -> None:
        """Settle every delivery of one batch (the bus calls this on its consumer thread)."""
        events: list[envelope.Envelope] = []
        kept: list[Delivery] = []
        seen: set[tuple[str, int]] = set()
        for delivery in deliveries:
            try:
                event = envelope.loads(delivery.body)
            except EnvelopeError as exc:
                self._dead_letter(delivery, str(exc))
                continue
            kept.append(delivery)
            key = (event["run_id"], event["seq"])
            if key not in seen:  # a redelivered copy in the same batch
                seen.add(key)
                events.append(event)
        if not kept:
            return
        try:
            result = self.store.persist(events)
        except StoreError as exc:
            self._requeue_after_backoff(kept, exc)
            return
        except Exception:  # a poison event must not block the queue forever
            log.exception("persisting a batch of %d events failed; trying one by one", len(events))
            self._persist_one_by_one(events, kept)
            return
        self._failing_in_a_row = 0
        metrics.EVENTS_PERSISTED.inc(len(result.events))
        self._publish_update(result)
        for delivery in kept:
            delivery.ack()
        metrics.CONSUMER_BATCHES.inc()
        self._refresh_gauges()

    def _persist_one_by_one(self, events: list[envelope.Envelope], kept: list[Delivery]) -> None:
        """Dead-letter the events the projection cannot take; persist the rest."""
        by_key: dict[tuple[str, int], list[Delivery]] = {}
        for delivery in kept:
            event = envelope.loads(delivery.body)
            by_key.setdefault((event["run_id"], event["seq"]), []).append(delivery)
        total = PersistResult()
        for event in events:
            copies = by_key.pop((event["run_id"], event["seq"]), [])
            try:
                part = self.store.persist([event])
            except StoreError as exc:
                self._requeue_after_backoff(copies + [d for ds in by_key.values() for d in ds], exc)
                self._announce(total)
                return
            except Exception as exc:  # noqa: BLE001 - reported and dead-lettered, not swallowed
                for delivery in copies:
                    self._dead_letter(delivery, f"the projection failed on it: {exc!r}")
                continue
            total.events += part.events
            total.runs += part.runs
            total.jobs += part.jobs
            for delivery in copies:
                delivery.ack()
        self._announce(total)

    def _announce(self, result: PersistResult) -> None:
        if result.events:
            metrics.EVENTS_PERSISTED.inc(len(result.events))
            self._publish_update(result)

    def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        log.warning(
            "dead-lettering message %s (routing key %s): %s",
            delivery.message_id or "<no id>",
            delivery.routing_key,
            reason,
        )
        delivery.dead_letter()
        metrics.DEAD_LETTERED.inc()

    def _requeue_after_backoff(self, deliveries: Sequence[Delivery], exc: Exception) -> None:
        self.store_failures += 1
        self._failing_in_a_row += 1
        metrics.CONSUMER_STORE_ERRORS.inc()
        delay = min(self.max_backoff, 0.1 * 2 ** (self._failing_in_a_row - 1))
        log.error(
            "store failed on a batch of %d events (%s); requeueing it in %.1fs",
            len(deliveries),
            exc,
            delay,
        )
        # Waiting here also keeps the bus from handing us the same batch straight back.
        self._stopping.wait(delay)
        for delivery in deliveries:
            delivery.requeue()

    def _publish_update(self, result: PersistResult) -> None:
        """Tell every gateway what was stored; best effort, the store already has it all."""
        latest_runs: dict[str, dict[str, Any]] = {}
        for run in result.runs:
            latest_runs[run["run_id"]] = projection.run_summary(run)
        latest_jobs: dict[tuple[str, str], dict[str, Any]] = {}
        for job in result.jobs:
            latest_jobs[(job["run_id"], str(job["jobid"]))] = projection.job_summary(job)
        update = {
            "kind": "persisted",
            "events": result.events,
            "runs": list(latest_runs.values()),
            "jobs": list(latest_jobs.values()),
        }
        try:
            self.bus.publish_update(update)
        except BusError as exc:
            log.warning("could not publish an update (gateways will re-read the store): %s", exc)

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
