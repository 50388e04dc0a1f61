"""The service's dead-letter operations over the in-process bus (the standalone one): what an
operator reads, replays and purges, and the limits it refuses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from snakedeck.auth import LOCAL_ADMIN as ADMIN
from snakedeck.bus import Delivery, Outgoing
from snakedeck.bus.amqp import AmqpBus
from snakedeck.bus.local import LocalBus
from snakedeck.paging import MAX_PAGE_SIZE
from snakedeck.service import Invalid, Service, Unavailable
from snakedeck.settings import Settings
from snakedeck.store.sqlite import SqliteStore
from snakedeck.workflows import WorkflowRegistry
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bus(settings: Settings) -> Iterator[LocalBus]:
    bus = LocalBus(settings.namespace)
    bus.declare()
    yield bus
    bus.close()


def publish(bus: LocalBus, count: int) -> None:
    bus.publish_events(Outgoing("run.r1.log", {"n": i}, f"r1:{i}") for i in range(1, count + 1))


def refuse_until(bus: LocalBus, dead: int) -> None:
    """Consume the persist queue as a consumer meeting poison does, dead-lettering every message,
    until ``dead`` letters wait."""

    def handler(batch: Sequence[Delivery]) -> None:
        for delivery in batch:
            delivery.dead_letter(f"poison {delivery.message_id}")

    sub = bus.consume_persist(handler, batch_size=10, max_wait=0.01)
    try:
        wait_for(lambda: bus.queue_depth(bus.topology.dead) == dead, 10, f"{dead} dead letters")
    finally:
        sub.stop()


def refuse_everything(bus: LocalBus, count: int) -> None:
    publish(bus, count)
    refuse_until(bus, count)


def test_dead_letters_are_described_oldest_first_and_counted(
    service: Service, bus: LocalBus
) -> None:
    assert service.dead_letters(by=ADMIN) == {"dead_letters": [], "total": 0}
    refuse_everything(bus, 3)
    page = service.dead_letters(limit=2, by=ADMIN)
    assert page["total"] == 3
    assert [d["message_id"] for d in page["dead_letters"]] == ["r1:1", "r1:2"]
    first = page["dead_letters"][0]
    assert first["reason"] == "poison r1:1" and first["queue"] == "persist"
    assert first["routing_key"] == "run.r1.log" and first["preview"] == '{"n":1}'
    assert service.dead_letters(by=ADMIN)["total"] == 3  # reading removed none


def test_replay_sends_them_back_and_purge_drops_them(service: Service, bus: LocalBus) -> None:
    refuse_everything(bus, 3)
    assert service.replay_dead_letters(limit=1, by=ADMIN) == {"replayed": 1}
    assert bus.queue_depth(bus.topology.persist) == 1
    assert service.dead_letters(by=ADMIN)["total"] == 2
    assert service.replay_dead_letters(by=ADMIN) == {"replayed": 2}
    assert bus.queue_depth(bus.topology.persist) == 3
    refuse_until(bus, 3)  # the consumer refuses the replayed ones again
    assert service.dead_letters(by=ADMIN)["total"] == 3
    assert service.purge_dead_letters(by=ADMIN) == {"purged": 3}
    assert service.dead_letters(by=ADMIN) == {"dead_letters": [], "total": 0}


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1])
def test_a_listing_limit_out_of_range_is_named(service: Service, limit: int) -> None:
    with pytest.raises(Invalid) as info:
        service.dead_letters(limit, by=ADMIN)
    assert [e["field"] for e in info.value.errors] == ["limit"]


def test_a_replay_limit_below_one_is_named(service: Service, bus: LocalBus) -> None:
    refuse_everything(bus, 1)
    with pytest.raises(Invalid) as info:
        service.replay_dead_letters(0, by=ADMIN)
    assert [e["field"] for e in info.value.errors] == ["limit"]
    assert service.dead_letters(by=ADMIN)["total"] == 1


def test_an_unreachable_broker_is_unavailable_for_every_operation(
    settings: Settings, store: SqliteStore
) -> None:
    dead_bus = AmqpBus("amqp://guest:guest@127.0.0.1:1/", settings.namespace, connect_timeout=1)
    service = Service(settings, store, dead_bus, WorkflowRegistry(settings.workflows_dir))
    try:
        for call in (service.dead_letters, service.replay_dead_letters, service.purge_dead_letters):
            with pytest.raises(Unavailable) as info:
                call(by=ADMIN)
            assert "message broker is unavailable" in info.value.detail
    finally:
        dead_bus.close()
