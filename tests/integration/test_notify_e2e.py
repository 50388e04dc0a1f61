"""Notifications end to end: a whole deployment of real processes (consumer with its notifier,
runner, gateway; RabbitMQ; the Mongo store over the wire) runs the demo workflow, and a local
HTTP receiver checks what a webhook user checks: exactly one valid, correctly signed delivery
per state change of the run, also when the receiver answers 500 twice first, and when the
gateway is down for the whole run (deliveries never go through it)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from snakedeck import notify
from tests.integration.test_standalone import running_standalone
from tests.support.deployment import Deployment
from tests.support.receiver import Receiver
from tests.support.waiting import wait_for

SECRET = "per-target-webhook-secret"


@pytest.fixture
def deployment(tmp_path: Path, settings_factory) -> Iterator[Deployment]:
    # The receiver listens on 127.0.0.1: the existing URL-fetch setting lets targets be local.
    settings = settings_factory(backend="mongo", fetch_allow_private=True, heartbeat_interval=1.0)
    deployment = Deployment(tmp_path, settings)
    try:
        yield deployment
    finally:
        deployment.close()


def submit(deployment: Deployment, receiver: Receiver) -> str:
    resp = requests.post(
        deployment.url + "/api/v1/runs",
        json={
            "workflow": "demo",
            "config": {"samples": 2, "sleep": 0.1},
            "notify": [
                {"url": receiver.url("/hook"), "secret": SECRET},
                {"url": receiver.url("/slack"), "format": "slack"},
            ],
        },
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    assert SECRET not in resp.text
    return resp.json()["run_id"]


def state_changes(deployment: Deployment, run_id: str) -> dict[str, str]:
    """Idempotency key → state, for every state change the store holds for the run."""
    events = deployment.store.list_events(run_id, after_seq=0, limit=100_000)
    return {
        notify.idempotency_key(run_id, e["seq"]): e["data"]["state"]
        for e in events
        if e["type"] == "run_state"
    }


def check_deliveries(deployment: Deployment, receiver: Receiver, run_id: str) -> dict[str, str]:
    """Once the run has ended: one accepted, signed, true delivery per state change."""
    deployment.wait_ended(run_id)
    expected = state_changes(deployment, run_id)
    assert {"INITIALIZING", "RUNNING", "COMPLETE"} <= set(expected.values())
    wait_for(
        lambda: (
            len(receiver.accepted("/hook")) >= len(expected)
            and len(receiver.accepted("/slack")) >= len(expected)
        ),
        60,
        f"{len(expected)} deliveries to each target",
    )
    time.sleep(2.0)  # anything extra would arrive now
    hooks = receiver.accepted("/hook")
    keys = [r.headers["Idempotency-Key"] for r in hooks]
    assert sorted(keys) == sorted(expected), "not exactly one delivery per state change"
    for request in hooks:
        signature = request.headers["X-Snakedeck-Signature"]
        assert notify.verify(request.body, SECRET, signature), "bad signature"
        doc = request.json()
        assert doc["idempotency_key"] == request.headers["Idempotency-Key"]
        assert doc["run_id"] == run_id and doc["workflow"] == "demo"
        assert doc["state"] == expected[doc["idempotency_key"]]
        assert doc["time"]
    states = [r.json()["state"] for r in sorted(hooks, key=lambda r: r.json()["seq"])]
    assert states == [expected[k] for k in sorted(expected, key=lambda k: int(k.split(":")[1]))]
    assert [r.json()["state"] for r in hooks] == states, "a run's deliveries left out of order"
    slack = receiver.accepted("/slack")
    assert sorted(r.headers["Idempotency-Key"] for r in slack) == sorted(expected)
    assert all(set(r.json()) == {"text", "blocks"} for r in slack)
    assert all("X-Snakedeck-Signature" not in r.headers for r in slack)  # no secret given
    return expected


def deliveries(deployment: Deployment, run_id: str) -> list[dict]:
    resp = requests.get(
        f"{deployment.url}/api/v1/runs/{run_id}/deliveries", params={"page_size": 2}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert SECRET not in resp.text
    assert [t["signed"] for t in body["targets"]] == [True, False]
    items, token = body["deliveries"], body["next_page_token"]
    while token:  # the one pagination
        page = requests.get(
            f"{deployment.url}/api/v1/runs/{run_id}/deliveries",
            params={"page_size": 2, "page_token": token},
            timeout=30,
        ).json()
        items += page["deliveries"]
        token = page["next_page_token"]
    assert len(items) == body["total"]
    return items


def test_one_signed_delivery_per_state_change_while_the_gateway_is_down(
    deployment: Deployment,
) -> None:
    with Receiver() as receiver:
        deployment.up()
        gateway = deployment.gateways[0]
        run_id = submit(deployment, receiver)
        gateway.stop()  # down for the whole run: the notifier does not need it
        expected = check_deliveries(deployment, receiver, run_id)
        gateway.start()
        log = deliveries(deployment, run_id)
    assert len(log) == 2 * len(expected)
    assert {d["outcome"] for d in log} == {"delivered"}
    assert {d["attempt"] for d in log} == {1}
    run = requests.get(f"{deployment.url}/api/v1/runs/{run_id}", timeout=30)
    assert SECRET not in run.text


def test_a_receiver_that_answers_500_twice_first_still_gets_one_of_each(
    deployment: Deployment,
) -> None:
    with Receiver(fail_first=2) as receiver:
        deployment.up()
        run_id = submit(deployment, receiver)
        expected = check_deliveries(deployment, receiver, run_id)
        assert [r.status for r in receiver.requests[:2]] == [500, 500]
        assert len(receiver.requests) == 2 * len(expected) + 2
        log = deliveries(deployment, run_id)
    failed = [d for d in log if d["outcome"] == "failed"]
    assert [(d["status"], d["attempt"]) for d in failed] == [(500, 1), (500, 2)]
    delivered = [d for d in log if d["outcome"] == "delivered"]
    assert sorted(d["key"] for d in delivered) == sorted([*expected, *expected])
    retried = [d for d in delivered if d["key"] == failed[0]["key"]]
    assert 3 in {d["attempt"] for d in retried}


def test_standalone_sends_the_servers_default_targets_a_delivery_per_state_change(
    tmp_path: Path,
) -> None:
    with Receiver() as receiver:
        defaults = json.dumps([{"url": receiver.url("/ops"), "secret": SECRET}])
        env = {"SNAKEDECK_NOTIFY_TARGETS": defaults, "SNAKEDECK_FETCH_ALLOW_PRIVATE": "true"}
        with running_standalone(tmp_path, env) as (url, _, _):
            resp = requests.post(
                f"{url}/api/v1/runs",
                json={"workflow": "demo", "config": {"samples": 2}},
                timeout=30,
            )
            assert resp.status_code == 201, resp.text
            run_id = resp.json()["run_id"]
            wait_for(
                lambda: (
                    requests.get(f"{url}/api/v1/runs/{run_id}", timeout=10).json()["state"]
                    == "COMPLETE"
                ),
                180,
                f"run {run_id} to complete",
            )
            events = requests.get(f"{url}/api/v1/runs/{run_id}/events", timeout=10).json()
            expected = {
                notify.idempotency_key(run_id, e["seq"]): e["data"]["state"]
                for e in events["events"]
                if e["type"] == "run_state"
            }
            wait_for(lambda: len(receiver.accepted()) >= len(expected), 60, "the deliveries")
            time.sleep(1.0)
            listed = requests.get(f"{url}/api/v1/runs/{run_id}/deliveries", timeout=10).json()
    got = {r.headers["Idempotency-Key"]: r for r in receiver.accepted()}
    assert len(receiver.accepted()) == len(got) == len(expected)
    assert {k: r.json()["state"] for k, r in got.items()} == expected
    assert all(
        notify.verify(r.body, SECRET, r.headers["X-Snakedeck-Signature"]) for r in got.values()
    )
    assert listed["targets"][0]["default"] is True and SECRET not in json.dumps(listed)


def test_a_wes_client_asks_for_the_same_notifications_with_the_notify_tag(
    deployment: Deployment,
) -> None:
    from tests.integration.test_wes import form

    with Receiver() as receiver:
        deployment.up()
        targets = [
            {"url": receiver.url("/hook"), "secret": SECRET},
            {"url": receiver.url("/slack"), "format": "slack"},
        ]
        tags = {"project": "x", notify.NOTIFY_TAG: json.dumps(targets)}
        resp = requests.post(
            deployment.url + "/ga4gh/wes/v1/runs",
            files=form(workflow_params={"samples": 2, "sleep": 0.1}, tags=tags),
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        run_id = resp.json()["run_id"]
        check_deliveries(deployment, receiver, run_id)
        shown = requests.get(f"{deployment.url}/ga4gh/wes/v1/runs/{run_id}", timeout=30)
    assert shown.json()["request"]["tags"] == {"project": "x"}
    assert SECRET not in shown.text
