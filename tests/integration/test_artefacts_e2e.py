"""Everything about a run, from any host: logs, why a job failed, results, report, resources
and resume, end to end with every real part (RabbitMQ, the Mongo wire server, real
Snakemake, the gateway as its own process).

Run each alone (each is a real run or two): ``pytest tests/integration/test_artefacts_e2e.py
-k shared_disk``.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from consumer.service import Consumer
from runner.service import Runner
from snakedeck.bus import open_bus
from snakedeck.settings import Settings
from snakedeck.store import open_store
from tests.support.live_clients import REPO, GatewayProcess, Pipeline, WebSocketFeed, wait_until
from tests.support.rest import api, finished

TEST_WORKFLOWS = REPO / "tests" / "workflows"


def submit(url: str, workflow: str, config: dict[str, Any]) -> str:
    resp = api(url, "POST", "/runs", json={"workflow": workflow, "config": config})
    assert resp.status_code == 201, resp.text
    return resp.json()["run_id"]


def failed_jobs(url: str, run_id: str) -> list[dict[str, Any]]:
    return api(url, "GET", f"/runs/{run_id}/jobs", params={"state": "failed"}).json()["jobs"]


def whole_log(url: str, run_id: str, stream: str = "snakemake") -> str:
    text, offset = "", 0
    while True:
        params = {"stream": stream, "offset": offset}
        piece = api(url, "GET", f"/runs/{run_id}/log", params=params).json()
        text += piece["text"]
        if piece["next_offset"] >= piece["size"]:
            return text
        offset = piece["next_offset"]


class ThreeHosts:
    """Gateway, consumer and runner with three different DATA_DIRs: what one sees of another
    can only have come through RabbitMQ and the store."""

    def __init__(self, base: Settings, tmp: Path) -> None:
        self.gateway_settings = base.with_(data_dir=tmp / "gateway-host")
        self.consumer_settings = base.with_(data_dir=tmp / "consumer-host")
        self.runner_settings = base.with_(data_dir=tmp / "runner-host", cancel_grace=5.0)
        self.consumer_store = open_store(self.consumer_settings)
        self.consumer_bus = open_bus(self.consumer_settings)
        self.consumer = Consumer(self.consumer_settings, self.consumer_store, self.consumer_bus)
        self.runner_store = open_store(self.runner_settings)
        self.runner = Runner(
            self.runner_settings, open_bus(self.runner_settings), self.runner_store
        )
        self.gateway = GatewayProcess(self.gateway_settings)

    def start(self) -> ThreeHosts:
        self.consumer.start()
        self.runner.start()
        self.gateway.start()
        return self

    @property
    def url(self) -> str:
        return self.gateway.url

    def work(self, run_id: str) -> Path:
        return self.runner_settings.runs_dir / run_id / "work"

    def stop(self) -> None:
        self.gateway.stop()
        self.runner.stop()
        self.runner.bus.delete_topology()  # type: ignore[attr-defined]
        self.runner.bus.close()
        self.runner_store.close()
        self.consumer.stop()
        self.consumer_bus.close()
        self.consumer_store.close()


@pytest.fixture
def hosts(settings_factory, tmp_path: Path) -> Iterator[ThreeHosts]:
    deployment = ThreeHosts(settings_factory(backend="mongo", cores=2), tmp_path)
    try:
        yield deployment.start()
    finally:
        deployment.stop()


def test_with_no_shared_disk_a_run_shows_its_logs_failure_and_results(
    hosts: ThreeHosts,
) -> None:
    url = hosts.url
    config = {"samples": 4, "fail_sample": "s3", "sleep": 1.5}
    run_id = submit(url, "demo", config)
    feed = WebSocketFeed(url, f"/ws/runs/{run_id}")
    try:
        run = finished(url, run_id)
        assert run["state"] == "EXECUTOR_ERROR", run
        wait_until(
            lambda: any(
                d["stream"] == "snakemake" and "Error in rule make_sample" in d["text"]
                for k, d in feed.messages
                if k == "log"
            ),
            60,
            "the run log's error to be pushed live",
        )
    finally:
        feed.close()

    # Why the job failed, on the job: what it wrote to its stderr and its exit code.
    (failed,) = failed_jobs(url, run_id)
    assert failed["rule"] == "make_sample" and failed["wildcards"] == {"sample": "s3"}
    failure = failed["failure"]
    assert "ERROR: sample s3 is configured to fail (fail_sample)" in failure["text"]
    assert failure["exit_code"] == 3 and "exit status 3" in failure["message"]
    job = api(url, "GET", f"/runs/{run_id}/jobs/{failed['jobid']}").json()
    assert job["failure"]["text"] == failure["text"]

    # Its declared log, served from the store.
    logs = api(url, "GET", f"/runs/{run_id}/jobs/{failed['jobid']}/log").json()["logs"]
    (declared,) = logs
    assert declared["path"] == "logs/make_sample/s3.log" and declared["exists"]
    assert "make_sample s3: start" in declared["content"]
    assert "ERROR: sample s3 is configured to fail" in declared["content"]

    # The run log, served and tailed: the live chunks are the stored text, offset for offset.
    text = whole_log(url, run_id)
    assert "Error in rule make_sample:" in text and "jobid: " + failed["jobid"] in text
    live = sorted(
        (d["offset"], d["text"]) for k, d in feed.messages
        if k == "log" and d["stream"] == "snakemake"
    )  # fmt: skip
    assert live, "no log chunk came over the socket"
    raw = text.encode()
    for offset, chunk in live:
        assert raw[offset : offset + len(chunk.encode())] == chunk.encode()
    later = api(url, "GET", f"/runs/{run_id}/log", params={"offset": len(raw) // 2}).json()
    assert later["offset"] == len(raw) // 2 and raw.endswith(later["text"].encode())
    assert not (hosts.gateway_settings.runs_dir / run_id).exists()
    assert str(hosts.runner_settings.data_dir) not in json.dumps(job)

    # A COMPLETE run's results download byte for byte as the runner's work directory has them.
    done_id = submit(url, "demo", {"samples": 3, "sleep": 0.2})
    assert finished(url, done_id)["state"] == "COMPLETE"
    listing = api(url, "GET", f"/runs/{done_id}/outputs").json()
    paths = {o["path"]: o for o in listing["outputs"]}
    assert {"summary.tsv", "counts/s1.tsv", "samples/s3.txt"} <= set(paths)
    assert paths["summary.tsv"]["kind"] == "table" and paths["samples/s1.txt"]["kind"] == "text"
    work = hosts.work(done_id)
    for path, doc in paths.items():
        resp = api(url, "GET", f"/runs/{done_id}/outputs/{path}")
        assert resp.status_code == 200, resp.text
        assert resp.content == (work / path).read_bytes(), path
        assert resp.headers["ETag"] == f'"{doc["sha256"]}"'
        assert resp.headers["Content-Disposition"].startswith("attachment")
    assert api(url, "GET", f"/runs/{done_id}/outputs/nope.tsv").status_code == 404
    assert api(url, "GET", f"/runs/{done_id}/outputs/../../etc/passwd").status_code == 404

    report = api(url, "GET", f"/runs/{done_id}/report")
    assert report.status_code == 200 and report.headers["Content-Type"].startswith("text/html")
    assert "sandbox" in report.headers["Content-Security-Policy"]
    assert listing["report"]["path"] == "snakemake_report.html" and len(report.content) > 10_000
    assert api(url, "GET", f"/runs/{run_id}/report").status_code == 404  # not COMPLETE


@pytest.fixture
def test_workflows(settings_factory) -> Iterator[Pipeline]:
    pipeline = Pipeline(settings_factory(backend="mongo", workflows_dir=TEST_WORKFLOWS, cores=2))
    try:
        yield pipeline.start(runner=True)
    finally:
        pipeline.stop()


def test_a_run_block_that_raises_without_a_log_shows_the_exception_on_the_job(
    test_workflows: Pipeline,
) -> None:
    url = test_workflows.url
    run_id = submit(url, "raising", {})
    assert finished(url, run_id)["state"] == "EXECUTOR_ERROR"
    (failed,) = failed_jobs(url, run_id)
    assert failed["rule"] == "plot_quals" and failed["log"] == []
    failure = failed["failure"]
    assert failure["message"] == (
        "ModuleNotFoundError: No module named 'snakedeck_no_such_plotting_module'"
    )
    assert "No module named 'snakedeck_no_such_plotting_module'" in failure["text"]
    assert "in __rule_plot_quals" in failure["text"]
    # No server path: the Snakefile is named within its workflow.
    assert 'in file "<workflow raising>/Snakefile", line 10' in failure["text"]
    assert str(REPO) not in json.dumps(failed)
    assert api(url, "GET", f"/runs/{run_id}/jobs/{failed['jobid']}/log").json()["logs"] == []


def job_infos_after(url: str, run_id: str, after: int) -> list[dict[str, Any]]:
    params = {"after_seq": after, "limit": 5000}
    events = api(url, "GET", f"/runs/{run_id}/events", params=params).json()["events"]
    return [e for e in events if e["type"] == "job_info"]


def test_resume_reruns_only_the_failed_and_not_run_jobs_and_completes_once_fixed(
    test_workflows: Pipeline, tmp_path: Path
) -> None:
    url = test_workflows.url
    marker = tmp_path / "reference.idx"
    run_id = submit(url, "fixable", {"marker": str(marker)})
    first = finished(url, run_id)
    assert first["state"] == "EXECUTOR_ERROR", first
    (failed,) = failed_jobs(url, run_id)
    assert f"{marker} is missing" in failed["failure"]["text"]
    progress = first["progress"]
    redo = progress["failed"] + progress["not_run"] + progress["cancelled"]
    assert progress["failed"] == 1 and progress["not_run"] >= 2 and progress["total"] == 6
    closed = first["attempts"][0]["closed_seq"]
    # Which samples the first attempt finished depends on timing (Snakemake stops scheduling
    # at the failure): a resume must redo exactly the others.
    processed = api(url, "GET", f"/runs/{run_id}/jobs", params={"rule": "process"}).json()["jobs"]
    done_first = {j["wildcards"]["sample"] for j in processed if j["state"] == "done"}
    assert "s2" not in done_first

    marker.write_text("index\n")  # the cause is fixed, outside the run and its config
    resp = api(url, "POST", f"/runs/{run_id}/resume")
    assert resp.status_code == 202, resp.text
    assert resp.json()["attempt"] == 2 and resp.json()["runner"] == first["runner"]
    second = finished(url, run_id)
    assert second["state"] == "COMPLETE", second
    assert [(a["attempt"], a["state"]) for a in second["attempts"]] == [
        (1, "EXECUTOR_ERROR"), (2, "COMPLETE"),
    ]  # fmt: skip
    rerun = job_infos_after(url, run_id, closed)
    assert len(rerun) == redo, [e["data"]["rule_name"] for e in rerun]
    assert {e["data"]["rule_name"] for e in rerun} == {"process", "merge", "all"}
    redone = [
        e["data"]["wildcards"]["sample"] for e in rerun if e["data"]["rule_name"] == "process"
    ]
    assert sorted(redone) == sorted({"s1", "s2", "s3", "s4"} - done_first)
    assert second["progress"]["done"] == 6 and second["progress"]["total"] == 6
    assert api(url, "GET", f"/runs/{run_id}/jobs/{failed['jobid']}").json()["state"] == "done"
    merged = api(url, "GET", f"/runs/{run_id}/outputs/merged.tsv")
    assert merged.status_code == 200 and merged.text.count("\tok") == 4

    # A COMPLETE run has nothing to resume; a run whose runner is gone cannot be resumed.
    again = api(url, "POST", f"/runs/{run_id}/resume")
    assert again.status_code == 409 and "nothing left to do" in again.json()["detail"]
    other = submit(url, "fixable", {"marker": str(tmp_path / "missing")})
    assert finished(url, other)["state"] == "EXECUTOR_ERROR"
    runner_id = test_workflows.runner.runner_id
    test_workflows.runner.stop()
    wait_until(
        lambda: any(
            r["runner_id"] == runner_id and r["state"] == "lost"
            for r in requests.get(url + "/readyz", timeout=10).json().get("runners", [])
        ),
        60,
        "the stopped runner to be reported lost",
    )
    refused = api(url, "POST", f"/runs/{other}/resume")
    assert refused.status_code == 409, refused.text
    assert runner_id in refused.json()["detail"] and "not running" in refused.json()["detail"]


def test_a_jobs_measured_cpu_and_memory_are_within_a_fifth_of_the_truth(
    test_workflows: Pipeline,
) -> None:
    url = test_workflows.url
    run_id = submit(url, "resources", {"mb": 300, "cpu": 3, "hold": 2})
    run = finished(url, run_id)
    assert run["state"] == "COMPLETE", run
    jobs = api(url, "GET", f"/runs/{run_id}/jobs", params={"rule": "hog"}).json()["jobs"]
    (hog,) = jobs
    used = hog["resources_used"]
    truth = api(url, "GET", f"/runs/{run_id}/outputs/hog.json").json()  # the kernel's account
    assert truth["cpu_seconds"] >= 3.0 and truth["peak_rss_bytes"] >= 300 * 1024 * 1024
    assert used["cpu_seconds"] == pytest.approx(truth["cpu_seconds"], rel=0.2), (used, truth)
    assert used["peak_rss_bytes"] == pytest.approx(truth["peak_rss_bytes"], rel=0.2), used
    assert used["cpu_seconds"] == pytest.approx(3.0, rel=0.2)
    assert used["peak_rss_bytes"] == pytest.approx(300 * 1024 * 1024, rel=0.2)
    assert used["wall_seconds"] == pytest.approx(hog["duration"], abs=0.5)
    assert hog["resources"]["mem_mb"] == 400  # requested, beside what it used
    series = run["resource_series"]["points"]
    assert series and max(p[2] for p in series) >= 300 * 1024 * 1024
    assert max(p[1] for p in series) > 50  # a core busy for seconds


def test_an_active_run_has_an_estimate_from_earlier_runs(test_workflows: Pipeline) -> None:
    url = test_workflows.url
    first = submit(url, "fixable", {"marker": "/", "sleep": 1.0})
    assert finished(url, first)["state"] == "COMPLETE"
    second = submit(url, "fixable", {"marker": "/", "sleep": 1.0})

    def running_with_eta() -> dict[str, Any] | None:
        run = api(url, "GET", f"/runs/{second}").json()
        return run if run.get("eta") else None

    run = wait_until(running_with_eta, 120, "an estimate while the run is RUNNING")
    assert run["state"] == "RUNNING" and run["eta"]["seconds_remaining"] >= 0
    assert "1 earlier COMPLETE run(s) of fixable" in run["eta"]["basis"]
    assert time.time() - 1 <= _epoch(run["eta"]["estimated_end"]) <= time.time() + 120
    assert finished(url, second)["state"] == "COMPLETE"
    assert "eta" not in api(url, "GET", f"/runs/{second}").json()


def _epoch(ts: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def test_a_store_outage_delays_shipping_but_not_the_run_and_nothing_is_lost(
    settings_factory, tmp_path: Path
) -> None:
    """The runner's store goes away while the run is active (events still flow through
    RabbitMQ to the consumer): the run ends on time, and once the store is back its log and
    results arrive whole."""
    from tests.support.tcp_proxy import TcpProxy

    base = settings_factory(backend="mongo", cores=2)
    pipeline = Pipeline(base.with_(data_dir=tmp_path / "gateway-host")).start()
    assert base.mongo_uri is not None
    proxy = TcpProxy.for_url(base.mongo_uri)
    runner_settings = base.with_(
        data_dir=tmp_path / "runner-host", mongo_uri=proxy.url_for(base.mongo_uri)
    )
    runner_store = open_store(runner_settings)
    pipeline.runner = Runner(runner_settings, open_bus(runner_settings), runner_store)
    pipeline.runner.start()
    try:
        url = pipeline.url
        run_id = submit(url, "demo", {"samples": 3, "sleep": 2})
        wait_until(
            lambda: api(url, "GET", f"/runs/{run_id}").json()["state"] == "RUNNING",
            120,
            "the run to start",
        )
        proxy.cut()
        # The run ends while its runner still cannot reach the store, and its log's end is
        # not shipped yet: the end was not held back for the store. (How long it took is a
        # figure for the test's output, not a bound: these machines are shared.)
        cut_at = time.monotonic()
        run = finished(url, run_id, timeout=180)
        print(f"the run ended {time.monotonic() - cut_at:.1f} s after its store was cut off")
        assert run["state"] == "COMPLETE", run
        assert "Complete log(s)" not in whole_log(url, run_id)  # not shipped while cut off
        proxy.restore()
        wait_until(lambda: "Complete log(s)" in whole_log(url, run_id), 120, "the rest of the log")
        work = runner_settings.runs_dir / run_id / "work"
        wait_until(
            lambda: (
                "summary.tsv"
                in {o["path"] for o in api(url, "GET", f"/runs/{run_id}/outputs").json()["outputs"]}
            ),
            60,
            "the results",
        )
        summary = api(url, "GET", f"/runs/{run_id}/outputs/summary.tsv")
        assert summary.content == (work / "summary.tsv").read_bytes()
        stored = whole_log(url, run_id).encode()
        assert stored == (runner_settings.runs_dir / run_id / "snakemake.log").read_bytes()
    finally:
        proxy.restore()
        pipeline.stop()
        runner_store.close()
        proxy.close()


def test_a_cancelled_run_resumes_and_keeps_what_it_had_finished(test_workflows: Pipeline) -> None:
    url = test_workflows.url
    run_id, first = cancelled_after_a_job(url, "fixable", {"marker": "/", "sleep": 4})
    done_before = first["progress"]["done"]
    assert 1 <= done_before < 6
    assert api(url, "POST", f"/runs/{run_id}/resume").status_code == 202
    second = finished(url, run_id)
    assert second["state"] == "COMPLETE", second
    rerun = job_infos_after(url, run_id, second["attempts"][0]["closed_seq"])
    assert len(rerun) == 6 - done_before  # what was done stayed done
    assert second["progress"]["done"] == 6


def test_a_run_whose_snakemake_was_sigkilled_on_cancel_resumes(settings_factory) -> None:
    """A job that ignores SIGTERM outlasts the cancel grace: Snakemake is SIGKILLed and leaves
    its working directory locked. The resume must still run (in CI a loaded machine once let
    the 10 s grace run out, and the resume failed on Snakemake's stale lock)."""
    settings = settings_factory(
        backend="sqlite", workflows_dir=TEST_WORKFLOWS, cores=2, cancel_grace=2.0
    )
    pipeline = Pipeline(settings).start(runner=True)
    try:
        url = pipeline.url
        run_id, first = cancelled_after_a_job(url, "stubborn", {"sleep": 4})
        assert first["signal"] == signal.SIGKILL, first  # the grace ran out
        locks = settings.runs_dir / run_id / "work" / ".snakemake" / "locks"
        assert any(locks.iterdir()), "a SIGKILLed Snakemake leaves its locks"
        assert api(url, "POST", f"/runs/{run_id}/resume").status_code == 202
        second = finished(url, run_id)
        assert second["state"] == "COMPLETE", second.get("state_reason")
        assert second["progress"]["done"] == 5
    finally:
        pipeline.stop()


def cancelled_after_a_job(
    url: str, workflow: str, config: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """A run of ``workflow`` cancelled once its first job is done: its id and the run."""
    run_id = submit(url, workflow, config)
    wait_until(
        lambda: any(
            j["state"] == "done" for j in api(url, "GET", f"/runs/{run_id}/jobs").json()["jobs"]
        ),
        120,
        "a first job to finish",
    )
    assert api(url, "POST", f"/runs/{run_id}/cancel").status_code == 202
    first = finished(url, run_id)
    assert first["state"] == "CANCELED", first
    return run_id, first
