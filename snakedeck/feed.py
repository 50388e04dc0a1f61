"""The live feed, without a transport: what every subscriber of a run (or of all runs) is sent.

Each gateway process binds its own exclusive queue to the updates fanout (:class:`LiveHub`), so
every process sees every update the consumers persist. A client's subscription is one
:class:`FeedSubscriber`, the seam between history and live:

1. it is registered with the hub (buffering live updates) *before* the store is read;
2. :meth:`FeedSubscriber.open` replays stored events after the client's ``after_seq``;
3. :meth:`FeedSubscriber.serve` then delivers buffered and live events with ``seq`` above the
   last one sent. A live event that skips ahead is held back and the gap filled from the store;
   nothing goes out until the sequence is contiguous again.

Updates are best effort (the consumer publishes them after the store has the events), so the
subscriber heals itself: when it has been idle for :data:`CATCH_UP_SECONDS`, or a gap has been
held for :data:`GAP_HOLD_SECONDS`, it re-reads the store from the last seq it sent; and any
failure while doing so (the store down, a malformed update) is logged and retried, never fatal.
Socket.IO and the plain WebSocket are thin adapters over this module, so both behave the same.

A subscriber may ask for **batches** (``batch``): its events then go out as one ``events``
message holding a list (in seq order, gap-free as ever) per pass of the loop, with everything
queued meanwhile taken in the same pass, so a client that falls behind is sent fewer, bigger
messages and catches up instead of falling further behind (200 subscribers of a busy run).
Other messages are never reordered around them: pending events go out before a ``run``,
``job`` or ``log`` message.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from snakedeck import envelope, metrics, projection
from snakedeck.bus.base import Bus, Delivery, Subscription
from snakedeck.documents import Envelope, public
from snakedeck.store import RunFilter, Store, StoreError

log = logging.getLogger(__name__)

FeedKind = Literal["event", "events", "run", "job", "log"]
Send = Callable[[FeedKind, Any], None]
"""``send(kind, data)``: the transport's way of putting one message on the wire."""

REPLAY_PAGE: Final = 1000
POLL_SECONDS: Final = 1.0
"""How often a waiting subscriber checks that its client is still there."""
CATCH_UP_SECONDS: Final = 5.0
"""A subscriber idle this long re-reads the store: a lost update must not stall a client."""
GAP_HOLD_SECONDS: Final = 1.0
"""An event held this long behind a gap makes the subscriber re-read the store for it."""
ALL_RUNS_CATCH_UP: Final = 50
"""How many of the newest runs an all-runs subscriber re-reads when it catches up."""
MAX_BATCH: Final = 1000
"""The most events in one ``events`` message (a replay page; a backlog taken in one pass)."""


class FeedClosed(Exception):
    """The client went away; the subscriber stops."""


@dataclass(frozen=True)
class CatchUpPolicy:
    """When a subscriber re-reads the store on its own (the defaults suit a live deployment;
    tests shorten them)."""

    idle: float = CATCH_UP_SECONDS
    gap_hold: float = GAP_HOLD_SECONDS
    poll: float = POLL_SECONDS


DEFAULT_POLICY: Final = CatchUpPolicy()


