"""The live feed's seam between stored history and live updates: a subscriber sees every event
of a run exactly once, in seq order, whatever the interleaving of replay, live updates,
redeliveries and out-of-order persistence. Real SQLite store and in-process bus."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from snakedeck.bus.local import LocalBus
from snakedeck.feed import (
    CatchUpPolicy,
    FeedSubscriber,
    LiveHub,
    SubscribeError,
    parse_subscription,
    wants_batches,
)
from snakedeck.store import StoreError
from snakedeck.store.sqlite import SqliteStore
from tests.support.events import persist, register, synthetic_run
from tests.support.live_clients import wait_until
from tests.support.services import unique_namespace


class Collector:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, kind: str, data: Any) -> None:
        with self.cond:
            self.sent.append((kind, data))
            self.cond.notify_all()

    def seqs(self) -> list[int]:
        """Every event's seq, whether it came alone or in an ``events`` batch."""
        return [e["seq"] for k, d in self.sent for e in (d if k == "events" else [d]) if "seq" in e]

    def wait_seqs(self, n: int, timeout: float = 10) -> list[int]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.seqs()) >= n, timeout)
        return self.seqs()


def update(events: list[dict]) -> dict:
    return {"kind": "persisted", "events": events, "runs": [], "jobs": []}


def test_replay_then_overlapping_live_updates_are_sent_once(store: SqliteStore) -> None:
    run = synthetic_run("r1", samples=3)
    events = run.events
    persist(store, events[:10])
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1", after_seq=3)
    sub.offer(update(events[7:10]))  # arrived while the store was being read: 8..10 overlap
    sub.offer(update(events[7:12]))  # a redelivered update
    assert sub.open() == 10
    sub.drain()
    assert out.seqs() == list(range(4, 13))


def test_a_replay_does_not_skip_a_gap_in_the_store_itself(store: SqliteStore) -> None:
    """With two consumers the store can hold 13 before 11 and 12: the replay stops at the gap
    and sends 13 only once 11 and 12 have come (before, it jumped over them for good)."""
    events = synthetic_run("r1", samples=3).events
    persist(store, events[:10] + events[12:13])
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1")
    assert sub.open() == 10
    assert out.seqs() == list(range(1, 11))
    sub.offer(update(events[10:12]))
    sub.drain()
    assert out.seqs() == list(range(1, 14))


def test_a_gap_is_filled_from_the_store_before_later_events_go_out(store: SqliteStore) -> None:
    events = synthetic_run("r1", samples=3).events
    persist(store, events[:5])
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1", after_seq=0)
    sub.open()
    persist(store, events[5:8])  # another consumer persisted 6..8; its update is still on the way
    sub.offer(update(events[8:9]))  # 9 arrives first
    sub.drain()
    assert out.seqs() == list(range(1, 10))
    sub.offer(update(events[5:8]))  # the late update: nothing more to send
    sub.drain()
    assert out.seqs() == list(range(1, 10))


def test_events_ahead_of_an_unfilled_gap_wait_until_it_closes(store: SqliteStore) -> None:
    events = synthetic_run("r1", samples=3).events
    persist(store, events[:3])
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1")
    sub.open()
    sub.offer(update(events[5:7]))  # 6, 7: 4 and 5 are in neither the store nor an update yet
    sub.drain()
    assert out.seqs() == [1, 2, 3]
    sub.offer(update(events[3:5]))
    sub.drain()
    assert out.seqs() == [1, 2, 3, 4, 5, 6, 7]


def test_an_all_runs_subscriber_gets_each_run_in_order(store: SqliteStore) -> None:
    a = synthetic_run("ra", samples=2).events
    b = synthetic_run("rb", samples=2).events
    out = Collector()
    sub = FeedSubscriber(store, out, run_id=None)
    assert sub.open() is None
    persist(store, a[:4] + b[:4])
    sub.offer(update(a[:2] + b[:2]))
    sub.offer(update(a[3:4] + b[1:4]))  # a's 3 is missing here but stored: filled
    sub.drain()
    got = {
        rid: [d["seq"] for k, d in out.sent if k == "event" and d["run_id"] == rid]
        for rid in ("ra", "rb")
    }
    assert got == {"ra": [1, 2, 3, 4], "rb": [1, 2, 3, 4]}


