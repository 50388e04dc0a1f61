"""The live feed end to end, minus Snakemake: a run's events are published to real RabbitMQ the
way the forwarder publishes them, a real consumer persists them (SQLite and the Mongo wire
server), and clients of the gateway (gunicorn + gevent subprocess) must see every event of the
run once, in seq order, whether they subscribed from the start, reconnected mid-run, used a
plain WebSocket, or sat on another gateway process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.events import SyntheticRun, synthetic_run
from tests.support.live_clients import Pipeline, SocketIOFeed, WebSocketFeed, wait_until


@pytest.fixture
def pipeline(settings_factory, store_backend: str) -> Iterator[Pipeline]:
    p = Pipeline(settings_factory(backend=store_backend))
    try:
        yield p
    finally:
        p.stop()


def finished(feed, run: SyntheticRun) -> bool:
    """The feed has shown the run's last event and its final state."""
    seqs = feed.seqs(run.run_id)
    return (
        bool(seqs) and seqs[-1] >= len(run.events) and feed.saw_state(run.run_id, {run.final_state})
    )


def full(run: SyntheticRun) -> list[int]:
    return list(range(1, len(run.events) + 1))


def test_a_subscriber_from_the_start_gets_every_event_in_order(pipeline: Pipeline) -> None:
    pipeline.start()
    run = synthetic_run(pipeline.submit(), samples=3)
    feed = SocketIOFeed(pipeline.url).connect()
    try:
        assert feed.subscribe(run_id=run.run_id, after_seq=0)["last_seq"] == 0
        for i in range(0, len(run.events), 7):
            pipeline.publish(run.events[i : i + 7])
        wait_until(lambda: finished(feed, run), what="the whole run on the socket")
        assert feed.seqs(run.run_id) == full(run)
        assert feed.events(run.run_id) == run.events
    finally:
        feed.close()
    final = requests.get(f"{pipeline.url}/api/v1/runs/{run.run_id}", timeout=30).json()
    assert final["state"] == "COMPLETE"
    assert {rule: c["done"] for rule, c in final["rule_counts"].items()} == run.rule_totals
    stored = requests.get(f"{pipeline.url}/api/v1/runs/{run.run_id}/events", timeout=30).json()
    assert [e["seq"] for e in stored["events"]] == full(run)


def test_reconnecting_with_after_seq_closes_the_gap(pipeline: Pipeline) -> None:
    pipeline.start()
    run = synthetic_run(pipeline.submit(), samples=3)
    third = len(run.events) // 3
    first = SocketIOFeed(pipeline.url).connect()
    first.subscribe(run_id=run.run_id)
    pipeline.publish(run.events[:third])
    wait_until(lambda: len(first.events(run.run_id)) >= third, what="the first third")
    first.close()
    seen = first.seqs(run.run_id)

    pipeline.publish(run.events[third : 2 * third])  # missed while disconnected
    wait_until(
        lambda: len(pipeline.store.list_events(run.run_id, after_seq=0, limit=10_000)) >= 2 * third,
        what="the missed events to be stored",
    )
    second = SocketIOFeed(pipeline.url).connect()
    try:
        ack = second.subscribe(run_id=run.run_id, after_seq=seen[-1])
        assert ack["last_seq"] >= 2 * third
        pipeline.publish(run.events[2 * third :])
        wait_until(lambda: finished(second, run), what="the rest of the run")
        assert seen + second.seqs(run.run_id) == full(run)
    finally:
        second.close()


def test_a_plain_websocket_gets_the_same_stream(pipeline: Pipeline) -> None:
    pipeline.start()
    run = synthetic_run(pipeline.submit(), samples=2)
    half = len(run.events) // 2
    one_run = WebSocketFeed(pipeline.url, f"/ws/runs/{run.run_id}?after_seq=0")
    every_run = WebSocketFeed(pipeline.url, "/ws/runs")
    try:
        wait_until(lambda: one_run.runs(run.run_id), what="the run summary on connect")
        pipeline.publish(run.events[:half])
        wait_until(lambda: len(every_run.events(run.run_id)) >= half, what="first half")
        late = WebSocketFeed(pipeline.url, f"/ws/runs/{run.run_id}?after_seq=3")
        pipeline.publish(run.events[half:])
        for feed in (one_run, every_run, late):
            wait_until(lambda feed=feed: finished(feed, run), what="the whole run on the ws")
        assert one_run.events(run.run_id) == run.events
        assert every_run.seqs(run.run_id) == full(run)
        assert late.seqs(run.run_id) == full(run)[3:]
        assert any(kind == "job" for kind, _ in one_run.messages)
        late.close()
    finally:
        one_run.close()
        every_run.close()


