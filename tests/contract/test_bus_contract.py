"""Every bus backend behaves the same where snakedeck relies on it: RabbitMQ (real broker) and
the in-process bus of standalone mode."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pika
import pytest

from snakedeck.bus import Bus, BusError, Delivery, Outgoing, Subscription, open_bus
from snakedeck.bus.amqp import AmqpBus
from snakedeck.bus.local import LocalBus
from snakedeck.settings import Settings, SettingsError
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for


def ready(sub: Subscription) -> Subscription:
    """AMQP fanout subscribers bind their queue on their own thread; wait for it."""
    wait_ready = getattr(sub, "wait_ready", None)
    if wait_ready is not None:
        assert wait_ready(15), "subscription never connected"
    return sub


def make_bus(kind: str, namespace: str, request: pytest.FixtureRequest) -> Bus:
    if kind == "amqp":
        return AmqpBus(request.getfixturevalue("amqp_url"), namespace)
    if kind == "amqp-quorum":  # production's setting for a RabbitMQ cluster
        return AmqpBus(request.getfixturevalue("amqp_url"), namespace, queue_type="quorum")
    return LocalBus(namespace)


@pytest.fixture(params=["local", "amqp", "amqp-quorum"])
def bus_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def bus(bus_kind: str, namespace: str, request: pytest.FixtureRequest) -> Iterator[Bus]:
    b = make_bus(bus_kind, namespace, request)
    b.declare()
    yield b
    b.close()
    cleanup = make_bus(bus_kind, namespace, request)
    cleanup.delete_topology()  # type: ignore[attr-defined]
    cleanup.close()


class Collector:
    """A handler that records every batch; ``settle`` decides what to do with each delivery."""

    def __init__(self, settle: Callable[[Delivery], None] | None = Delivery.ack) -> None:
        self.batches: list[list[Delivery]] = []
        self.lock = threading.Lock()
        self.settle = settle

    def __call__(self, batch: Sequence[Delivery]) -> None:
        with self.lock:
            self.batches.append(list(batch))
        if self.settle is not None:
            for d in batch:
                self.settle(d)

    @property
    def deliveries(self) -> list[Delivery]:
        with self.lock:
            return [d for b in self.batches for d in b]


def events(n: int, run_id: str = "r1", start: int = 1) -> list[Outgoing]:
    return [
        Outgoing(
            routing_key=f"run.{run_id}.log",
            body={"run_id": run_id, "seq": i, "msg": f"event {i}"},
            message_id=f"{run_id}:{i}",
        )
        for i in range(start, start + n)
    ]


def test_events_roundtrip_with_routing_key_and_message_id(bus: Bus) -> None:
    bus.publish_events(events(3))
    got = Collector()
    sub = bus.consume_persist(got, batch_size=10, max_wait=0.05)
    try:
        assert wait_for(lambda: len(got.deliveries) == 3)
    finally:
        sub.stop()
    ds = got.deliveries
    assert [d.json()["seq"] for d in ds] == [1, 2, 3]
    assert [d.routing_key for d in ds] == ["run.r1.log"] * 3
    assert [d.message_id for d in ds] == ["r1:1", "r1:2", "r1:3"]
    assert not any(d.redelivered for d in ds)
    assert bus.queue_depth(bus.topology.persist) == 0


def test_persist_delivers_in_batches_of_at_most_batch_size(bus: Bus) -> None:
    bus.publish_events(events(50))
    got = Collector()
    sub = bus.consume_persist(got, batch_size=20, max_wait=0.5)
    try:
        assert wait_for(lambda: len(got.deliveries) == 50)
    finally:
        sub.stop()
    sizes = [len(b) for b in got.batches]
    assert max(sizes) == 20, sizes
    assert sorted(d.json()["seq"] for d in got.deliveries) == list(range(1, 51))


def test_queue_depth_counts_ready_messages(bus: Bus) -> None:
    assert bus.queue_depth(bus.topology.persist) == 0
    bus.publish_events(events(5))
    assert bus.queue_depth(bus.topology.persist) == 5
    bus.submit_run({"run_id": "r1"})
    assert bus.queue_depth("runs") == 1


def test_queue_depth_of_unknown_queue_names_it(bus: Bus) -> None:
    with pytest.raises(BusError, match="no-such-queue"):
        bus.queue_depth("no-such-queue")
    bus.ping()  # the bus is still usable afterwards


def test_requeue_redelivers_with_redelivered_flag(bus: Bus) -> None:
    bus.publish_events(events(1))
    seen: list[tuple[str | None, bool]] = []

    def handler(batch: Sequence[Delivery]) -> None:
        for d in batch:
            seen.append((d.message_id, d.redelivered))
            if d.redelivered:
                d.ack()
            else:
                d.requeue()

    sub = bus.consume_persist(handler, batch_size=10, max_wait=0.01)
    try:
        assert wait_for(lambda: len(seen) >= 2)
    finally:
        sub.stop()
    assert seen[:2] == [("r1:1", False), ("r1:1", True)]
    assert bus.queue_depth(bus.topology.persist) == 0


def test_settling_twice_is_refused(bus: Bus) -> None:
    bus.publish_events(events(1))
    errors: list[str] = []

    def handler(batch: Sequence[Delivery]) -> None:
        for d in batch:
            d.ack()
            try:
                d.ack()
            except BusError as exc:
                errors.append(str(exc))

    sub = bus.consume_persist(handler, batch_size=10, max_wait=0.01)
    try:
        assert wait_for(lambda: bool(errors))
    finally:
        sub.stop()
    assert "already settled" in errors[0]


def test_unsettled_deliveries_return_to_the_queue_on_stop(bus: Bus) -> None:
    bus.publish_events(events(2))
    first = Collector(settle=None)
    sub = bus.consume_persist(first, batch_size=10, max_wait=0.2)
    assert wait_for(lambda: len(first.deliveries) == 2)
    sub.stop()
    second = Collector()
    sub = bus.consume_persist(second, batch_size=10, max_wait=0.2)
    try:
        assert wait_for(lambda: len(second.deliveries) == 2)
    finally:
        sub.stop()
    assert all(d.redelivered for d in second.deliveries)


def dead_letter_all(reason: str) -> Callable[[Delivery], None]:
    return lambda d: d.dead_letter(reason)


def test_dead_letter_lands_in_dead_letters_with_its_reason_and_stays_there(bus: Bus) -> None:
    bus.publish_events(events(2))

    def settle(d: Delivery) -> None:
        if d.message_id == "r1:2":
            d.dead_letter("seq 2 is poison")
        else:
            d.ack()

    got = Collector(settle)
    sub = bus.consume_persist(got, batch_size=10, max_wait=0.05)
    try:
        assert wait_for(lambda: len(bus.dead_letters()) == 1)
    finally:
        sub.stop()
    dead = bus.dead_letters()
    assert b'"seq":2' in dead[0].body
    assert dead[0].reason == "seq 2 is poison"
    assert dead[0].queue == "persist" and dead[0].routing_key == "run.r1.log"
    assert dead[0].message_id == "r1:2" and dead[0].dead_at.endswith("Z")
    assert bus.dead_letters() == dead  # reading does not remove
    assert bus.queue_depth(bus.topology.dead) == 1
    assert bus.queue_depth(bus.topology.persist) == 0


def test_runs_dead_letter_too(bus: Bus) -> None:
    bus.submit_run({"run_id": "bad"})
    sub = bus.consume_runs(Collector(dead_letter_all("bad command")), prefetch=1)
    try:
        assert wait_for(lambda: len(bus.dead_letters()) == 1)
    finally:
        sub.stop()
    (letter,) = bus.dead_letters()
    assert b'"run_id":"bad"' in letter.body and letter.queue == "runs"


def test_an_auto_acknowledged_fanout_files_a_copy(bus: Bus) -> None:
    sub = bus.consume_control(Collector(dead_letter_all("unknown command")))
    try:
        assert sub.wait_ready(10)
        bus.send_control({"action": "explode"})
        assert wait_for(lambda: len(bus.dead_letters()) == 1)
    finally:
        sub.stop()
    (letter,) = bus.dead_letters()
    assert letter.queue == "control" and letter.reason == "unknown command"


def test_dead_letters_respects_limit(bus: Bus) -> None:
    bus.publish_events(events(5))
    sub = bus.consume_persist(Collector(dead_letter_all("no")), batch_size=10, max_wait=0.05)
    try:
        assert wait_for(lambda: bus.queue_depth(bus.topology.dead) == 5)
    finally:
        sub.stop()
    assert len(bus.dead_letters(limit=3)) == 3
    assert len(bus.dead_letters()) == 5


def test_replay_sends_dead_letters_back_where_they_came_from_and_purge_empties(bus: Bus) -> None:
    bus.publish_events(events(3))
    bus.submit_run({"run_id": "r9", "workflow": "demo"})
    subs = [
        bus.consume_persist(Collector(dead_letter_all("store bug")), batch_size=10, max_wait=0.05),
        bus.consume_runs(Collector(dead_letter_all("runner bug")), prefetch=1),
    ]
    try:
        assert wait_for(lambda: bus.queue_depth(bus.topology.dead) == 4)
    finally:
        for sub in subs:
            sub.stop()
    assert bus.replay_dead_letters(limit=2) == 2
    assert bus.replay_dead_letters() == 2
    assert bus.queue_depth(bus.topology.dead) == 0
    assert wait_for(lambda: bus.queue_depth(bus.topology.persist) == 3)
    assert wait_for(lambda: bus.queue_depth(bus.topology.runs) == 1)
    again = Collector()
    sub = bus.consume_persist(again, batch_size=10, max_wait=0.05)
    try:
        assert wait_for(lambda: len(again.deliveries) == 3)
    finally:
        sub.stop()
    assert sorted(d.message_id for d in again.deliveries) == ["r1:1", "r1:2", "r1:3"]
    assert {d.routing_key for d in again.deliveries} == {"run.r1.log"}
    sub = bus.consume_runs(Collector(dead_letter_all("again")), prefetch=1)
    try:
        assert wait_for(lambda: bus.queue_depth(bus.topology.dead) == 1)
    finally:
        sub.stop()
    assert bus.purge_dead_letters() == 1
    assert bus.dead_letters() == []


def test_updates_fan_out_to_every_subscriber(bus: Bus) -> None:
    a, b = Collector(), Collector()
    subs = [ready(bus.consume_updates(a)), ready(bus.consume_updates(b))]
    try:
        bus.publish_update({"kind": "persisted", "n": 1})
        bus.publish_update({"kind": "persisted", "n": 2})
        assert wait_for(lambda: len(a.deliveries) == 2 and len(b.deliveries) == 2)
    finally:
        for s in subs:
            s.stop()
    assert [d.json()["n"] for d in a.deliveries] == [1, 2]
    assert [d.json()["n"] for d in b.deliveries] == [1, 2]


def test_stopped_update_subscriber_receives_nothing_more(bus: Bus) -> None:
    a, b = Collector(), Collector()
    sub_a, sub_b = ready(bus.consume_updates(a)), ready(bus.consume_updates(b))
    try:
        bus.publish_update({"n": 1})
        assert wait_for(lambda: len(a.deliveries) == 1 and len(b.deliveries) == 1)
        sub_a.stop()
        bus.publish_update({"n": 2})
        assert wait_for(lambda: len(b.deliveries) == 2)
    finally:
        sub_a.stop()
        sub_b.stop()
    assert [d.json()["n"] for d in a.deliveries] == [1]


def test_control_commands_reach_every_runner(bus: Bus) -> None:
    a, b = Collector(), Collector()
    subs = [ready(bus.consume_control(a)), ready(bus.consume_control(b))]
    try:
        bus.send_control({"action": "cancel", "run_id": "r9"})
        assert wait_for(lambda: len(a.deliveries) == 1 and len(b.deliveries) == 1)
    finally:
        for s in subs:
            s.stop()
    assert a.deliveries[0].json() == {"action": "cancel", "run_id": "r9"}
    assert b.deliveries[0].json() == {"action": "cancel", "run_id": "r9"}


def test_a_runner_command_waits_for_its_runner_and_reaches_no_other(bus: Bus) -> None:
    """Resume goes to the runner holding the run's directory: the command is kept while that
    runner is away, and another runner's queue never sees it."""
    bus.send_to_runner("host-a-1f2e", {"action": "resume", "run_id": "r1", "attempt": 2})
    bus.send_to_runner("host-a-1f2e", {"action": "resume", "run_id": "r2", "attempt": 3})
    assert wait_for(lambda: bus.queue_depth(bus.topology.runner("host-a-1f2e")) == 2)
    a, other = Collector(), Collector()
    subs = [
        ready(bus.consume_runner("host-b-0000", other, prefetch=1)),
        ready(bus.consume_runner("host-a-1f2e", a, prefetch=1)),
    ]
    try:
        assert wait_for(lambda: len(a.deliveries) == 2)
        time.sleep(0.3)
    finally:
        for sub in subs:
            sub.stop()
    assert [d.json()["run_id"] for d in a.deliveries] == ["r1", "r2"]
    assert all(len(batch) == 1 for batch in a.batches)
    assert other.deliveries == []
    with pytest.raises(BusError):
        bus.send_to_runner("../x", {})


