"""REST v1 over real HTTP (gunicorn + gevent in a subprocess), real RabbitMQ, both stores.

Bad input must answer a 4xx problem document that names the problem, and must leave the store
exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from snakedeck import envelope
from snakedeck.bus import open_bus
from snakedeck.settings import Settings
from snakedeck.store import RunFilter, Store, open_store
from tests.support.live_clients import GatewayProcess, SocketIOFeed, WebSocketFeed, wait_until
from tests.support.services import AMQP_URL, tcp_reachable, unavailable, unique_namespace
from tests.support.tcp_proxy import TcpProxy

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# Every REST v1 operation DESIGN.md lists.
OPERATIONS = {
    ("get", "/api/v1/workflows"),
    ("get", "/api/v1/workflows/{name}"),
    ("post", "/api/v1/runs"),
    ("get", "/api/v1/runs"),
    ("get", "/api/v1/runs/{run_id}"),
    ("get", "/api/v1/runs/{run_id}/jobs"),
    ("get", "/api/v1/runs/{run_id}/jobs/{jobid}"),
    ("get", "/api/v1/runs/{run_id}/jobs/{jobid}/log"),
    ("get", "/api/v1/runs/{run_id}/events"),
    ("get", "/api/v1/runs/{run_id}/deliveries"),
    ("post", "/api/v1/runs/{run_id}/cancel"),
    ("post", "/api/v1/runs/{run_id}/rerun"),
    ("post", "/api/v1/runs/{run_id}/resume"),
    ("get", "/api/v1/runs/{run_id}/log"),
    ("get", "/api/v1/runs/{run_id}/outputs"),
    ("get", "/api/v1/runs/{run_id}/outputs/{path}"),
    ("get", "/api/v1/runs/{run_id}/report"),
    ("get", "/api/v1/dead-letters"),
    ("post", "/api/v1/dead-letters/replay"),
    ("delete", "/api/v1/dead-letters"),
    ("post", "/api/v1/files"),
    ("get", "/api/v1/files"),
    ("get", "/api/v1/files/{file_id}"),
    ("get", "/api/v1/files/{file_id}/content"),
    ("delete", "/api/v1/files/{file_id}"),
    ("get", "/api/v1/audit"),
}


class Deployment:
    def __init__(self, settings: Settings, gateway: GatewayProcess, store: Store) -> None:
        self.settings = settings
        self.gateway = gateway
        self.store = store
        self.url = gateway.url

    def api(
        self, method: str, path: str, *, headers: dict | None = None, **kw: Any
    ) -> requests.Response:
        """A request with the admin token, unless ``headers`` says otherwise."""
        return requests.request(
            method,
            f"{self.url}/api/v1{path}",
            headers=AUTH if headers is None else headers,
            timeout=30,
            **kw,
        )

    def snapshot(self) -> tuple[list[dict], int]:
        page = self.store.list_runs(RunFilter(), page_size=500)
        return page.items, self.store.count_events()


@pytest.fixture(scope="module", params=["sqlite", "mongo"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Deployment]:
    if not tcp_reachable(AMQP_URL):
        unavailable(f"RabbitMQ at {AMQP_URL}")
    values: dict[str, Any] = {
        "data_dir": tmp_path_factory.mktemp("gw") / "data",
        "workflows_dir": GatewayProcess.workflows_dir(),
        "namespace": unique_namespace(),
        "amqp_url": AMQP_URL,
        "api_tokens": (TOKEN, "other-token"),
    }
    if request.param == "mongo":
        values["mongo_uri"] = request.getfixturevalue("mongo_uri")
        values["mongo_db"] = unique_namespace("sdrest").replace("-", "_")
    settings = Settings(**values)
    with GatewayProcess(settings) as gateway:
        store = open_store(settings)
        try:
            yield Deployment(settings, gateway, store)
        finally:
            store.close()
    bus = open_bus(settings)
    bus.delete_topology()  # type: ignore[attr-defined]
    bus.close()


def assert_problem(resp: requests.Response, status: int, *, field: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status
    assert body["title"] and body["type"] and body["detail"]
    if field is not None:
        assert field in [e["field"] for e in body.get("errors", [])], body
        assert field in body["detail"], body
    return body


def test_submit_then_read_the_run_back(deployment: Deployment) -> None:
    resp = deployment.api(
        "POST",
        "/runs",
        json={"workflow": "demo", "config": {"samples": 2}, "tags": {"t": "1"}},
        headers=AUTH,
    )
    assert resp.status_code == 201, resp.text
    run_id = resp.json()["run_id"]
    assert resp.json()["state"] == "QUEUED"
    assert resp.headers["Location"].endswith(f"/api/v1/runs/{run_id}")
    run = deployment.api("GET", f"/runs/{run_id}").json()
    assert run["workflow"] == "demo" and run["config"] == {"samples": 2}
    listed = deployment.api("GET", "/runs", params={"tag": "t=1"}).json()
    assert [r["run_id"] for r in listed["runs"]] == [run_id] and listed["total"] == 1
    workflows = deployment.api("GET", "/workflows").json()["workflows"]
    assert "demo" in [w["name"] for w in workflows]
    assert deployment.api("GET", "/workflows/demo").json()["config_schema"]["type"] == "object"


BAD_REQUESTS = [
    # (what, method, path, kwargs, status, field)
    ("unknown workflow", "POST", "/runs", {"json": {"workflow": "nope"}}, 422, "workflow"),
    (
        "config against its schema",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "config": {"samples": 0}}},
        422,
        "config.samples",
    ),
    (
        "unknown config key",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "config": {"sample": 3}}},
        422,
        "config.sample",
    ),
    (
        "malformed JSON",
        "POST",
        "/runs",
        {"data": '{"workflow": "demo",', "headers": {"Content-Type": "application/json"}},
        400,
        "body",
    ),
    ("wrong type", "POST", "/runs", {"json": {"workflow": ["demo"]}}, 422, "workflow"),
    (
        "wrong tag type",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "tags": {"a": 1}}},
        422,
        "tags.a",
    ),
    ("unknown field", "POST", "/runs", {"json": {"workflow": "demo", "cfg": {}}}, 422, "cfg"),
    (
        "input that is a path",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "inputs": {"extra": "../../../etc/passwd"}}},
        422,
        "inputs.extra",
    ),
    (
        "unknown input name",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "inputs": {"nope": "abcdefgh"}}},
        422,
        "inputs.nope",
    ),
    (
        "unknown file id",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "inputs": {"extra": "abcdefgh"}}},
        422,
        "inputs.extra",
    ),
    (
        "inputs as a list",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "inputs": ["abcdefgh"]}},
        422,
        "inputs",
    ),
    (
        "unknown config file",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "config_file": "abcdefgh"}},
        422,
        "config_file",
    ),
    (
        "notify target on a loopback address",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "notify": [{"url": "http://127.0.0.1:9/hook"}]}},
        422,
        "notify.0.url",
    ),
    (
        "notify target of an unknown format",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "notify": [{"url": "https://a.example", "format": "x"}]}},
        422,
        "notify.0.format",
    ),
    (
        "notify tag on a private address",
        "POST",
        "/runs",
        {"json": {"workflow": "demo", "tags": {"snakedeck.notify": "http://10.0.0.1/h"}}},
        422,
        "tags.snakedeck.notify.0.url",
    ),
    ("not JSON at all", "POST", "/runs", {"data": "workflow=demo"}, 415, None),
    ("unknown run", "GET", "/runs/nosuchrun", {}, 404, None),
    ("unknown run's jobs", "GET", "/runs/nosuchrun/jobs", {}, 404, None),
    ("unknown run's events", "GET", "/runs/nosuchrun/events", {}, 404, None),
    ("unknown run's deliveries", "GET", "/runs/nosuchrun/deliveries", {}, 404, None),
    (
        "bad deliveries page token",
        "GET",
        "/runs/{run}/deliveries",
        {"params": {"page_token": "bm90LWEtdG9rZW4"}},
        422,
        "page_token",
    ),
    ("cancel unknown run", "POST", "/runs/nosuchrun/cancel", {}, 404, None),
    ("rerun unknown run", "POST", "/runs/nosuchrun/rerun", {}, 404, None),
    ("unknown workflow page", "GET", "/workflows/nope", {}, 404, None),
    (
        "bad page token",
        "GET",
        "/runs",
        {"params": {"page_token": "bm90LWEtdG9rZW4"}},
        422,
        "page_token",
    ),
    ("page too large", "GET", "/runs", {"params": {"page_size": 1001}}, 422, "page_size"),
    ("page size not a number", "GET", "/runs", {"params": {"page_size": "x"}}, 422, "page_size"),
    ("unknown state", "GET", "/runs", {"params": {"state": "DONE"}}, 422, "state"),
    (
        "negative after_seq",
        "GET",
        "/runs/{run}/events",
        {"params": {"after_seq": -1}},
        422,
        "after_seq",
    ),
    ("unknown job", "GET", "/runs/{run}/jobs/999", {}, 404, None),
]


@pytest.mark.parametrize(
    ("what", "method", "path", "kwargs", "status", "field"),
    BAD_REQUESTS,
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_input_is_a_problem_that_names_it_and_changes_nothing(
    deployment: Deployment, what, method, path, kwargs, status, field
) -> None:
    if "{run}" in path:
        run_id = deployment.api("POST", "/runs", json={"workflow": "demo"}, headers=AUTH).json()[
            "run_id"
        ]
        path = path.replace("{run}", run_id)
    kwargs = dict(kwargs)
    headers = {**AUTH, **kwargs.pop("headers", {})}
    before = deployment.snapshot()
    resp = deployment.api(method, path, headers=headers, **kwargs)
    assert_problem(resp, status, field=field)
    assert deployment.snapshot() == before


def test_a_runs_deliveries_are_read_like_the_run(deployment: Deployment) -> None:
    run_id = deployment.api("POST", "/runs", json={"workflow": "demo"}).json()["run_id"]
    assert_problem(deployment.api("GET", f"/runs/{run_id}/deliveries", headers={}), 401)
    resp = deployment.api("GET", f"/runs/{run_id}/deliveries", params={"page_size": 5})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"targets": [], "deliveries": [], "next_page_token": None, "total": 0}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}], ids=["none", "wrong"])
def test_writes_and_reads_need_a_valid_token(deployment: Deployment, headers) -> None:
    before = deployment.snapshot()
    body = assert_problem(
        deployment.api("POST", "/runs", json={"workflow": "demo"}, headers=headers), 401
    )
    assert "token" in body["detail"]
    assert deployment.snapshot() == before
    assert_problem(deployment.api("GET", "/runs", headers=headers), 401)
    assert deployment.api("GET", "/runs").status_code == 200
    import socketio

    feed = SocketIOFeed(deployment.url, token="wrong" if headers else None)
    with pytest.raises(socketio.exceptions.ConnectionError):
        feed.connect()
    assert not feed.client.connected
    ws_resp = requests.get(deployment.url + "/ws/runs", timeout=10)
    assert_problem(ws_resp, 401)
    # with the token, the socket connects
    ok = SocketIOFeed(deployment.url, token=TOKEN).connect()
    assert ok.subscribe(all=True) == {"last_seq": None}
    ok.close()
    ws = WebSocketFeed(deployment.url, f"/ws/runs?token={TOKEN}")
    ws.close()


def test_cancelling_a_finished_run_is_a_conflict(deployment: Deployment) -> None:
    run_id = deployment.api("POST", "/runs", json={"workflow": "demo"}, headers=AUTH).json()[
        "run_id"
    ]
    done = envelope.run_state(run_id, "COMPLETE", exit_code=0)
    done["seq"] = 1
    deployment.store.persist([done])
    before = deployment.snapshot()
    body = assert_problem(deployment.api("POST", f"/runs/{run_id}/cancel", headers=AUTH), 409)
    assert "COMPLETE" in body["detail"]
    assert deployment.snapshot() == before
    rerun = deployment.api("POST", f"/runs/{run_id}/rerun", headers=AUTH)
    assert rerun.status_code == 201
    assert deployment.api("GET", f"/runs/{rerun.json()['run_id']}").json()["rerun_of"] == run_id


def test_cancel_a_queued_run_is_accepted(deployment: Deployment) -> None:
    run_id = deployment.api("POST", "/runs", json={"workflow": "demo"}, headers=AUTH).json()[
        "run_id"
    ]
    resp = deployment.api("POST", f"/runs/{run_id}/cancel", headers=AUTH)
    assert resp.status_code == 202, resp.text
    assert resp.json()["cancel_requested"] is True
    assert deployment.api("GET", f"/runs/{run_id}").json()["cancel_requested"] is True


def test_the_openapi_document_is_valid_and_lists_every_operation(deployment: Deployment) -> None:
    from openapi_spec_validator import validate

    spec = requests.get(deployment.url + "/apispec_1.json", timeout=30).json()
    validate(spec)
    listed = {(m, p) for p, item in spec["paths"].items() for m in item}
    assert listed == OPERATIONS
    assert spec["openapi"].startswith("3.1")
    submit = spec["paths"]["/api/v1/runs"]["post"]
    variants = submit["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    by_workflow = {}
    for ref in variants:
        schema = spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
        assert set(schema["properties"]) == {
            "workflow",
            "config",
            "config_file",
            "inputs",
            "tags",
            "notify",
        }
        (name,) = schema["properties"]["workflow"]["enum"]
        by_workflow[name] = schema
    assert "demo" in by_workflow
    demo_config = by_workflow["demo"]["properties"]["config"]
    assert demo_config["properties"]["samples"]["maximum"] == 500
    assert demo_config["additionalProperties"] is False
    upload = spec["paths"]["/api/v1/files"]["post"]["requestBody"]["content"]
    assert set(upload) == {"multipart/form-data", "application/json"}
    assert upload["multipart/form-data"]["schema"]["properties"]["file"]["format"] == "binary"
    ui = requests.get(deployment.url + "/apidocs/", timeout=30)
    assert ui.status_code == 200 and "swagger" in ui.text.lower()


def test_probes_and_the_dashboard_redirect(deployment: Deployment) -> None:
    assert requests.get(deployment.url + "/healthz", timeout=10).json() == {"status": "ok"}
    ready = requests.get(deployment.url + "/readyz", timeout=10).json()
    assert ready["checks"] == {"store": "ok", "bus": "ok", "updates": "ok"}
    home = requests.get(deployment.url + "/", timeout=10, allow_redirects=False)
    assert home.status_code == 302 and home.headers["Location"].endswith("/dashboard/")


def test_broker_down_means_not_ready_and_submissions_fail_cleanly(tmp_path, amqp_url) -> None:
    with TcpProxy.for_url(amqp_url) as proxy:
        settings = Settings(
            data_dir=tmp_path / "data",
            workflows_dir=GatewayProcess.workflows_dir(),
            namespace=unique_namespace(),
            amqp_url=proxy.url_for(amqp_url),
        )
        with GatewayProcess(settings) as gateway:
            proxy.cut()
            ready = requests.get(gateway.url + "/readyz", timeout=30)
            body = assert_problem(ready, 503)
            assert body["checks"]["store"] == "ok" and body["checks"]["bus"] != "ok"

            def updates_check() -> str:
                return requests.get(gateway.url + "/readyz", timeout=30).json()["checks"]["updates"]

            # The live feed's own consumer lost its connection too, and readiness says so.
            wait_until(lambda: updates_check() != "ok", what="/readyz to name the updates feed")
            resp = requests.post(
                gateway.url + "/api/v1/runs", json={"workflow": "demo"}, timeout=60
            )
            body = assert_problem(resp, 503)
            store = open_store(settings)
            try:
                (run,) = store.list_runs(RunFilter()).items
                assert run["state"] == "SYSTEM_ERROR"
                assert run["run_id"] in body["detail"]
            finally:
                store.close()
            proxy.restore()
            wait_until(
                lambda: requests.get(gateway.url + "/readyz", timeout=30).status_code == 200,
                what="readiness after the broker came back",
            )
            wait_until(lambda: updates_check() == "ok", what="the updates feed back on /readyz")