def test_the_hub_fans_bus_updates_to_every_matching_subscriber(store: SqliteStore) -> None:
    bus = LocalBus(unique_namespace())
    hub = LiveHub(store, bus)
    hub.start()
    try:
        events = synthetic_run("r1", samples=2).events
        mine, everyone, other = Collector(), Collector(), Collector()
        register(store, "r2")
        subs = [
            hub.subscribe(mine, run_id="r1"),
            hub.subscribe(everyone, run_id=None),
            hub.subscribe(other, run_id="r2"),
        ]
        threads = []
        for sub in subs:
            sub.open()
            threads.append(threading.Thread(target=sub.serve, daemon=True))
            threads[-1].start()
        result = persist(store, events)
        bus.publish_update(
            {"kind": "persisted", "events": result.events, "runs": result.runs, "jobs": []}
        )
        bus.publish_update({"kind": "unknown"})  # ignored, not fatal
        n = len(events)
        assert mine.wait_seqs(n) == list(range(1, n + 1))
        assert everyone.wait_seqs(n) == list(range(1, n + 1))
        assert other.seqs() == []
        assert any(k == "run" and d["run_id"] == "r1" for k, d in mine.sent)
    finally:
        hub.stop()
        bus.close()


QUICK = CatchUpPolicy(idle=0.3, gap_hold=0.2, poll=0.05)


class FlakyStore:
    """The real store behind a switch: while ``down`` every read fails as an outage would."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreError("the store is down (test)")
            return attr(*args, **kwargs)

        return call


def serve_in_thread(sub: FeedSubscriber) -> threading.Thread:
    thread = threading.Thread(target=sub.serve, daemon=True)
    thread.start()
    return thread


def test_an_idle_subscriber_catches_up_after_a_lost_update(store: SqliteStore) -> None:
    events = synthetic_run("r1", samples=3).events
    persist(store, events[:5])
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1", policy=QUICK)
    assert sub.open() == 5
    serve_in_thread(sub)
    persist(store, events[5:])  # stored, but its update never reaches this gateway
    try:
        assert out.wait_seqs(len(events), timeout=5) == list(range(1, len(events) + 1))
        wait_until(
            lambda: out.sent[-1][0] == "run" and out.sent[-1][1]["state"] == "COMPLETE",
            5,
            what="the run's final summary",
        )
    finally:
        sub.close()


def test_a_gap_held_behind_a_busy_feed_is_filled_without_waiting_for_idle(
    store: SqliteStore,
) -> None:
    events = synthetic_run("r1", samples=4).events
    persist(store, events[:3])
    out = Collector()
    busy = CatchUpPolicy(idle=3600, gap_hold=0.2, poll=0.05)  # never idle
    sub = FeedSubscriber(store, out, run_id="r1", policy=busy)
    sub.open()
    serve_in_thread(sub)
    try:
        sub.offer(update(events[5:6]))  # 6 arrives; 4 and 5 are neither stored nor announced
        persist(store, events[3:5])  # now stored, but their update was lost
        for event in events[6:]:  # the feed keeps the subscriber busy
            sub.offer(update([event]))
            time.sleep(0.01)
        persist(store, events[5:])
        assert out.wait_seqs(len(events), timeout=5) == list(range(1, len(events) + 1))
    finally:
        sub.close()


def test_a_subscriber_survives_a_store_outage_and_a_malformed_update(store: SqliteStore) -> None:
    events = synthetic_run("r1", samples=3).events
    persist(store, events[:4])
    flaky = FlakyStore(store)
    out = Collector()
    sub = FeedSubscriber(flaky, out, run_id="r1", policy=QUICK)  # type: ignore[arg-type]
    sub.open()
    serve_in_thread(sub)
    try:
        sub.offer({"kind": "persisted", "events": [{"run_id": "r1", "seq": "x"}], "runs": 7})
        flaky.down = True
        persist(store, events[4:10])
        sub.offer(update(events[9:10]))  # its gap cannot be filled while the store is down
        wait_until(lambda: sub.failures >= 2, 5, what="the subscriber to meet the outage")
        flaky.down = False
        persist(store, events[10:])
        assert out.wait_seqs(len(events), timeout=5) == list(range(1, len(events) + 1))
        assert not sub.closed
    finally:
        sub.close()


def test_an_all_runs_subscriber_catches_up_on_run_states(store: SqliteStore) -> None:
    out = Collector()
    sub = FeedSubscriber(store, out, run_id=None, policy=QUICK)
    sub.open()
    serve_in_thread(sub)
    try:
        persist(store, synthetic_run("r1", samples=2).events)  # no update at all
        wait_until(
            lambda: any(k == "run" and d["state"] == "COMPLETE" for k, d in out.sent),
            5,
            what="the run's summary from the store",
        )
        sent = len(out.sent)
        time.sleep(1.0)  # further idle catch-ups resend nothing new
        assert len(out.sent) == sent
    finally:
        sub.close()


def test_subscription_requests_are_checked_the_same_for_every_transport(
    store: SqliteStore,
) -> None:
    register(store, "r1")
    assert parse_subscription({"run_id": "r1", "after_seq": "7"}, store) == ("r1", 7)
    assert parse_subscription({"all": True}, store) == (None, 0)
    for bad, status, field in [
        ("x", 422, "body"),
        ({"run_id": "r1", "after_seq": 2**80}, 422, "after_seq"),
        ({"run_id": "r1", "after_seq": -1}, 422, "after_seq"),
        ({"run_id": "r1", "after_seq": True}, 422, "after_seq"),
        ({"run_id": "../x"}, 422, "run_id"),
        ({"run_id": "nope"}, 404, "run_id"),
    ]:
        with pytest.raises(SubscribeError) as info:
            parse_subscription(bad, store)
        assert info.value.status == status
        assert info.value.problem["errors"][0]["field"] == field


def test_log_chunks_reach_the_runs_subscribers_only(store: SqliteStore) -> None:
    """The runner publishes each stored log chunk; a run's subscribers get it as ``log``, an
    all-runs subscriber (a runs list) is not flooded with every run's log text."""
    register(store, "r1", "r2")
    mine, everyone, other = Collector(), Collector(), Collector()
    subs = [
        FeedSubscriber(store, mine, run_id="r1"),
        FeedSubscriber(store, everyone, run_id=None),
        FeedSubscriber(store, other, run_id="r2"),
    ]
    chunk = {"run_id": "r1", "stream": "snakemake", "offset": 120, "text": "Building DAG\n"}
    for sub in subs:
        sub.open()
        sub.offer({"kind": "persisted", "events": [], "runs": [], "jobs": [], "logs": [chunk]})
        sub.drain()
    assert [d for k, d in mine.sent if k == "log"] == [chunk]
    assert not any(k == "log" for k, _ in everyone.sent + other.sent)