def test_a_dead_lettered_runner_command_replays_to_its_runner(bus: Bus) -> None:
    bus.send_to_runner("host-a", {"action": "resume", "run_id": "r1", "attempt": 2})
    refused = Collector(settle=dead_letter_all("not now"))
    sub = ready(bus.consume_runner("host-a", refused, prefetch=1))
    try:
        assert wait_for(lambda: len(bus.dead_letters()) == 1)
    finally:
        sub.stop()
    letter = bus.dead_letters()[0]
    assert (letter.queue, letter.reason) == ("runner", "not now")
    assert bus.replay_dead_letters() == 1
    got = Collector()
    sub = ready(bus.consume_runner("host-a", got, prefetch=1))
    try:
        assert wait_for(lambda: len(got.deliveries) == 1)
    finally:
        sub.stop()
    assert got.deliveries[0].json()["run_id"] == "r1"


def test_runs_prefetch_limits_unsettled_deliveries(bus: Bus) -> None:
    for i in range(5):
        bus.submit_run({"run_id": f"run{i}"})
    got = Collector(settle=None)  # settled later, from this thread, like a runner finishing
    sub = bus.consume_runs(got, prefetch=2)
    try:
        assert wait_for(lambda: len(got.deliveries) == 2 and bus.queue_depth("runs") == 3)
        time.sleep(0.5)  # give a non-limiting consumer every chance to take a third
        assert len(got.deliveries) == 2
        assert all(len(b) == 1 for b in got.batches)  # one delivery per handler call
        got.deliveries[0].ack()
        assert wait_for(lambda: len(got.deliveries) == 3)
        time.sleep(0.3)
        assert len(got.deliveries) == 3
        for d in got.deliveries[1:]:
            d.ack()
        assert wait_for(lambda: len(got.deliveries) == 5)
        for d in got.deliveries[3:]:
            d.ack()
        assert wait_for(lambda: bus.queue_depth("runs") == 0)
    finally:
        sub.stop()
    assert sorted(d.json()["run_id"] for d in got.deliveries) == [f"run{i}" for i in range(5)]


