"""Poison of every kind on every queue, while a real run goes on: each message is dead-lettered
on its own with the reason, the rest of its batch proceeds, no run is invented, the runner keeps
every one of its MAX_RUNS slots, and live subscribers keep receiving."""

from __future__ import annotations

import json
from typing import Any

import pika
import requests

from snakedeck import envelope
from tests.faults.conftest import DEMO_JOBS, demo_config
from tests.support.waiting import wait_for


def valid_event(run_id: str, seq: int = 1) -> dict[str, Any]:
    event = envelope.make(run_id, "log", msg="hello")
    event["seq"] = seq
    return dict(event)


def poison(run_id: str) -> list[tuple[str, str, bytes, str]]:
    """``(exchange kind, routing key, body, what the reason must say)`` for each kind."""
    deep = ("[" * 10_000 + "]" * 10_000).encode()
    deep_data = json.dumps(
        {**valid_event(run_id, 10**6), "data": {"x": json.loads("[" * 40 + "]" * 40)}}
    )
    huge = json.dumps({**valid_event(run_id, 10**6 + 1), "msg": "x" * (9 * 1024 * 1024)})
    surrogate = json.dumps(valid_event(run_id, 10**6 + 2)).replace("hello", "\\ud800")
    big_seq = json.dumps({**valid_event(run_id), "seq": 2**80})
    phantom = json.dumps(valid_event("no-such-run-anywhere", 1))
    key = f"run.{run_id}.log"
    return [
        ("events", key, deep, "nested deeper"),
        ("events", key, deep_data.encode(), "nested deeper"),
        ("events", key, huge.encode(), "larger than"),
        ("events", key, b"\xff\xfe not utf-8", "not valid JSON"),
        ("events", key, surrogate.encode(), "lone surrogate"),
        ("events", key, big_seq.encode(), "integer is too large"),
        ("events", key, b"[1, 2, 3]", "JSON object"),
        ("events", "run.no-such-run-anywhere.log", phantom.encode(), "no run"),
        ("runs", "", deep, "submit command"),
        ("runs", "", b"{not json", "submit command"),
        ("runs", "", json.dumps({"run_id": "ghost", "workflow": "demo"}).encode(), "no run"),
        ("control", "", deep, "control command"),
        ("control", "", b'{"action": "explode", "run_id": "x"}', "control command"),
    ]


def test_poison_of_every_kind_on_every_queue(deployment_on, shared_broker, record) -> None:
    d = deployment_on(shared_broker, max_runs=2)
    d.up()
    run_id = d.submit(demo_config(samples=60))
    watchers = d.watch(run_id)
    t = d.base.namespace
    conn = pika.BlockingConnection(pika.URLParameters(shared_broker))
    ch = conn.channel()
    try:
        d.wait_jobs_done(run_id, 10)
        kinds = poison(run_id)
        for kind, key, body, _ in kinds:
            exchange, rk = {
                "events": (f"{t}.events", key),
                "runs": ("", f"{t}.runs"),
                "control": (f"{t}.control", ""),
            }[kind]
            ch.basic_publish(exchange, rk, body, pika.BasicProperties(delivery_mode=2))
        ch.basic_publish(f"{t}.updates", "", b"\x00 garbage for the gateways")
        ch.basic_publish(f"{t}.updates", "", b'{"kind": "persisted", "events": 7, "runs": [1]}')
        figures = d.verify(
            "poison of every kind, run goes on",
            run_id,
            expected_state="COMPLETE",
            expected_jobs=DEMO_JOBS,
            feeds=watchers.feeds,
        )
        dead = wait_for(
            lambda: (lambda got: got if len(got) >= len(kinds) else None)(
                requests.get(d.url + "/api/v1/dead-letters", timeout=30).json()["dead_letters"]
            ),
            120,
            "every poison message in the dead-letter queue",
        )
        reasons = [letter["reason"] for letter in dead]
        for kind, _, _, says in kinds:
            assert any(says in r for r in reasons), (kind, says, reasons)
        assert d.store.get_run("no-such-run-anywhere") is None
        assert d.store.get_run("ghost") is None
        # The runner lost no slot: two runs at once still run side by side to the end.
        both = [d.submit(demo_config(samples=5)) for _ in range(2)]
        wait_for(
            lambda: (
                all(d.run(r).get("state") == "RUNNING" for r in both)
                or all(d.run(r).get("state") == "COMPLETE" for r in both)
            ),
            120,
            "both new runs to run",
        )
        for r in both:
            assert d.wait_ended(r)["state"] == "COMPLETE"
        figures.notes = f"{len(dead)} dead letters, each with its reason"
    finally:
        conn.close()
        watchers.close()
    record(figures)
