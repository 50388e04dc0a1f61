"""The forwarder against real RabbitMQ: the broker going away never blocks spool writers, every
event arrives once it is back with seq 1..N and no gap, and a restart resends nothing confirmed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from cli.replay import replay
from snakedeck import envelope, forwarder
from snakedeck.bus import Delivery
from snakedeck.bus.amqp import AmqpBus
from snakedeck.bus.local import LocalBus
from snakedeck.forwarder import Forwarder
from snakedeck.settings import Settings
from snakedeck.spool import Checkpoint, SpoolWriter, load_checkpoint
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

RUN_ID = "run-fwd-1"


@pytest.fixture
def direct_bus(amqp_url: str, namespace: str) -> Iterator[AmqpBus]:
    """The test's own line to RabbitMQ (never through the proxy); deletes the topology after."""
    bus = AmqpBus(amqp_url, namespace)
    bus.declare()
    yield bus
    bus.delete_topology()
    bus.close()


def event(i: int) -> dict:
    return envelope.make(RUN_ID, "log", msg=f"event {i}", data={"i": i})


def drain_persist(bus: AmqpBus | LocalBus, until: Callable[[list[dict]], bool]) -> list[dict]:
    """Consume the persist queue until ``until(bodies)`` holds; return every body received."""
    bodies: list[dict] = []
    lock = threading.Lock()

    def handler(batch: Sequence[Delivery]) -> None:
        with lock:
            for d in batch:
                body = d.json()
                assert d.message_id == f"{body['run_id']}:{body['seq']}"
                assert d.routing_key == f"run.{body['run_id']}.{body['type']}"
                bodies.append(body)
                d.ack()

    sub = bus.consume_persist(handler, batch_size=500, max_wait=0.05)
    try:
        assert wait_for(lambda: until(list(bodies))), f"only {len(bodies)} events arrived"
    finally:
        sub.stop()
    return bodies


def test_broker_outage_never_blocks_writers_and_loses_nothing(
    tmp_path: Path, amqp_url: str, namespace: str, direct_bus: AmqpBus
) -> None:
    total = 1000
    spool = tmp_path / f"{RUN_ID}.jsonl"
    proxy = TcpProxy.for_url(amqp_url)
    proxied = AmqpBus(proxy.url_for(amqp_url), namespace, connect_timeout=2, confirm_timeout=5)
    fwd = Forwarder(spool, proxied, batch_size=100)
    reached_cut_point, cut_done = threading.Event(), threading.Event()
    written_while_cut: list[bool] = []

    def writer() -> None:
        with SpoolWriter(spool) as w:
            for i in range(total):
                if i == 300:
                    reached_cut_point.set()
                    cut_done.wait(30)
                w.append(event(i))
                if i >= 300:
                    written_while_cut.append(proxy.is_cut)
                time.sleep(0.001)

    fwd.start_thread()
    t = threading.Thread(target=writer)
    try:
        t.start()
        assert reached_cut_point.wait(30)
        proxy.cut()
        cut_done.set()
        t.join(60)
        assert not t.is_alive(), "the spool writer blocked while RabbitMQ was unreachable"
        # Every append after the cut point completed while the broker was unreachable.
        assert written_while_cut == [True] * (total - 300)
        assert wait_for(lambda: fwd.failures > 0), "the forwarder never noticed the outage"
        assert fwd.confirmed_seq <= 300
        time.sleep(2)  # a few seconds of outage, the forwarder backing off meanwhile
        assert fwd.confirmed_seq <= 300
        proxy.restore()
        assert wait_for(lambda: fwd.confirmed_seq == total), f"stuck at {fwd.confirmed_seq}"
        assert fwd.stop(30)
    finally:
        fwd.stop(5)
        proxied.close()
        proxy.close()

    bodies = drain_persist(direct_bus, lambda b: {e["seq"] for e in b} >= set(range(1, total + 1)))
    assert {e["seq"] for e in bodies} == set(range(1, total + 1))
    # seq follows spool order: event i (written i-th) carries seq i + 1, duplicates or not.
    assert all(e["seq"] == e["data"]["i"] + 1 for e in bodies)
    assert load_checkpoint(spool) == Checkpoint(spool.stat().st_size, total)


def test_restart_from_checkpoint_resends_nothing_confirmed(
    tmp_path: Path, amqp_url: str, namespace: str, direct_bus: AmqpBus
) -> None:
    spool = tmp_path / f"{RUN_ID}.jsonl"
    with SpoolWriter(spool) as w:
        for i in range(100):
            w.append(event(i))
    first_bus = AmqpBus(amqp_url, namespace)
    first = Forwarder(spool, first_bus)
    assert first.drain(30)
    assert first.confirmed_seq == 100
    first_bus.close()

    with SpoolWriter(spool) as w:
        for i in range(100, 150):
            w.append(event(i))
    second_bus = AmqpBus(amqp_url, namespace)
    second = Forwarder(spool, second_bus)
    assert second.confirmed_seq == 100
    assert second.drain(30)
    second_bus.close()

    assert direct_bus.queue_depth("persist") == 150
    bodies = drain_persist(direct_bus, lambda b: len(b) >= 150)
    assert sorted(e["seq"] for e in bodies) == list(range(1, 151))
    assert load_checkpoint(spool) == Checkpoint(spool.stat().st_size, 150)


