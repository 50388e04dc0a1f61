"""End to end with every real part: REST submit → RabbitMQ → runner → Snakemake (demo workflow)
→ plugin → forwarder → RabbitMQ → consumer → store (SQLite, Mongo wire server) → updates →
gateway (gunicorn + gevent subprocess) → a Socket.IO client watching from before the submit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.support.live_clients import Pipeline, SocketIOFeed, wait_until
from tests.support.rest import TERMINAL


@pytest.fixture
def pipeline(settings_factory, store_backend: str) -> Iterator[Pipeline]:
    p = Pipeline(settings_factory(backend=store_backend, cores=2, cancel_grace=5.0))
    try:
        yield p.start(runner=True)
    finally:
        p.stop()


def api(pipeline: Pipeline, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{pipeline.url}/api/v1{path}", timeout=30, **kw)


def test_a_demo_run_streams_every_event_and_completes(pipeline: Pipeline) -> None:
    feed = SocketIOFeed(pipeline.url).connect()
    try:
        assert feed.subscribe(all=True)["last_seq"] is None  # watching before the submit
        run_id = pipeline.submit({"samples": 3, "sleep": 0.1})
        wait_until(lambda: feed.saw_state(run_id, TERMINAL), 240, "the run to end on the feed")
        run = api(pipeline, "GET", f"/runs/{run_id}").json()
        assert run["state"] == "COMPLETE", run
        stored = api(pipeline, "GET", f"/runs/{run_id}/events", params={"limit": 5000}).json()
        last = stored["events"][-1]["seq"]
        assert [e["seq"] for e in stored["events"]] == list(range(1, last + 1))
        wait_until(lambda: feed.seqs(run_id)[-1:] == [last], 60, "the last event on the feed")
        assert feed.seqs(run_id) == list(range(1, last + 1))
        assert feed.events(run_id) == stored["events"]
    finally:
        feed.close()

    done = {rule: counts["done"] for rule, counts in run["rule_counts"].items()}
    assert done == {"all": 1, "count": 3, "make_sample": 3, "summarize": 1}
    assert run["progress"]["done"] == run["progress"]["total"] == 8
    jobs = api(pipeline, "GET", f"/runs/{run_id}/jobs", params={"rule": "make_sample"}).json()
    assert jobs["total"] == 3 and {j["state"] for j in jobs["jobs"]} == {"done"}
    jobid = jobs["jobs"][0]["jobid"]
    log = api(pipeline, "GET", f"/runs/{run_id}/jobs/{jobid}/log").json()
    (entry,) = log["logs"]
    assert entry["exists"] and "make_sample" in entry["content"] and ": done" in entry["content"]


def test_cancel_a_running_run_over_rest(pipeline: Pipeline) -> None:
    run_id = pipeline.submit({"samples": 2, "sleep": 60})
    wait_until(
        lambda: api(pipeline, "GET", f"/runs/{run_id}").json()["state"] == "RUNNING",
        120,
        "the run to start",
    )
    resp = api(pipeline, "POST", f"/runs/{run_id}/cancel")
    assert resp.status_code == 202, resp.text
    wait_until(
        lambda: api(pipeline, "GET", f"/runs/{run_id}").json()["state"] == "CANCELED",
        120,
        "the run to be cancelled",
    )
    again = api(pipeline, "POST", f"/runs/{run_id}/cancel")
    assert again.status_code == 409
    rerun = api(pipeline, "POST", f"/runs/{run_id}/rerun")
    assert rerun.status_code == 201
    assert api(pipeline, "GET", f"/runs/{rerun.json()['run_id']}").json()["rerun_of"] == run_id
