"""The consumer against the real RabbitMQ and each store backend: what is published ends up in
the store, complete and exactly once, and every gateway hears about it."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from consumer.service import Consumer
from snakedeck import envelope
from snakedeck.bus import Bus, Delivery, Outgoing, open_bus
from snakedeck.envelope import Envelope
from snakedeck.settings import Settings
from snakedeck.store import JobFilter, Store, open_store
from snakedeck.store.mongo import MongoStore
from tests.support.events import register, synthetic_run
from tests.support.waiting import wait_for


def outgoing(events: Sequence[Envelope]) -> list[Outgoing]:
    return [Outgoing(envelope.routing_key(e), e, envelope.message_id(e)) for e in events]


@dataclass(frozen=True)
class RawOutgoing(Outgoing):
    """A message whose body is not JSON at all, as a broken producer might send."""

    raw: bytes = b""

    def encode(self) -> bytes:
        return self.raw


class Updates:
    """Collects the consumer's update fan-out, as a gateway would receive it."""

    def __init__(self, bus: Bus) -> None:
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.subscription = bus.consume_updates(self._on)
        assert self.subscription.wait_ready(15), "updates subscription never connected"  # type: ignore[attr-defined]

    def _on(self, deliveries: Sequence[Delivery]) -> None:
        with self._lock:
            self.bodies += [d.json() for d in deliveries]

    def seqs(self, run_id: str) -> list[int]:
        with self._lock:
            return [e["seq"] for b in self.bodies for e in b["events"] if e["run_id"] == run_id]

    def runs(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for b in self.bodies for r in b["runs"] if r["run_id"] == run_id]

    def jobs(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [j for b in self.bodies for j in b["jobs"] if j["run_id"] == run_id]


@pytest.fixture
def consumer(settings: Settings, store: Store, bus: Bus) -> Iterator[Consumer]:
    c = Consumer(settings, store, bus, batch_size=50)
    c.start()
    yield c
    c.stop()


def persisted(store: Store, run_id: str, last_seq: int) -> bool:
    run = store.get_run(run_id)
    return run is not None and run["last_seq"] >= last_seq and run["state"] != "RUNNING"


def snapshot(store: Store, run_id: str) -> tuple[Any, ...]:
    run = {k: v for k, v in (store.get_run(run_id) or {}).items() if k != "_rev"}
    jobs = store.list_jobs(run_id, JobFilter(), page_size=1000).items
    return run, jobs, store.list_events(run_id, limit=10_000), store.count_events()


def test_published_events_end_in_the_store_complete_with_no_gap(
    consumer: Consumer, store: Store, bus: Bus
):
    run = synthetic_run("cons-1", samples=6)
    register(store, run)
    bus.publish_events(outgoing(run.events))
    assert wait_for(lambda: persisted(store, "cons-1", len(run.events)))
    doc = store.get_run("cons-1")
    assert doc["state"] == "COMPLETE"
    assert doc["progress"]["done"] == doc["progress"]["total"] == 14
    seqs = [e["seq"] for e in store.list_events("cons-1", limit=10_000)]
    assert seqs == list(range(1, len(run.events) + 1))
    assert store.list_jobs("cons-1", JobFilter(state="done")).total == 14
    assert wait_for(lambda: bus.queue_depth("persist") == 0)


def test_a_malformed_message_is_dead_lettered_and_the_consumer_keeps_going(
    consumer: Consumer, store: Store, bus: Bus
):
    bad_envelope = {"v": 1, "run_id": "bad run id!", "seq": 1, "type": "log"}
    bus.publish_events(
        [
            Outgoing("run.x.log", bad_envelope, "x:1"),
            RawOutgoing("run.y.log", {}, "y:1", raw=b"\xff not json"),
        ]
    )
    run = synthetic_run("cons-2", samples=2)
    register(store, run)
    bus.publish_events(outgoing(run.events))
    assert wait_for(lambda: persisted(store, "cons-2", len(run.events)))
    assert store.get_run("cons-2")["state"] == "COMPLETE"
    assert wait_for(lambda: len(bus.dead_letters()) == 2)
    dead = {d.body: d for d in bus.dead_letters()}
    assert "not valid JSON" in dead[b"\xff not json"].reason
    (other,) = [d for body, d in dead.items() if body != b"\xff not json"]
    assert json.loads(other.body) == bad_envelope
    assert "run_id" in other.reason and other.queue == "persist"
    assert store.get_run("bad run id!") is None


def test_republishing_a_finished_run_shuffled_changes_nothing(
    consumer: Consumer, store: Store, bus: Bus
):
    updates = Updates(bus)
    run = synthetic_run("cons-3", samples=3, fail_job=6)
    register(store, run)
    bus.publish_events(outgoing(run.events))
    assert wait_for(lambda: persisted(store, "cons-3", len(run.events)))
    assert wait_for(lambda: len(updates.seqs("cons-3")) >= len(run.events))
    before = snapshot(store, "cons-3")
    assert before[0]["state"] == "EXECUTOR_ERROR"

    again = list(run.events)
    random.Random(5).shuffle(again)
    bus.publish_events(outgoing(again))
    # Each replayed event is announced once it has been through the store again.
    assert wait_for(lambda: len(updates.seqs("cons-3")) >= 2 * len(run.events))
    assert snapshot(store, "cons-3") == before
    updates.subscription.stop()


def test_the_update_fan_out_carries_the_events_runs_and_jobs(
    consumer: Consumer, store: Store, bus: Bus
):
    updates = Updates(bus)
    run = synthetic_run("cons-4", samples=2, cancel_after=2)
    register(store, run)
    bus.publish_events(outgoing(run.events))
    assert wait_for(
        lambda: sorted(set(updates.seqs("cons-4"))) == list(range(1, len(run.events) + 1))
    )
    assert updates.runs("cons-4")[-1]["state"] == "CANCELED"
    assert "config" not in updates.runs("cons-4")[-1]
    final_jobs = {j["jobid"]: j["state"] for j in updates.jobs("cons-4")}
    assert final_jobs == {
        str(j.jobid): j.expected_state for j in run.jobs.values() if j.expected_state != "not_run"
    }
    assert "cancelled" in final_jobs.values()
    first = updates.bodies[0]
    assert first["kind"] == "persisted"
    assert first["events"][0] == run.events[0]
    updates.subscription.stop()


def test_a_store_outage_requeues_batches_and_loses_nothing(settings_factory):
    settings = settings_factory(backend="sqlite", bus="amqp")
    store = open_store(settings)
    bus = open_bus(settings)
    bus.declare()
    down = MongoStore("mongodb://127.0.0.1:1/?directConnection=true", "x", timeout_ms=200)
    failing = Consumer(settings, down, bus, batch_size=50)
    healthy = Consumer(settings, store, bus, batch_size=50)
    try:
        failing.start()
        run = synthetic_run("cons-5", samples=3)
        bus.publish_events(outgoing(run.events))
        assert wait_for(lambda: failing.store_failures >= 2)
        failing.stop()
        register(store, run)
        assert store.get_run("cons-5")["last_seq"] == 0

        healthy.start()
        assert wait_for(lambda: persisted(store, "cons-5", len(run.events)))
        seqs = [e["seq"] for e in store.list_events("cons-5", limit=10_000)]
        assert seqs == list(range(1, len(run.events) + 1))
        assert store.get_run("cons-5")["state"] == "COMPLETE"
    finally:
        failing.stop()
        healthy.stop()
        down.close()
        bus.delete_topology()  # type: ignore[attr-defined]
        bus.close()
        store.close()