def test_a_forwarder_killed_between_checkpoints_resends_with_the_same_seqs(
    tmp_path: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While events flow the checkpoint is written at most every CHECKPOINT_EVERY: a forwarder
    that dies between two writes leaves it behind, and its successor sends those events again
    under the seqs they had (the store keeps one copy), then goes on with no gap."""
    monkeypatch.setattr(forwarder, "CHECKPOINT_EVERY", 3600.0)  # however slow this machine
    bus = LocalBus(namespace)
    spool = tmp_path / "s.jsonl"
    writer = SpoolWriter(spool)
    try:
        first = Forwarder(spool, bus, batch_size=10)
        for i in range(30):
            writer.append(event(i))
            first.forward_once()  # one event per call, as a busy poll finds them
        assert first.confirmed_seq == 30
        behind = load_checkpoint(spool)
        assert behind == Checkpoint(0, 0)  # no checkpoint write per call; "killed" here

        for i in range(30, 40):
            writer.append(event(i))
        second = Forwarder(spool, bus)
        assert second.drain(10)
        assert load_checkpoint(spool) == Checkpoint(spool.stat().st_size, 40)
        bodies = drain_persist(bus, lambda b: len(b) >= 70)
        by_seq = {(e["seq"], e["data"]["i"]) for e in bodies}
        assert by_seq == {(i + 1, i) for i in range(40)}  # a resent copy keeps its seq
    finally:
        writer.close()
        bus.close()
        bus.delete_topology()


def test_bad_lines_get_no_seq_and_do_not_stop_forwarding(tmp_path: Path, namespace: str) -> None:
    bus = LocalBus(namespace)
    spool = tmp_path / "s.jsonl"
    with SpoolWriter(spool) as w:
        w.append(event(0))
    with open(spool, "a") as f:
        f.write("garbage\n")
    with SpoolWriter(spool) as w:
        w.append(event(1))
    fwd = Forwarder(spool, bus)
    try:
        assert fwd.drain(10)
        assert (fwd.confirmed_seq, fwd.bad_lines) == (2, 1)
        bodies = drain_persist(bus, lambda b: len(b) >= 2)
        assert [(e["seq"], e["data"]["i"]) for e in bodies] == [(1, 0), (2, 1)]
    finally:
        bus.close()
        bus.delete_topology()


def test_stop_drains_what_the_thread_has_not_sent(tmp_path: Path, namespace: str) -> None:
    bus = LocalBus(namespace)
    spool = tmp_path / "s.jsonl"
    fwd = Forwarder(spool, bus)
    fwd.start_thread()
    with SpoolWriter(spool) as w:
        for i in range(1200):
            w.append(event(i))
    try:
        assert fwd.stop(30)
        assert fwd.confirmed_seq == 1200
        assert bus.queue_depth("persist") == 1200
    finally:
        bus.close()
        bus.delete_topology()


def test_replay_forwards_from_the_checkpoint_once(
    tmp_path: Path, amqp_url: str, namespace: str, direct_bus: AmqpBus, capsys
) -> None:
    spool = tmp_path / f"{RUN_ID}.jsonl"
    with SpoolWriter(spool) as w:
        for i in range(200):
            w.append(event(i))
    settings = Settings(amqp_url=amqp_url, namespace=namespace)
    assert replay(spool, settings, progress=False) == 0
    assert "replayed 200 events" in capsys.readouterr().err
    assert replay(spool, settings, progress=False) == 0
    assert "nothing to replay" in capsys.readouterr().err
    assert direct_bus.queue_depth("persist") == 200
    assert load_checkpoint(spool).seq == 200


def test_replay_against_an_unreachable_broker_fails_clearly(
    tmp_path: Path, namespace: str, capsys
) -> None:
    spool = tmp_path / f"{RUN_ID}.jsonl"
    with SpoolWriter(spool) as w:
        w.append(event(0))
    settings = Settings(amqp_url="amqp://guest:guest@127.0.0.1:1/", namespace=namespace)
    assert replay(spool, settings, progress=False, timeout=1) == 1
    err = capsys.readouterr().err
    assert "cannot connect to RabbitMQ" in err
    assert "run `snakedeck replay` again" in err
    assert load_checkpoint(spool) == Checkpoint(0, 0)
