"""The notifier: notify queue → webhooks, Slack payloads and e-mails, at least once.

It takes the run's state changes (``run_state`` events) and job failures (``job_error``) from
its own durable queue on the events exchange, so it needs neither the gateway nor the
consumer, and a notifier that was down catches up. For each event it reads the run's targets
(saved at submit, :mod:`snakedeck.store.deliveries`) plus the server's defaults, builds the
notification (:mod:`snakedeck.notify`), and sends it to each target that wants it: signed with
the target's secret, ``Idempotency-Key`` = ``run_id:seq``. A 5xx, 408, 429, timeout or broken
connection is retried with the one back-off (:class:`snakedeck.backoff.Backoff`) up to
``SNAKEDECK_NOTIFY_MAX_ATTEMPTS``; any other answer is final. Every attempt is recorded in the
delivery log before the next step, and the message is acknowledged only once every target has
been delivered to or given up on. A redelivered message skips the targets the log says are
done, so a receiver sees a second copy only when the notifier died between a receiver's 2xx
and the log write; it dedupes on the key.

Events are handed to a few lanes (threads) by run id: one run's notifications leave in order,
and a receiver that is slow or down holds back only the runs of its lane.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from snakedeck import envelope, metrics, notify
from snakedeck.backoff import Backoff
from snakedeck.bus.base import Bus, BusError, Delivery, Subscription
from snakedeck.envelope import Envelope, EnvelopeError
from snakedeck.fetch import FetchError, check_url, shown_url
from snakedeck.notify import NotifyTarget
from snakedeck.settings import Settings
from snakedeck.store import Store, StoreError
from snakedeck.store.deliveries import DeliveryDoc

log = logging.getLogger(__name__)

LANES: Final = 4
RETRY_FIRST_DELAY: Final = 0.5
"""Seconds before a notification's first retry."""
RETRY_MAX_DELAY: Final = 60.0
"""The longest wait between two attempts (a receiver down for a while is not hammered)."""
UNKNOWN_RUN_PATIENCE: Final = 30.0
"""Seconds to wait for a run the store does not know yet (a hand-run's registration may be on
its way) before its notification goes out without the run's workflow and tags."""
RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Result:
    ok: bool
    status: int | None = None
    error: str = ""
    final: bool = False
    """No point in trying again (a 4xx, a refused URL)."""