def test_a_failing_handler_does_not_stop_the_consumer(bus: Bus) -> None:
    bus.publish_events(events(1))
    calls: list[bool] = []

    def handler(batch: Sequence[Delivery]) -> None:
        calls.append(batch[0].redelivered)
        if len(calls) == 1:
            raise RuntimeError("store is down")
        for d in batch:
            d.ack()

    sub = bus.consume_persist(handler, batch_size=10, max_wait=0.01)
    try:
        assert wait_for(lambda: len(calls) >= 2)
    finally:
        sub.stop()
    assert calls[:2] == [False, True]


def test_two_buses_of_one_namespace_share_queues(
    bus: Bus, bus_kind: str, namespace: str, request: pytest.FixtureRequest
) -> None:
    other = make_bus(bus_kind, namespace, request)
    try:
        other.publish_events(events(2))
        assert bus.queue_depth(bus.topology.persist) == 2
    finally:
        other.close()


def test_ping_and_closed_bus(bus_kind: str, namespace: str, request: pytest.FixtureRequest) -> None:
    b = make_bus(bus_kind, namespace, request)
    b.ping()
    b.close()
    with pytest.raises(BusError, match="closed"):
        b.ping()
    with pytest.raises(BusError, match="closed"):
        b.publish_events(events(1))
    cleanup = make_bus(bus_kind, namespace, request)
    cleanup.delete_topology()  # type: ignore[attr-defined]
    cleanup.close()


