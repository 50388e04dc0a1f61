"""GA4GH WES 1.1 end to end: a real gateway (gunicorn + gevent subprocess), the real runner
and Snakemake, RabbitMQ, the consumer and the SQLite store. Every WES answer, success or
error, is checked against the shipped spec files with a validator (``tests/support/wes_spec``).

Roles are tried on the gateway as standalone mode builds it (in-process WSGI), with the
tokens of ``test_gateway_access``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from snakedeck.service.wes import snakemake_version
from tests.integration.test_gateway_access import ADMIN, TOKENS, build
from tests.support import wes_spec
from tests.support.live_clients import Pipeline, wait_until
from tests.support.rest import TERMINAL

WES = "/ga4gh/wes/v1"


@pytest.fixture
def pipeline(settings_factory) -> Iterator[Pipeline]:
    p = Pipeline(settings_factory(backend="sqlite", cores=2, cancel_grace=5.0))
    try:
        yield p.start(runner=True)
    finally:
        p.stop()


def form(**fields: Any) -> dict[str, tuple[None, str]]:
    """Multipart text parts (``requests`` sends ``files=`` as multipart/form-data)."""
    base: dict[str, Any] = {
        "workflow_type": "SMK",
        "workflow_type_version": snakemake_version(),
        "workflow_url": "demo",
    }
    base.update(fields)
    return {
        k: (None, v if isinstance(v, str) else json.dumps(v))
        for k, v in base.items()
        if v is not None
    }


class Client:
    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, f"{self.url}{WES}{path}", timeout=30, **kw)

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.call(method, path, **kw)
        assert resp.status_code == 200, resp.text
        return wes_spec.check(resp)

    def error(self, status: int, method: str, path: str, **kw: Any) -> str:
        resp = self.call(method, path, **kw)
        assert resp.status_code == status, resp.text
        return wes_spec.check(resp)["msg"]


def test_demo_through_wes_completes_with_tasks_logs_and_outputs(pipeline: Pipeline) -> None:
    wes = Client(pipeline.url)
    info = wes.ok("GET", "/service-info")
    assert info["workflow_type_versions"] == {
        "SMK": {"workflow_type_version": [snakemake_version()]}
    }
    assert "demo" in info["tags"]["workflows"].split(",")
    assert info["system_state_counts"]["COMPLETE"] == 0

    tags = {"project": "wes-e2e", "snakedeck.note": "kept"}
    params = {"samples": 3, "sleep": 0.1}
    created = wes.ok(
        "POST",
        "/runs",
        files=form(
            workflow_url="demo@1.0.0",
            workflow_params=params,
            tags=tags,
            workflow_engine="snakemake",
            workflow_engine_parameters={"cores": "1"},
        ),
    )
    run_id = created["run_id"]

    def state() -> str:
        status = wes.ok("GET", f"/runs/{run_id}/status")
        assert status["run_id"] == run_id
        return status["state"]

    wait_until(lambda: state() in TERMINAL, 240, "the WES run to end")
    assert state() == "COMPLETE"

    report = "snakemake_report.html"  # demo asks for Snakemake's report, made once COMPLETE
    wait_until(lambda: report in wes.ok("GET", f"/runs/{run_id}")["outputs"], 120, "the report")
    run = wes.ok("GET", f"/runs/{run_id}")
    assert run["state"] == "COMPLETE"
    assert requests.get(run["outputs"][report]["location"], timeout=30).status_code == 200
    assert run["request"]["workflow_url"] == "demo@1.0.0"
    assert run["request"]["workflow_params"] == params
    assert run["request"]["tags"] == tags
    assert run["request"]["workflow_engine_parameters"] == {"cores": "1"}
    events = requests.get(
        f"{pipeline.url}/api/v1/runs/{run_id}/events", params={"limit": 5000}, timeout=30
    ).json()["events"]
    used = {
        e["data"]["cores"] for e in events if "cores" in e["data"] and e["type"] == "resources_info"
    }
    assert used == {1}, used  # Snakemake ran with the cores asked for, not the server's 2
    assert run["run_log"]["exit_code"] == 0 and run["run_log"]["end_time"].endswith("Z")
    assert requests.get(run["run_log"]["stdout"], timeout=30).status_code == 200
    # RunLog.outputs: every stored result, each downloadable from its location.
    rest_outputs = requests.get(f"{pipeline.url}/api/v1/runs/{run_id}/outputs", timeout=30).json()
    assert (
        set(run["outputs"])
        >= {o["path"] for o in rest_outputs["outputs"]}
        >= {
            "summary.tsv",
            "counts/s1.tsv",
        }
    )
    summary = requests.get(run["outputs"]["summary.tsv"]["location"], timeout=30)
    assert summary.status_code == 200
    assert run["outputs"]["summary.tsv"]["checksum"] == (
        "sha256$" + __import__("hashlib").sha256(summary.content).hexdigest()
    )

    # Tasks: every job, page by page, each with log URLs that answer.
    tasks: list[dict[str, Any]] = []
    token = ""
    while True:
        page = wes.ok("GET", f"/runs/{run_id}/tasks", params={"page_size": 3, "page_token": token})
        assert len(page["task_logs"]) <= 3
        tasks += page["task_logs"]
        token = page["next_page_token"]
        if not token:
            break
    jobs = requests.get(
        f"{pipeline.url}/api/v1/runs/{run_id}/jobs", params={"page_size": 100}, timeout=30
    ).json()["jobs"]
    assert [t["id"] for t in tasks] == [j["jobid"] for j in jobs]
    assert len(tasks) == 8
    names = sorted(t["name"] for t in tasks)
    assert "make_sample[sample=s1]" in names and "summarize" in names
    for task in tasks:
        assert task["exit_code"] == 0 and task["start_time"] and task["end_time"]
        for url in {task["stdout"], task["stderr"]}:
            assert url.startswith(pipeline.url + "/api/v1/")
            assert requests.get(url, timeout=30).status_code == 200, url
    one = wes.ok("GET", f"/runs/{run_id}/tasks/{tasks[0]['id']}")
    assert one == tasks[0]

    # Lists: stable order, the extension filters, real counts.
    listed = wes.ok("GET", "/runs", params={"tag": "project=wes-e2e"})
    assert [r["run_id"] for r in listed["runs"]] == [run_id]
    assert listed["runs"][0]["tags"] == tags and listed["next_page_token"] == ""
    assert wes.ok("GET", "/runs", params={"state": "RUNNING"})["runs"] == []
    assert wes.ok("GET", "/runs", params={"state": "COMPLETE"})["runs"][0]["run_id"] == run_id
    assert wes.ok("GET", "/service-info")["system_state_counts"]["COMPLETE"] == 1
    # Cancelling a run that ended changes nothing.
    assert wes.ok("POST", f"/runs/{run_id}/cancel") == {"run_id": run_id}
    assert state() == "COMPLETE"


def test_bad_requests_get_the_spec_error_response(pipeline: Pipeline) -> None:
    wes = Client(pipeline.url)
    post = "POST", "/runs"
    msg = wes.error(400, *post, files={**form(), "workflow_attachment": ("Snakefile", b"rule x:")})
    assert "workflow_attachment is refused" in msg
    assert "no registered" in wes.error(400, *post, files=form(workflow_url="nonesuch"))
    assert "not a URL" in wes.error(400, *post, files=form(workflow_url="https://x/Snakefile"))
    assert "version 1.0.0" in wes.error(400, *post, files=form(workflow_url="demo@9"))
    assert "not valid JSON" in wes.error(400, *post, files=form(workflow_params="{samples: 2"))
    assert "JSON object" in wes.error(400, *post, files=form(workflow_params="[1]"))
    assert "samples" in wes.error(400, *post, files=form(workflow_params={"samples": "many"}))
    assert "CWL" in wes.error(400, *post, files=form(workflow_type="CWL"))
    assert "Snakemake" in wes.error(400, *post, files=form(workflow_type_version="7.0"))
    assert "not allowed" in wes.error(
        400, *post, files=form(workflow_engine_parameters={"--use-conda": "1"})
    )
    assert "cores" in wes.error(400, *post, files=form(workflow_engine_parameters={"cores": "64"}))
    assert "file" in wes.error(
        400, *post, files=form(workflow_params={"inputs": {"extra": "f_missing"}})
    )
    assert "tags" in wes.error(400, *post, files=form(tags={"k": 1}))
    assert "unknown form field" in wes.error(400, *post, files=form(workflow_paramz="{}"))
    assert "required" in wes.error(400, *post)
    assert wes.error(400, "GET", "/runs", params={"page_token": "not-ours"})
    assert wes.error(400, "GET", "/runs", params={"page_size": "0"})
    assert wes.error(400, "GET", "/runs", params={"state": "DONE"})
    unknown = "01aaaaaaaaaaaaaaaa"
    for path in ("", "/status", "/tasks", "/tasks/1"):
        assert unknown in wes.error(404, "GET", f"/runs/{unknown}{path}")
    assert wes.error(404, "POST", f"/runs/{unknown}/cancel")
    run_id = wes.ok(*post, files=form(workflow_params={"samples": 1, "sleep": 30}))["run_id"]
    assert wes.error(400, "GET", f"/runs/{run_id}/tasks", params={"page_token": "x"})
    assert wes.error(404, "GET", f"/runs/{run_id}/tasks/999")
    assert wes.ok("GET", "/runs")["runs"][0]["run_id"] == run_id

    # Cancel through WES: the runner stops it.
    assert wes.ok("POST", f"/runs/{run_id}/cancel") == {"run_id": run_id}
    wait_until(
        lambda: wes.ok("GET", f"/runs/{run_id}/status")["state"] == "CANCELED",
        120,
        "the run to be cancelled",
    )

    # Paging: newest first, every run once, page by page with opaque tokens.
    newer = [wes.ok(*post, files=form(workflow_params={"samples": 1}))["run_id"] for _ in "ab"]
    seen, token = [], ""
    while True:
        page = wes.ok("GET", "/runs", params={"page_size": 1, "page_token": token})
        assert len(page["runs"]) <= 1
        seen += [r["run_id"] for r in page["runs"]]
        token = page["next_page_token"]
        if not token:
            break
        assert not any(r in token for r in [run_id, *newer])
    assert seen == [*reversed(newer), run_id]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    g = build(tmp_path_factory.mktemp("wes-access"))
    yield g
    g.bus.close()
    g.store.close()


def _check(resp: Any, method: str) -> Any:
    return wes_spec.check(resp, method)


def test_wes_takes_the_same_tokens_and_roles(guarded: Any) -> None:
    fields = {k: v[1] for k, v in form(workflow_params={"samples": 1}).items()}

    def submit(token: str | None) -> Any:
        return guarded.call(
            "POST", f"{WES}/runs", token, data=dict(fields), content_type="multipart/form-data"
        )

    refused = submit(None)
    assert refused.status_code == 401 and "token" in _check(refused, "POST")["msg"]
    reader = submit(TOKENS["viewer"][1])
    assert reader.status_code == 403 and "submit role" in _check(reader, "POST")["msg"]
    mine = submit(TOKENS["ana"][1])
    assert mine.status_code == 200, mine.get_data(as_text=True)
    run_id = _check(mine, "POST")["run_id"]
    assert guarded.service.get_run(run_id)["user"] == "ana"

    anonymous = guarded.call("GET", f"{WES}/runs/{run_id}/status")
    assert anonymous.status_code == 401
    _check(anonymous, "GET")
    seen = guarded.call("GET", f"{WES}/runs/{run_id}/status", TOKENS["viewer"][1])
    assert _check(seen, "GET")["state"] == "QUEUED"
    others = guarded.call("POST", f"{WES}/runs/{run_id}/cancel", TOKENS["bob"][1])
    assert others.status_code == 403 and "ana" in _check(others, "POST")["msg"]
    own = guarded.call("POST", f"{WES}/runs/{run_id}/cancel", TOKENS["ana"][1])
    assert _check(own, "POST") == {"run_id": run_id}
    assert guarded.service.get_run(run_id)["cancel_requested"] is True
    admin = guarded.call("GET", f"{WES}/service-info", ADMIN)
    assert _check(admin, "GET")["system_state_counts"]["QUEUED"] >= 1
    # The gateway's own defences answer in the spec's shape on these paths too.
    rebound = guarded.call("GET", f"{WES}/runs", ADMIN, headers={"Host": "evil.example"})
    assert rebound.status_code == 400 and "evil.example" in _check(rebound, "GET")["msg"]
    cross = guarded.call(
        "POST",
        f"{WES}/runs",
        TOKENS["ana"][1],
        data=dict(fields),
        content_type="multipart/form-data",
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and _check(cross, "POST")["msg"]


def test_apidocs_shows_both_apis_and_their_documents_are_open(guarded: Any) -> None:
    from gateway.wes.document import document

    listed = guarded.call("GET", "/apidocs/?json=1").get_json()["urls"]
    assert {u["name"]: u["url"] for u in listed} == {
        "snakedeck API": "/apidocs/openapi-3.0.json",
        "GA4GH WES 1.1": "/apidocs/ga4gh-wes-1.1.0.json",
    }
    served = guarded.call("GET", "/apidocs/ga4gh-wes-1.1.0.json")  # no token: open like REST's
    assert served.status_code == 200 and served.get_json() == document()
    assert guarded.call("GET", "/apidocs/openapi-3.0.json").status_code == 200


def test_the_served_document_is_the_shipped_spec_and_valid_openapi() -> None:
    from openapi_spec_validator import validate

    from gateway.wes.document import WES_FILE, document, shipped

    served, spec = document(), shipped(WES_FILE)
    validate(served)  # OpenAPI 3.0, every reference resolved inside the document
    assert served["info"] == spec["info"] and served["info"]["version"] == "1.1.0"
    assert served["paths"].keys() == spec["paths"].keys()
    for name, schema in spec["components"]["schemas"].items():
        if name != "ServiceInfo":
            assert served["components"]["schemas"][name] == schema, name
    spec_dir = Path(wes_spec.__file__).resolve().parents[2] / "gateway/wes/spec"
    assert {p.name for p in spec_dir.iterdir()} == {
        "wes-1.1.0.openapi.yaml",
        "service-info-1.0.0.yaml",
        "LICENSE-wes-schemas",
        "LICENSE-service-info",
    }
