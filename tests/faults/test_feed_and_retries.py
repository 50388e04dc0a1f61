"""Two last faults: the gateway's own updates queue deleted on the broker while clients watch
(the gateway re-declares it, says so on /readyz meanwhile, and its clients catch up), and jobs
that fail and are retried by Snakemake (counted once, with every attempt kept)."""

from __future__ import annotations

import subprocess
import time

import requests

from tests.faults.conftest import DEMO_JOBS, demo_config
from tests.support.waiting import wait_for


def gateway_queue(amqp_url: str, namespace: str) -> str:
    """The exclusive queue the gateway bound to the updates fanout (named by the broker).
    Read-only ``rabbitmqctl list_bindings`` on the shared broker: nothing is changed there."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_bindings", "source_name", "destination_name"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] == f"{namespace}.updates":
            return parts[1]
    raise AssertionError(f"no queue bound to {namespace}.updates")


def test_the_gateways_updates_queue_deleted_under_its_clients(
    deployment_on, shared_broker, record
) -> None:
    d = deployment_on(shared_broker)
    d.up()
    run_id = d.submit(demo_config())
    watchers = d.watch(run_id)
    try:
        d.wait_jobs_done(run_id, 20)
        queue = gateway_queue(shared_broker, d.base.namespace)
        # An exclusive queue: only an operator's command can delete it from outside (this test's
        # own queue, on the shared broker; nothing else there is touched).
        subprocess.run(["rabbitmqctl", "-q", "delete_queue", queue], check=True, timeout=30)
        deleted = time.monotonic()
        wait_for(
            lambda: gateway_queue(shared_broker, d.base.namespace) != queue,
            60,
            "the gateway to declare a new updates queue",
        )
        redeclared = time.monotonic() - deleted
        ready = requests.get(d.url + "/readyz", timeout=30)
        assert ready.status_code == 200 and ready.json()["checks"]["updates"] == "ok"
        figures = d.verify(
            "gateway's updates queue deleted",
            run_id,
            expected_state="COMPLETE",
            expected_jobs=DEMO_JOBS,
            feeds=watchers.feeds,
            recovery_s=redeclared,
        )
    finally:
        watchers.close()
    record(figures)


def test_retried_jobs_are_counted_once_with_every_attempt(
    deployment_on, shared_broker, record
) -> None:
    d = deployment_on(shared_broker)
    d.up()
    run_id = d.submit({"jobs": 40}, workflow="flaky")
    figures = d.verify(
        "40 jobs each retried once",
        run_id,
        expected_state="COMPLETE",
        expected_jobs={"flaky": "done", "all": "done"},
    )
    jobs = requests.get(
        f"{d.url}/api/v1/runs/{run_id}/jobs", params={"rule": "flaky", "page_size": 100}, timeout=30
    ).json()["jobs"]
    assert len(jobs) == 40
    for job in jobs:
        assert job["attempt"] == 2 and "error" not in job
        assert [a["state"] for a in job["attempts"]] == ["failed", "done"]
        assert job["started_at"] == job["attempts"][1]["started_at"]
    run = d.run(run_id)
    assert run["progress"]["done"] == 41 and run["progress"]["failed"] == 0
    record(figures)