# -- batches ------------------------------------------------------------------------------------


def test_a_batch_subscriber_gets_the_same_events_in_fewer_messages(store: SqliteStore) -> None:
    run = synthetic_run("r1", samples=3)
    events = run.events
    persist(store, events[:10])
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1", after_seq=3, batch=True)
    sub.offer(update(events[7:10]))  # overlaps the replay
    sub.offer(update(events[7:12]))  # a redelivered update
    sub.offer(update(events[13:15]))  # ahead of a gap (13 is missing): filled from the store
    persist(store, events[12:13])
    assert sub.open() == 10
    kinds = [k for k, _ in out.sent]
    assert kinds == ["events", "run"]  # the replay in one message, then the run's summary
    sub.drain()
    assert out.seqs() == list(range(4, 16))
    assert all(k != "event" for k, _ in out.sent)


def test_a_backlog_goes_out_in_one_pass_and_nothing_overtakes_events(store: SqliteStore) -> None:
    """Updates queued while the subscriber was busy are taken together: one ``events``
    message, and a run summary that came after them is sent after them."""
    run = synthetic_run("r1", samples=4)
    events = run.events
    result = persist(store, events)
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1", batch=True, policy=QUICK)
    sub._last["r1"] = 0  # as after an empty replay
    for i in range(0, 20, 2):
        sub.offer(update(events[i : i + 2]))
    sub.offer({"kind": "persisted", "events": [], "runs": result.runs, "jobs": []})
    sub.offer(update(events[20:22]))
    thread = serve_in_thread(sub)
    try:
        assert out.wait_seqs(22) == list(range(1, 23))
    finally:
        sub.close()
        thread.join(5)
    kinds = [k for k, _ in out.sent]
    assert kinds[:3] == ["events", "run", "events"], kinds
    assert len(out.sent[0][1]) == 20


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, False), (False, False), ("0", False), ("", False), (True, True), ("1", True)],
)
def test_the_batch_option(value: object, expected: bool) -> None:
    assert wants_batches({"batch": value}) is expected


@pytest.mark.parametrize("bad", ["yes", 2, [], {"a": 1}])
def test_a_bad_batch_option_is_refused_with_422(bad: object) -> None:
    with pytest.raises(SubscribeError) as caught:
        wants_batches({"batch": bad})
    assert caught.value.status == 422 and caught.value.problem["errors"][0]["field"] == "batch"