def test_unreachable_broker_raises_a_clear_bus_error(namespace: str) -> None:
    b = AmqpBus("amqp://guest:secret@127.0.0.1:1/", namespace, connect_timeout=2)
    try:
        with pytest.raises(BusError, match=r"cannot connect to RabbitMQ at amqp://guest:\*\*\*@"):
            b.ping()
        with pytest.raises(BusError, match="cannot connect to RabbitMQ") as info:
            b.publish_events(events(1))
        assert "secret" not in str(info.value)
    finally:
        b.close()


def test_open_bus_picks_the_backend_from_settings(amqp_url: str, namespace: str) -> None:
    local = open_bus(Settings(namespace=namespace))
    remote = open_bus(Settings(namespace=namespace, amqp_url=amqp_url))
    try:
        assert isinstance(local, LocalBus)
        assert isinstance(remote, AmqpBus)
        assert remote.topology.events == f"{namespace}.events"
    finally:
        local.close()
        remote.close()


def test_many_threads_publish_at_once(bus: Bus) -> None:
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(5):
                bus.publish_events(events(10, run_id=f"t{k}", start=j * 10 + 1))
                bus.submit_run({"run_id": f"t{k}-{j}"})
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert bus.queue_depth(bus.topology.persist) == 8 * 50
    assert bus.queue_depth("runs") == 8 * 5