class Notifier:
    """Sends the notifications of every run; any number per deployment (the queue is shared,
    the delivery log keeps their work apart)."""

    def __init__(self, settings: Settings, store: Store, bus: Bus, *, lanes: int = LANES) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.defaults = notify.default_targets(settings)  # a bad setting fails the start
        self._lanes: list[queue.Queue[Delivery | None]] = [queue.Queue() for _ in range(lanes)]
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._subscription: Subscription | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._subscription is not None:
            return
        self._stopping.clear()
        self.bus.declare()
        self._threads = [
            threading.Thread(target=self._lane, args=(q,), name=f"notifier-{i}", daemon=True)
            for i, q in enumerate(self._lanes)
        ]
        for thread in self._threads:
            thread.start()
        self._subscription = self.bus.consume_notify(self.handle, prefetch=4 * len(self._lanes))
        log.info(
            "notifier started (%d lanes, %d default target(s))",
            len(self._lanes),
            len(self.defaults),
        )

    def wait_ready(self, timeout: float = 15.0) -> bool:
        return self._subscription is not None and self._subscription.wait_ready(timeout)

    def stop(self) -> None:
        """Stop; a notification in the middle of its retries goes back to the queue."""
        self._stopping.set()
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.stop()
        for q in self._lanes:
            q.put(None)
        for thread in self._threads:
            thread.join(self.settings.notify_timeout + 5)
        self._threads = []

    @property
    def healthy(self) -> bool:
        return self._subscription is not None and self._subscription.healthy

    # -- dispatch -------------------------------------------------------------------------------
    def handle(self, deliveries: Sequence[Delivery]) -> None:
        """Hand each delivery to its run's lane (the bus calls this on its handler thread)."""
        for delivery in deliveries:
            run = delivery.routing_key.split(".")[1] if "." in delivery.routing_key else ""
            self._lanes[zlib.crc32(run.encode()) % len(self._lanes)].put(delivery)

    def _lane(self, lane: queue.Queue[Delivery | None]) -> None:
        while True:
            delivery = lane.get()
            if delivery is None:
                return
            if self._stopping.is_set():
                delivery.requeue()
                continue
            try:
                self.process(delivery)
            except Exception:  # the lane must go on; the broker redelivers the message
                log.exception("notifier: a notification failed unexpectedly; requeueing it")
                self._stopping.wait(RETRY_FIRST_DELAY)
                with contextlib.suppress(BusError):  # settled already, or the channel is gone
                    delivery.requeue()

    def process(self, delivery: Delivery) -> None:
        """Send one event's notifications, then settle its delivery."""
        try:
            event = envelope.loads(delivery.body)
        except EnvelopeError as exc:  # the persist consumer dead-letters its own copy
            log.warning("notifier: skipping a message that is not an event (%s)", exc)
            delivery.ack()
            return
        if event["type"] not in notify.EVENT_TYPES:
            delivery.ack()
            return
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                done = self.notify(event, redelivered=delivery.redelivered)
            except StoreError as exc:
                log.warning("notifier: store unavailable (%s); retrying", exc)
                backoff.wait(self._stopping)
                continue
            if done:
                delivery.ack()
                return
            break
        delivery.requeue()

    # -- one event ------------------------------------------------------------------------------
    def targets(self, run_id: str) -> list[NotifyTarget]:
        """The run's own targets, then the server's defaults (each target once)."""
        targets = [NotifyTarget.model_validate(t) for t in self.store.notify_targets(run_id)]
        seen = {t.target_id for t in targets}
        return targets + [t for t in self.defaults if t.target_id not in seen]

    def notify(self, event: Envelope, *, redelivered: bool = False) -> bool:
        """Deliver ``event`` to every target that wants it; False if stopped midway."""
        run_id = str(event["run_id"])
        kind = notify.EVENT_TYPES[str(event["type"])]
        wanted = [t for t in self.targets(run_id) if kind in t.events]
        if not wanted:
            return True
        run = self._run(run_id)
        if run is None and self._stopping.is_set():
            return False
        doc = notify.notification(event, run)
        return all(self._deliver(t, doc, redelivered) for t in wanted)

    def _run(self, run_id: str) -> dict[str, Any] | None:
        deadline = time.monotonic() + UNKNOWN_RUN_PATIENCE
        backoff = Backoff()
        while True:
            run = self.store.get_run(run_id)
            if run is not None or time.monotonic() >= deadline:
                return dict(run) if run is not None else None
            backoff.wait(self._stopping, deadline=deadline)
            if self._stopping.is_set():
                return None

    def _deliver(self, target: NotifyTarget, doc: dict[str, Any], redelivered: bool) -> bool:
        """Attempts until delivered or given up (each in the log); False if stopped midway."""
        run_id, key = str(doc["run_id"]), str(doc["idempotency_key"])
        past = self.store.delivery_attempts(run_id, key, target.target_id)
        if any(p.get("outcome") in ("delivered", "gave_up") for p in past):
            return True  # a redelivered message: this target is done
        attempt = len(past)
        backoff = Backoff(first=RETRY_FIRST_DELAY, cap=RETRY_MAX_DELAY)
        while True:
            attempt += 1
            result = self.send(target, doc)
            last = attempt >= self.settings.notify_max_attempts
            outcome = "delivered" if result.ok else "gave_up" if result.final or last else "failed"
            entry: DeliveryDoc = {
                "run_id": run_id,
                "key": key,
                "event": str(doc["event"]),
                "state": doc.get("state"),
                "target": target.public(),
                "target_id": target.target_id,
                "attempt": attempt,
                "outcome": outcome,  # type: ignore[typeddict-item]
                "status": result.status,
                "error": result.error,
                "redelivered": redelivered,
            }
            self.store.record_delivery(entry)
            metrics.NOTIFICATION_ATTEMPTS.labels(format=target.format, outcome=outcome).inc()
            if outcome != "failed":
                if outcome == "gave_up":
                    log.warning(
                        "notifier: gave up on %s for %s after %d attempt(s): %s",
                        key,
                        target.public()["url"],
                        attempt,
                        result.error or result.status,
                    )
                return True
            if self._stopping.wait(backoff.delay()):
                return False

    # -- sending --------------------------------------------------------------------------------
    def send(self, target: NotifyTarget, doc: dict[str, Any]) -> Result:
        if target.format == "email":
            return self._mail(target, doc)
        return self._post(target, doc)

    def _post(self, target: NotifyTarget, doc: dict[str, Any]) -> Result:
        import requests

        try:  # again now: a name may resolve elsewhere than at submit
            check_url(target.url, self.settings.fetch_allow_private)
        except FetchError as exc:
            return Result(False, error=f"refused: {exc.message}", final=True)
        body = notify.body_bytes(notify.payload(doc, target.format))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": notify.USER_AGENT,
            notify.IDEMPOTENCY_HEADER: str(doc["idempotency_key"]),
            notify.EVENT_HEADER: str(doc["event"]),
        }
        if target.secret:
            headers[notify.SIGNATURE_HEADER] = notify.sign(body, target.secret)
        timeout = self.settings.notify_timeout
        session = requests.Session()
        session.trust_env = False  # no proxies or netrc from the server's environment
        try:
            response = session.post(
                target.url,
                data=body,
                headers=headers,
                timeout=(min(5.0, timeout), timeout),
                allow_redirects=False,
            )
            response.close()
        except requests.Timeout:
            return Result(False, error=f"no answer within {timeout:g} s")
        except requests.RequestException as exc:
            return Result(
                False, error=f"cannot reach {shown_url(target.url)}: {type(exc).__name__}"
            )
        finally:
            session.close()
        status = response.status_code
        if 200 <= status < 300:
            return Result(True, status)
        reason = f"answered {status} {response.reason or ''}".strip()
        if 300 <= status < 400:
            return Result(False, status, f"{reason} (redirects are not followed)", final=True)
        retry = status >= 500 or status in RETRYABLE_STATUSES
        return Result(False, status, reason, final=not retry)

    def _mail(self, target: NotifyTarget, doc: dict[str, Any]) -> Result:
        import smtplib

        s = self.settings
        if not s.smtp_host:
            return Result(False, error="this server has no SMTP settings", final=True)
        message = notify.email_message(doc, target, s.smtp_from)
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.notify_timeout) as smtp:
                if s.smtp_starttls:
                    smtp.starttls()
                if s.smtp_user:
                    smtp.login(s.smtp_user, s.smtp_password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            return Result(
                False, error=f"the SMTP server refused {target.address}: {exc}", final=True
            )
        except (smtplib.SMTPException, OSError) as exc:
            return Result(False, error=f"SMTP {s.smtp_host}:{s.smtp_port}: {exc}")
        return Result(True)