def test_batch_subscribers_of_both_transports_get_every_event_once_in_order(
    pipeline: Pipeline,
) -> None:
    """``batch``: events come as ``events`` lists, the same stream in fewer messages, replay
    included (a late subscriber starts from after_seq)."""
    pipeline.start()
    run = synthetic_run(pipeline.submit(), samples=3)
    half = len(run.events) // 2
    sio = SocketIOFeed(pipeline.url).connect()
    ws = WebSocketFeed(pipeline.url, f"/ws/runs/{run.run_id}?after_seq=0&batch=1")
    try:
        assert sio.subscribe(run_id=run.run_id, after_seq=0, batch=True)["last_seq"] == 0
        pipeline.publish(run.events[:half])
        wait_until(lambda: len(ws.events(run.run_id)) >= half, what="the first half")
        late = WebSocketFeed(pipeline.url, f"/ws/runs/{run.run_id}?after_seq=2&batch=1")
        pipeline.publish(run.events[half:])
        for feed in (sio, ws, late):
            wait_until(lambda feed=feed: finished(feed, run), what="the whole run in batches")
        assert sio.events(run.run_id) == run.events
        assert ws.events(run.run_id) == run.events
        assert late.seqs(run.run_id) == full(run)[2:]
        for feed in (sio, ws, late):
            assert "events" in feed.kinds and "event" not in feed.kinds, feed.kinds
        late.close()
    finally:
        sio.close()
        ws.close()
    bad = requests.get(
        f"{pipeline.url}/ws/runs/{run.run_id}?batch=yes",
        headers={"Connection": "Upgrade", "Upgrade": "websocket"},
        timeout=30,
    )
    assert bad.status_code == 422 and "batch" in bad.json()["detail"]


def test_a_quiet_plain_websocket_is_kept_open_with_pings(settings_factory) -> None:
    """Nothing to send for a while (the store down, a long job): the gateway pings the
    client, so proxies that close idle connections leave the feed open, and it goes on."""
    import websocket

    p = Pipeline(settings_factory(backend="sqlite", ws_ping_interval=1.0)).start()
    try:
        run = synthetic_run(p.submit(), samples=1)
        ws = websocket.create_connection(
            p.url.replace("http://", "ws://", 1) + f"/ws/runs/{run.run_id}?after_seq=0",
            timeout=10,
        )
        try:
            pings, kinds = 0, []
            deadline = time.monotonic() + 10
            while pings < 2 and time.monotonic() < deadline:
                opcode, data = ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_PING:
                    pings += 1
                    ws.pong(data)
                elif opcode == websocket.ABNF.OPCODE_TEXT:
                    kinds.append(json.loads(data)["type"])
            assert pings == 2, "the gateway sent no pings on a quiet feed"
            assert kinds == ["run"]  # the summary on connect, then nothing until events
            p.publish(run.events)
            seqs: list[int] = []
            while len(seqs) < len(run.events):
                opcode, data = ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_PING:
                    ws.pong(data)
                elif opcode == websocket.ABNF.OPCODE_TEXT:
                    message = json.loads(data)
                    if message["type"] == "event":
                        seqs.append(message["data"]["seq"])
            assert seqs == full(run)
        finally:
            ws.close()
    finally:
        p.stop()


def test_two_gateways_each_push_every_update(pipeline: Pipeline) -> None:
    pipeline.start(gateways=2)
    run = synthetic_run(pipeline.submit(), samples=2)
    feeds = [SocketIOFeed(g.url).connect() for g in pipeline.gateways]
    try:
        for feed in feeds:
            assert feed.subscribe(all=True)["last_seq"] is None
        pipeline.publish(run.events)
        for feed in feeds:
            wait_until(lambda feed=feed: finished(feed, run), what="every update on each")
            assert feed.seqs(run.run_id) == full(run)
    finally:
        for feed in feeds:
            feed.close()
    metrics = requests.get(pipeline.gateways[1].url + "/metrics", timeout=30).text
    assert 'snakedeck_runs_by_state{state="COMPLETE"} 1.0' in metrics
    assert "snakedeck_consumer_lag 0.0" in metrics
    assert f"snakedeck_live_events_received_total {float(len(run.events))}" in metrics


@pytest.mark.parametrize("transport", ["socketio", "websocket"])
def test_an_update_lost_on_purpose_is_caught_up_without_reconnecting(
    pipeline: Pipeline, transport: str
) -> None:
    """The second half of a run reaches the store without any update on the fanout (as if the
    consumer's update were lost): each transport's client still gets it, on the same
    connection, once the subscriber's idle catch-up re-reads the store."""
    pipeline.start()
    run = synthetic_run(pipeline.submit(), samples=3)
    if transport == "socketio":
        feed: SocketIOFeed | WebSocketFeed = SocketIOFeed(pipeline.url).connect()
        feed.subscribe(run_id=run.run_id, after_seq=0)
    else:
        feed = WebSocketFeed(pipeline.url, f"/ws/runs/{run.run_id}?after_seq=0")
    half = len(run.events) // 2
    try:
        pipeline.publish(run.events[:half])
        wait_until(lambda: feed.seqs(run.run_id)[-1:] == [half], what="the first half, live")
        pipeline.store.persist(run.events[half:])  # stored; no update goes out for it
        wait_until(lambda: finished(feed, run), 30, "the lost half, caught up from the store")
        assert feed.seqs(run.run_id) == full(run)
        if isinstance(feed, SocketIOFeed):
            assert feed.client.connected and feed.reconnects == 0
        else:
            assert feed.ws.connected
    finally:
        feed.close()