class FeedSubscriber:
    """One client's subscription to one run (``run_id``) or to every run (``run_id=None``)."""

    def __init__(
        self,
        store: Store,
        send: Send,
        *,
        run_id: str | None,
        after_seq: int = 0,
        policy: CatchUpPolicy = DEFAULT_POLICY,
        batch: bool = False,
    ) -> None:
        self.store = store
        self.send = send
        self.run_id = run_id
        self.after_seq = after_seq
        self.policy = policy
        self.batch = batch
        self.closed = False
        self._pending: list[Any] = []
        """Batch subscribers: events of this pass not sent yet (see :meth:`_flush`)."""
        self.failures = 0
        """Failures this subscriber healed from (store down, bad update); tests read it."""
        self._inbox: queue.Queue[Mapping[str, Any] | None] = queue.Queue()
        self._last: dict[str, int] = {}
        """Per run: the highest seq sent (everything up to it has been sent)."""
        self._held: dict[str, dict[int, Envelope]] = {}
        """Per run: events that arrived ahead of a gap, waiting until it is filled."""
        self._held_since: float | None = None
        self._run_marks: dict[str, tuple[Any, Any]] = {}
        """All-runs subscribers: (state, last_seq) of each run summary sent."""

    # -- called from the bus thread -------------------------------------------------------------
    def offer(self, update: Mapping[str, Any]) -> None:
        """Queue the part of an update this subscriber wants (never blocks, never sends)."""
        if self.closed:
            return
        if self.run_id is None:  # runs and jobs of every run; log text only to a run's own
            if update.get("events") or update.get("runs") or update.get("jobs"):
                self._inbox.put({k: v for k, v in update.items() if k != "logs"})
            return
        mine = {
            key: [d for d in _items(update, key) if d.get("run_id") == self.run_id]
            for key in ("events", "runs", "jobs", "logs")
        }
        if any(mine.values()):
            self._inbox.put(mine)

    # -- called from the client's own greenlet/thread -------------------------------------------
    def open(self) -> int | None:
        """Send the stored events after ``after_seq`` and the run's summary; returns the last
        seq sent (the subscribe ack carries it), or ``None`` for an all-runs subscriber. A store
        failure here is healed like any other: :meth:`serve` catches up once it can."""
        if self.run_id is None:
            return None
        self._last[self.run_id] = self.after_seq
        self._guarded(self._replay)
        return self._last[self.run_id]

    def _replay(self) -> None:
        assert self.run_id is not None
        while True:
            last = self._last[self.run_id]
            batch = self.store.list_events(self.run_id, after_seq=last, limit=REPLAY_PAGE)
            for event in batch:  # through the seam: the store itself may have a gap (two
                self._deliver(event)  # consumers), and what lies beyond it must wait
            if len(batch) < REPLAY_PAGE or self._last[self.run_id] == last:
                break
        run = self.store.get_run(self.run_id)
        if run is not None:
            self._send_run(projection.run_summary(run))

    def serve(self, alive: Callable[[], bool] = lambda: True) -> None:
        """Deliver updates until the subscriber is closed or ``alive()`` turns false, catching up
        from the store when idle or when a gap is held too long. The one loop of every transport."""
        idle_since = time.monotonic()
        while not self.closed and alive():
            try:
                item = self._inbox.get(timeout=self.policy.poll)
            except queue.Empty:
                if time.monotonic() - idle_since >= self.policy.idle:
                    idle_since = time.monotonic()
                    self._guarded(self.catch_up)
                elif self._gap_held_too_long():
                    self._guarded(self.catch_up)
                continue
            if item is None:  # close() woke us
                break
            idle_since = time.monotonic()
            items = [item, *self._take_queued()] if self.batch else [item]
            self._guarded(lambda items=items: self._handle_all(items))
            if self.closed:
                break
            if self._gap_held_too_long():
                self._guarded(self.catch_up)

    def _take_queued(self) -> list[Mapping[str, Any]]:
        """What is queued now (a batch subscriber handles it in the same pass); a close()
        among it is put back, so the loop still ends."""
        items: list[Mapping[str, Any]] = []
        while len(items) < MAX_BATCH:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._inbox.put(None)
                break
            items.append(item)
        return items

    def _handle_all(self, items: Sequence[Mapping[str, Any]]) -> None:
        for item in items:
            self.handle(item)

    def drain(self) -> None:
        """Handle every update queued so far, now, without waiting (a test hook)."""
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item is None:
                return
            self._guarded(lambda item=item: self.handle(item))

    def handle(self, update: Mapping[str, Any]) -> None:
        """Send what one update holds for this subscriber (events through the seam)."""
        for event in _items(update, "events"):
            self._deliver(event)
        for run in _items(update, "runs"):
            self._send_run(run)
        for job in _items(update, "jobs"):
            self._send("job", job)
        for chunk in _items(update, "logs"):
            self._send("log", chunk)

    def catch_up(self) -> None:
        """Send what the store has beyond what was sent (the consumer may have lost an update:
        it publishes them best effort, after the store has the events)."""
        if self.run_id is None:
            page = self.store.list_runs(RunFilter(), page_size=ALL_RUNS_CATCH_UP)
            for run in page.items:
                self._send_run(projection.run_summary(run))
            return
        if self.run_id not in self._last:
            return
        last = self._last[self.run_id]
        while True:
            batch = self.store.list_events(self.run_id, after_seq=last, limit=REPLAY_PAGE)
            for event in batch:
                self._deliver(event)
            new_last = self._last.get(self.run_id, last)
            if len(batch) < REPLAY_PAGE or new_last == last:
                break
            last = new_last
        run = self.store.get_run(self.run_id)
        if run is not None:
            self._send_run(projection.run_summary(run))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._inbox.put(None)

    # -- the seam -------------------------------------------------------------------------------
    def _deliver(self, event: Envelope) -> None:
        run_id = event["run_id"]
        seq = int(event["seq"])
        last = self._last.get(run_id)
        if last is None:  # an all-runs subscriber meeting this run for the first time
            last = seq - 1
        if seq <= last:
            return  # already sent (replayed, or a redelivered update)
        held = self._held.setdefault(run_id, {})
        held[seq] = event
        if seq > last + 1 and last + 1 not in held:
            for stored in self.store.list_events(run_id, after_seq=last, limit=seq - last - 1):
                held.setdefault(int(stored["seq"]), stored)
        while last + 1 in held:
            last += 1
            self._send_event(public(held.pop(last)))
        self._last[run_id] = last
        if not held:
            self._held.pop(run_id, None)
        if not self._held:
            self._held_since = None
        elif self._held_since is None:
            self._held_since = time.monotonic()

    def _gap_held_too_long(self) -> bool:
        return (
            self._held_since is not None
            and time.monotonic() - self._held_since >= self.policy.gap_hold
        )

    def _send_run(self, run: Mapping[str, Any]) -> None:
        mark = (run.get("state"), run.get("last_seq"))
        run_id = str(run.get("run_id"))
        if self._run_marks.get(run_id) == mark and self.run_id is None:
            return  # an all-runs catch-up re-reading what the client already has
        self._run_marks[run_id] = mark
        self._send("run", dict(run))

    def _send_event(self, event: Any) -> None:
        if not self.batch:
            self._send("event", event)
            return
        self._pending.append(event)
        if len(self._pending) >= MAX_BATCH:
            self._flush()

    def _flush(self) -> None:
        """Send the batch subscriber's pending events as one ``events`` message."""
        if self._pending:
            events, self._pending = self._pending, []
            self._put("events", events)

    def _send(self, kind: FeedKind, data: Any) -> None:
        self._flush()  # events first: nothing overtakes them
        self._put(kind, data)

    def _put(self, kind: FeedKind, data: Any) -> None:
        if self.closed:
            raise FeedClosed
        try:
            self.send(kind, data)
        except Exception as exc:
            raise FeedClosed from exc

    def _guarded(self, step: Callable[[], None]) -> None:
        """Run one step; the client leaving ends the feed, anything else is healed next time.
        Whatever the step batched goes out at its end (also when it failed half-way: what was
        sent is remembered as sent)."""
        try:
            try:
                step()
            finally:
                self._flush()
        except FeedClosed:
            self.close()
        except Exception as exc:
            self.failures += 1
            level = logging.WARNING if isinstance(exc, StoreError) else logging.ERROR
            log.log(
                level,
                "live feed of %s: %s: %s; re-reading the store to catch up",
                self.run_id or "all runs",
                type(exc).__name__,
                exc,
                exc_info=level == logging.ERROR,
            )


