"""The live feed's seam between stored history and live updates: a subscriber sees every event
of a run exactly once, in seq order, whatever the interleaving of replay, live updates,
redeliveries and out-of-order persistence. Real SQLite store and in-process bus."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.live import FeedSubscriber, LiveHub
from snakedeck.bus.local import LocalBus
from snakedeck.store.sqlite import SqliteStore
from tests.support.events import synthetic_run
from tests.support.live_clients import wait_until
from tests.support.services import unique_namespace


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "s.db")
    store.ensure_schema()
    yield store
    store.close()


class Collector:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, kind: str, data: Any) -> None:
        with self.cond:
            self.sent.append((kind, data))
            self.cond.notify_all()

    def seqs(self) -> list[int]:
        return [d["seq"] for k, d in self.sent if k == "event"]

    def wait_seqs(self, n: int, timeout: float = 10) -> list[int]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.seqs()) >= n, timeout)
        return self.seqs()


def update(events: list[dict]) -> dict:
    return {"kind": "persisted", "events": events, "runs": [], "jobs": []}


def test_replay_then_overlapping_live_updates_are_sent_once(store: SqliteStore) -> None:
    run = synthetic_run("r1", samples=3)
    events = run.events
    store.persist(events[:10])
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1", after_seq=3)
    sub.offer(update(events[7:10]))  # arrived while the store was being read: 8..10 overlap
    sub.offer(update(events[7:12]))  # a redelivered update
    assert sub.replay() == 10
    sub.pump(timeout=0.1)
    assert out.seqs() == list(range(4, 13))


def test_a_gap_is_filled_from_the_store_before_later_events_go_out(store: SqliteStore) -> None:
    events = synthetic_run("r1", samples=3).events
    store.persist(events[:5])
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1", after_seq=0)
    sub.replay()
    store.persist(events[5:8])  # another consumer persisted 6..8; its update is still on the way
    sub.offer(update(events[8:9]))  # 9 arrives first
    sub.pump(timeout=0.1)
    assert out.seqs() == list(range(1, 10))
    sub.offer(update(events[5:8]))  # the late update: nothing more to send
    sub.pump(timeout=0.1)
    assert out.seqs() == list(range(1, 10))


def test_events_ahead_of_an_unfilled_gap_wait_until_it_closes(store: SqliteStore) -> None:
    events = synthetic_run("r1", samples=3).events
    store.persist(events[:3])
    out = Collector()
    sub = FeedSubscriber(store, out, run_id="r1")
    sub.replay()
    sub.offer(update(events[5:7]))  # 6, 7: 4 and 5 are in neither the store nor an update yet
    sub.pump(timeout=0.1)
    assert out.seqs() == [1, 2, 3]
    sub.offer(update(events[3:5]))
    sub.pump(timeout=0.1)
    assert out.seqs() == [1, 2, 3, 4, 5, 6, 7]


def test_an_all_runs_subscriber_gets_each_run_in_order(store: SqliteStore) -> None:
    a = synthetic_run("ra", samples=2).events
    b = synthetic_run("rb", samples=2).events
    out = Collector()
    sub = FeedSubscriber(store, out, run_id=None)
    assert sub.replay() is None
    store.persist(a[:4] + b[:4])
    sub.offer(update(a[:2] + b[:2]))
    sub.offer(update(a[3:4] + b[1:4]))  # a's 3 is missing here but stored: filled
    sub.pump(timeout=0.1)
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
        subs = [
            FeedSubscriber(store, mine, run_id="r1"),
            FeedSubscriber(store, everyone, run_id=None),
            FeedSubscriber(store, other, run_id="r2"),
        ]
        threads = []
        for sub in subs:
            hub.add(sub)
            sub.replay()
            threads.append(threading.Thread(target=sub.pump, daemon=True))
            threads[-1].start()
        result = store.persist(events)
        bus.publish_update(
            {"kind": "persisted", "events": result.events, "runs": result.runs, "jobs": []}
        )
        bus.publish_update({"kind": "heartbeat", "runner_id": "w1", "runs": ["r1"], "ts": "x"})
        n = len(events)
        assert mine.wait_seqs(n) == list(range(1, n + 1))
        assert everyone.wait_seqs(n) == list(range(1, n + 1))
        assert other.seqs() == []
        assert any(k == "run" and d["run_id"] == "r1" for k, d in mine.sent)
        wait_until(lambda: "w1" in hub.runner_status(), what="the runner heartbeat")
        assert hub.runner_status()["w1"]["runs"] == ["r1"]
    finally:
        hub.stop()
        bus.close()