def test_amqp_consumers_and_publishers_come_back_after_an_outage(
    amqp_url: str, namespace: str
) -> None:
    direct = AmqpBus(amqp_url, namespace)
    direct.declare()
    proxy = TcpProxy.for_url(amqp_url)
    proxied = AmqpBus(proxy.url_for(amqp_url), namespace, connect_timeout=2)
    persisted, updates = Collector(), Collector()
    subs = [
        proxied.consume_persist(persisted, batch_size=10, max_wait=0.01),
        ready(proxied.consume_updates(updates)),
    ]
    try:
        direct.publish_events(events(1))
        assert wait_for(lambda: len(persisted.deliveries) == 1)
        proxied.publish_update({"n": 0})  # opens the publishing connection before the outage
        assert wait_for(lambda: len(updates.deliveries) == 1)
        proxy.cut()
        with pytest.raises(BusError, match=r"RabbitMQ at amqp://guest:\*\*\*@127\.0\.0\.1"):
            proxied.publish_update({"n": -1})
        direct.publish_events(events(1, start=2))
        proxy.restore()
        assert wait_for(lambda: len(persisted.deliveries) == 2), "persist consumer did not return"
        assert wait_for(lambda: all(getattr(s, "connected", True) for s in subs))
        proxied.publish_update({"n": 1})  # a fresh connection, no error
        assert wait_for(lambda: any(d.json()["n"] == 1 for d in updates.deliveries))
    finally:
        for s in subs:
            s.stop()
        proxied.close()
        proxy.close()
        direct.delete_topology()
        direct.close()
    assert [d.json()["seq"] for d in persisted.deliveries] == [1, 2]


def test_quorum_setting_declares_runs_and_persist_as_quorum_queues(
    amqp_url: str, namespace: str
) -> None:
    """With ``SNAKEDECK_QUEUE_TYPE=quorum`` the two work queues are quorum queues on the
    broker: a classic declaration of the same names is refused as inequivalent, and the
    queues are deleted again afterwards (the broker is shared)."""
    quorum = open_bus(Settings(namespace=namespace, amqp_url=amqp_url, queue_type="quorum"))
    classic = AmqpBus(amqp_url, namespace)
    try:
        quorum.declare()
        quorum.publish_events(events(3))
        assert quorum.queue_depth(quorum.topology.persist) == 3
        with pytest.raises(BusError, match="x-queue-type"):
            classic.declare()
    finally:
        classic.close()
        quorum.delete_topology()  # type: ignore[attr-defined]
        quorum.close()
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        for queue in (quorum.topology.persist, quorum.topology.runs):
            with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="NOT_FOUND"):
                conn.channel().queue_declare(queue, passive=True)
    finally:
        conn.close()


def test_an_unknown_queue_type_is_refused(namespace: str) -> None:
    with pytest.raises(BusError, match="queue type"):
        AmqpBus("amqp://127.0.0.1/", namespace, queue_type="stream")
    with pytest.raises(SettingsError, match="SNAKEDECK_QUEUE_TYPE"):
        Settings.from_env({"SNAKEDECK_QUEUE_TYPE": "lazy"})