def _items(update: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The well-formed documents under ``key`` of an update (a malformed one skips, not kills)."""
    value = update.get(key)
    if not isinstance(value, list):
        return []
    return [d for d in value if isinstance(d, dict) and isinstance(d.get("run_id"), str)]


class LiveHub:
    """Fans updates from the bus out to this process's subscribers."""

    def __init__(self, store: Store, bus: Bus, *, policy: CatchUpPolicy = DEFAULT_POLICY) -> None:
        self.store = store
        self.bus = bus
        self.policy = policy
        self._subs: set[FeedSubscriber] = set()
        self._lock = threading.Lock()
        self._subscription: Subscription | None = None
        self.clients = 0

    # -- lifecycle (the composition root starts it; the app factory only builds it) -------------
    def start(self) -> None:
        if self._subscription is None:
            self._subscription = self.bus.consume_updates(self._on_updates)

    def stop(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.stop()
        with self._lock:
            subs = list(self._subs)
            self._subs.clear()
        for sub in subs:
            sub.close()

    @property
    def consuming(self) -> bool:
        """Whether updates are flowing in from the bus (``/readyz`` reports it)."""
        return self._subscription is not None and self._subscription.healthy

    # -- subscribers ----------------------------------------------------------------------------
    def subscribe(
        self, send: Send, *, run_id: str | None, after_seq: int = 0, batch: bool = False
    ) -> FeedSubscriber:
        """A new subscriber, registered before it reads the store (see the module docstring)."""
        sub = FeedSubscriber(
            self.store, send, run_id=run_id, after_seq=after_seq, policy=self.policy, batch=batch
        )
        with self._lock:
            self._subs.add(sub)
            self.clients = len(self._subs)
        return sub

    def remove(self, sub: FeedSubscriber) -> None:
        sub.close()
        with self._lock:
            self._subs.discard(sub)
            self.clients = len(self._subs)

    def _on_updates(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            try:
                body = delivery.json()
            except ValueError:
                body = None
            kind = body.get("kind") if isinstance(body, dict) else None
            if kind != "persisted":
                log.warning("dropping an update that is not one: %r", delivery.body[:200])
                continue
            events = body.get("events")  # type: ignore[union-attr]
            metrics.LIVE_EVENTS_RECEIVED.inc(len(events) if isinstance(events, list) else 0)
            with self._lock:
                subs = list(self._subs)
            for sub in subs:
                sub.offer(body)


class SubscribeError(Exception):
    """A subscription request that cannot be served; ``problem`` is its problem document."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problem: dict[str, Any] = {"status": status, "detail": detail}
        if field:
            self.problem["errors"] = [{"field": field, "message": detail}]


def parse_subscription(data: object, store: Store) -> tuple[str | None, int]:
    """``{"run_id": …}`` or ``{"all": true}``, optional ``after_seq`` (run subscriptions only);
    the same rules for every transport."""
    if not isinstance(data, dict):
        raise SubscribeError(422, 'send {"run_id": "..."} or {"all": true}', "body")
    after = data.get("after_seq", 0)
    if after is None or after == "":
        after = 0
    if isinstance(after, str) and after.isdigit() and len(after) <= 20:
        after = int(after)
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= envelope.MAX_SEQ:
        raise SubscribeError(422, "after_seq must be an integer from 0 to 2^53", "after_seq")
    if data.get("all") is True:
        return None, 0
    run_id = data.get("run_id")
    if not isinstance(run_id, str) or not envelope.is_valid_run_id(run_id):
        raise SubscribeError(422, 'run_id must be a run id (or send {"all": true})', "run_id")
    try:
        found = store.get_run(run_id)
    except StoreError as exc:
        raise SubscribeError(503, f"the run store is unavailable: {exc}") from None
    if found is None:
        raise SubscribeError(404, f"no run with id {run_id!r}", "run_id")
    return run_id, after


def wants_batches(data: object) -> bool:
    """The subscription's ``batch`` option: ``true`` (``1``/``true`` in a query string) asks
    for ``events`` messages; absent or false, one ``event`` message per event."""
    value = data.get("batch") if isinstance(data, dict) else None
    if value is None or value is False or value in ("", "0", "false"):
        return False
    if value is True or value in ("1", "true"):
        return True
    raise SubscribeError(422, "batch must be true or false", "batch")
