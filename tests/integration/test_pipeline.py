"""The whole pipeline with real parts: submit → RabbitMQ → runner → Snakemake (the demo workflow)
→ plugin → spool → forwarder → RabbitMQ → consumer → store (SQLite and MongoDB)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from consumer.service import Consumer
from runner import exit_status
from runner.service import Runner
from runner.supervisor import group_members
from snakedeck import envelope, messages, projection
from snakedeck.bus import Bus, Outgoing, open_bus
from snakedeck.rundir import RunDir, run_dir
from snakedeck.settings import Settings
from snakedeck.store import JobFilter, Store
from snakedeck.workflows import WorkflowRegistry
from tests.support.rest import TERMINAL
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture
def settings(settings_factory, store_backend: str) -> Settings:
    return settings_factory(backend=store_backend, bus="amqp", cores=2, cancel_grace=5.0)


@pytest.fixture
def start_runner(settings: Settings, store: Store) -> Iterator[Callable[..., Runner]]:
    started: list[tuple[Runner, Bus]] = []

    def start(runner_settings: Settings | None = None) -> Runner:
        s = runner_settings or settings
        b = open_bus(s)
        r = Runner(s, b, store)
        r.start()
        started.append((r, b))
        assert r.wait_ready(30), "the runner never connected"
        return r

    yield start
    for r, b in started:
        r.stop()
        b.close()


@pytest.fixture
def runner(start_runner: Callable[..., Runner]) -> Runner:
    return start_runner()


# -- helpers ------------------------------------------------------------------------------------
def submit(store: Store, bus: Bus, run_id: str, config: dict[str, Any]) -> None:
    """What the gateway does: store the run QUEUED, then enqueue its command."""
    run = projection.new_run(run_id)
    run.update(workflow="demo", config=config, submitted_at=envelope.now_iso())
    store.create_run(run)
    bus.submit_run({"run_id": run_id, "workflow": "demo", "config": config, "inputs": {}})


def new_run_id(tag: str) -> str:
    return f"{tag}-{os.urandom(4).hex()}"


def spool_events(rd: RunDir) -> list[dict[str, Any]]:
    lines = rd.spool.read_text().splitlines() if rd.spool.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def terminal_in_spool(rd: RunDir) -> str | None:
    for ev in reversed(spool_events(rd)):
        if ev["type"] == "run_state" and ev["data"]["state"] in TERMINAL:
            return ev["data"]["state"]
    return None


def wait_finished(store: Store, rd: RunDir, timeout: float = 90.0) -> dict[str, Any]:
    """The run is terminal in the store and every spooled event has been persisted."""

    def done() -> dict[str, Any] | None:
        state = terminal_in_spool(rd)
        run = store.get_run(rd.run_id)
        if state is None or run is None:
            return None
        if run["state"] != state or run["last_seq"] < len(spool_events(rd)):
            return None
        return run

    return wait_for(done, timeout, f"run {rd.run_id} to finish and be persisted")


def all_jobs(store: Store, run_id: str) -> list[dict[str, Any]]:
    return store.list_jobs(run_id, JobFilter(), page_size=1000).items


def assert_gap_free(store: Store, run_id: str, n: int) -> list[dict[str, Any]]:
    events = store.list_events(run_id, limit=100_000)
    assert [e["seq"] for e in events] == list(range(1, n + 1))
    return events


def dry_run_stats(settings: Settings, config: dict[str, Any], tmp: Path) -> dict[str, int]:
    """Job counts per rule as ``snakemake --dry-run`` of the same configuration plans them."""
    wf = WorkflowRegistry(settings.workflows_dir).get("demo")
    full = WorkflowRegistry(settings.workflows_dir).validate_config(wf, config)
    cfg = tmp / "dry-config.json"
    cfg.write_text(json.dumps(full))
    out = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "--dry-run", "--snakefile", str(wf.snakefile),
            "--directory", str(tmp / "dry-work"), "--configfile", str(cfg), "--cores", "2",
            "--nocolor",
        ],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    text = out.stdout + out.stderr
    table = text[text.index("Job stats:") :]
    stats: dict[str, int] = {}
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)\s*$", line)
        if not m:
            break
        stats[m.group(1)] = int(m.group(2))
    stats.pop("total", None)
    return stats


def snapshot(store: Store, run_id: str) -> tuple[Any, ...]:
    run = {k: v for k, v in (store.get_run(run_id) or {}).items() if k not in ("_rev", "_id")}
    jobs = [
        {k: v for k, v in j.items() if k not in ("_rev", "_id")} for j in all_jobs(store, run_id)
    ]
    events = store.list_events(run_id, limit=100_000)
    return run, jobs, events, store.count_events()


# -- tests --------------------------------------------------------------------------------------
def test_demo_run_completes_with_every_job_and_event(
    settings: Settings, store: Store, bus: Bus, consumer: Consumer, runner: Runner, tmp_path: Path
) -> None:
    config = {"samples": 4, "sleep": 0.1}
    run_id = new_run_id("ok")
    submit(store, bus, run_id, config)
    rd = run_dir(settings.runs_dir, run_id)
    run = wait_finished(store, rd)

    assert run["state"] == "COMPLETE", run.get("state_reason")
    assert run["exit_code"] == 0
    assert run["workflow"] == "demo"
    spooled = spool_events(rd)
    assert_gap_free(store, run_id, len(spooled))
    assert [e["data"]["state"] for e in spooled if e["type"] == "run_state"] == [
        "INITIALIZING",
        "RUNNING",
        "COMPLETE",
    ]

    stats = dict(next(e for e in spooled if e["type"] == "run_info")["data"]["stats"])
    total = stats.pop("total")
    assert stats == dry_run_stats(settings, config, tmp_path)
    assert stats == {"make_sample": 4, "count": 4, "summarize": 1, "all": 1}

    jobs = all_jobs(store, run_id)
    assert Counter(j["rule"] for j in jobs) == Counter(stats)
    assert {j["state"] for j in jobs} == {"done"}
    assert run["progress"]["done"] == run["progress"]["total"] == total == len(jobs)
    assert run["rule_counts"]["count"]["done"] == 4
    wildcards = sorted(j["wildcards"]["sample"] for j in jobs if j["rule"] == "make_sample")
    assert wildcards == ["s1", "s2", "s3", "s4"]
    assert (rd.work / "summary.tsv").read_text().splitlines()[-1] == "total\t20"
    wait_for(lambda: bus.queue_depth("runs") == 0, 30, "the command to be acknowledged")
    wait_for(lambda: runner.active_runs() == [], 30, "the runner to let the run go")


def test_a_failing_sample_ends_executor_error_with_exactly_that_job_failed(
    settings: Settings, store: Store, bus: Bus, consumer: Consumer, runner: Runner
) -> None:
    run_id = new_run_id("fail")
    submit(store, bus, run_id, {"samples": 3, "sleep": 0.1, "fail_sample": "s2"})
    rd = run_dir(settings.runs_dir, run_id)
    run = wait_finished(store, rd)

    assert run["state"] == "EXECUTOR_ERROR"
    assert run["exit_code"] not in (0, None)
    assert "make_sample" in run["state_reason"]
    assert_gap_free(store, run_id, len(spool_events(rd)))
    failed = store.list_jobs(run_id, JobFilter(state="failed")).items
    assert len(failed) == 1
    job = failed[0]
    assert job["rule"] == "make_sample" and job["wildcards"] == {"sample": "s2"}
    assert job["log"] == ["logs/make_sample/s2.log"]
    text = (rd.work / job["log"][0]).read_text()
    assert "ERROR: sample s2 is configured to fail" in text
    assert run["progress"]["failed"] == 1
    assert all(j["state"] in ("done", "failed") for j in all_jobs(store, run_id))


def test_cancel_during_a_run_ends_canceled_and_leaves_no_process(
    settings: Settings, store: Store, bus: Bus, consumer: Consumer, runner: Runner
) -> None:
    run_id = new_run_id("cancel")
    submit(store, bus, run_id, {"samples": 4, "sleep": 30})
    rd = run_dir(settings.runs_dir, run_id)

    def running_jobs() -> list[dict[str, Any]]:
        return store.list_jobs(run_id, JobFilter(state="running")).items

    running = wait_for(running_jobs, 60, "jobs to run")
    pgid = int(rd.pid.read_text())
    assert group_members(pgid), "Snakemake's process group should be alive while jobs run"
    asked = time.monotonic()
    bus.send_control(messages.cancel(run_id))

    wait_for(lambda: terminal_in_spool(rd), 60, "the runner to record the end")
    assert time.monotonic() - asked < settings.cancel_grace, "not ended within the grace period"
    run = wait_finished(store, rd)
    assert run["state"] == "CANCELED"
    states = [e["data"]["state"] for e in spool_events(rd) if e["type"] == "run_state"]
    assert states == ["INITIALIZING", "RUNNING", "CANCELING", "CANCELED"]
    jobs = {j["jobid"]: j for j in all_jobs(store, run_id)}
    for job in running:
        assert jobs[job["jobid"]]["state"] == "cancelled"
    assert not [j for j in jobs.values() if j["state"] in ("failed", "running", "pending")]
    assert run["progress"]["cancelled"] >= len(running)

    assert group_members(pgid) == []
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert_gap_free(store, run_id, len(spool_events(rd)))


def test_broker_outage_while_snakemake_runs_loses_nothing(
    settings: Settings,
    store: Store,
    bus: Bus,
    consumer: Consumer,
    start_runner: Callable[..., Runner],
    amqp_url: str,
) -> None:
    proxy = TcpProxy.for_url(amqp_url)
    try:
        runner = start_runner(settings.with_(amqp_url=proxy.url_for(amqp_url)))
        run_id = new_run_id("outage")
        submit(store, bus, run_id, {"samples": 4, "sleep": 0.5})
        rd = run_dir(settings.runs_dir, run_id)
        wait_for(rd.pid.exists, 60, "Snakemake to start")
        proxy.cut()
        pid = int(rd.pid.read_text())
        wait_for(lambda: not group_members(pid), 90, "Snakemake to exit")
        state = wait_for(lambda: terminal_in_spool(rd), 30, "the runner to record the end")
        assert state == "COMPLETE"
        stuck = store.get_run(run_id)
        assert stuck is not None and stuck["last_seq"] < len(spool_events(rd))
        proxy.restore()

        run = wait_finished(store, rd)
        assert run["state"] == "COMPLETE"
        events = assert_gap_free(store, run_id, len(spool_events(rd)))
        assert [e["data"]["state"] for e in events if e["type"] == "run_state"] == [
            "INITIALIZING",
            "RUNNING",
            "COMPLETE",
        ]
        assert {j["state"] for j in all_jobs(store, run_id)} == {"done"}
        assert run["progress"]["done"] == run["progress"]["total"] == 10
        wait_for(lambda: bus.queue_depth("runs") == 0, 60, "the command to be acknowledged")
        wait_for(lambda: runner.active_runs() == [], 60, "the runner to let the run go")
        assert len(spool_events(rd)) == len(events), "the redelivered command must not rerun"
    finally:
        proxy.close()


def test_replaying_a_finished_run_in_shuffled_order_changes_nothing(
    settings: Settings, store: Store, bus: Bus, consumer: Consumer, runner: Runner
) -> None:
    run_id = new_run_id("replay")
    submit(store, bus, run_id, {"samples": 2, "sleep": 0})
    rd = run_dir(settings.runs_dir, run_id)
    run = wait_finished(store, rd)
    assert run["state"] == "COMPLETE"
    before = snapshot(store, run_id)

    events = store.list_events(run_id, limit=100_000)
    random.Random(7).shuffle(events)
    bus.publish_events(
        [Outgoing(envelope.routing_key(e), e, envelope.message_id(e)) for e in events]
    )
    wait_for(lambda: bus.queue_depth("persist") == 0, 30, "the replay to be consumed")
    time.sleep(1.0)  # the last batch may still be in the consumer's hands
    assert snapshot(store, run_id) == before


def test_a_cancel_for_a_queued_run_ends_it_canceled_without_starting(
    settings: Settings, store: Store, bus: Bus, consumer: Consumer, runner: Runner
) -> None:
    run_id = new_run_id("precancel")
    bus.send_control(messages.cancel(run_id))  # no runner owns it yet: remembered
    wait_for(lambda: run_id in runner._cancelled, 30, "the runner to hear the cancel")
    submit(store, bus, run_id, {"samples": 2})
    rd = run_dir(settings.runs_dir, run_id)
    run = wait_finished(store, rd)
    assert run["state"] == "CANCELED"
    assert not rd.pid.exists() and not (rd.work / "samples").exists()
    assert all_jobs(store, run_id) == []


def crashed_run(settings: Settings, store: Store, run_id: str, runner_id: str) -> RunDir:
    """What a runner that died mid-run leaves: its claim in the store, its identity in the data
    dir, a spool that says RUNNING."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "runner-0.id").write_text(runner_id + "\n")
    run = projection.new_run(run_id)
    run.update(workflow="demo", config={}, submitted_at=envelope.now_iso())
    store.create_run(run)
    claim = store.claim_run(run_id, runner_id, host="h", now=time.time())
    rd = run_dir(settings.runs_dir, run_id).create()
    with open(rd.spool, "w") as f:
        for state in ("INITIALIZING", "RUNNING"):
            event = envelope.run_state(run_id, state)
            event["data"]["epoch"] = claim.claim.epoch
            f.write(envelope.dumps(event) + "\n")
        f.write(envelope.dumps(envelope.make(run_id, "workflow_started", data={})) + "\n")
    return rd


@pytest.mark.parametrize(
    ("left", "state", "reason"),
    [
        ("running", "COMPLETE", ""),
        ("finished", "COMPLETE", ""),
        ("failed", "EXECUTOR_ERROR", "exited with code 3"),
        ("nothing", "SYSTEM_ERROR", "left no exit status"),
    ],
)
def test_a_restarted_runner_adopts_or_judges_what_its_crash_left(
    settings: Settings, store: Store, consumer: Consumer, start_runner, left, state, reason
) -> None:
    """The runner died mid-run and starts again with the same identity: a Snakemake still
    running is adopted until it ends; one that ended meanwhile gets the state its exit code
    says; one that vanished without a status is a SYSTEM_ERROR. Never executed again."""
    run_id = new_run_id(f"crash-{left}")
    rd = crashed_run(settings, store, run_id, "crashed-runner")
    leftover = None
    if left == "running":  # still under its exit recorder, as the runner starts it
        code = "import time; time.sleep(3)"
        leftover = subprocess.Popen(
            [sys.executable, "-m", "runner.exit_status", str(rd.exit_status), "--",
             sys.executable, "-c", code, "snakemake", "--logger-snakedeck-run-id", run_id],
            start_new_session=True, cwd=REPO,
        )  # fmt: skip
        rd.pid.write_text(f"{leftover.pid}\n")
    elif left in ("finished", "failed"):
        exit_status.write(rd.exit_status, 0 if left == "finished" else 3)
    try:
        runner = start_runner()
        assert runner.runner_id == "crashed-runner"
        run = wait_finished(store, rd, timeout=60)
        assert run["state"] == state, run
        assert reason in run["state_reason"]
        assert not (rd.work / "samples").exists()  # judged, never executed again
        events = assert_gap_free(store, run_id, len(spool_events(rd)))
        states = [e["data"]["state"] for e in events if e["type"] == "run_state"]
        assert states == ["INITIALIZING", "RUNNING", state]  # an adopted one was also sampled
        # The claim is kept and marked finished once every event is out and the artefacts
        # are shipped: just after the last event is stored, not with it.
        wait_for(lambda: store.get_claim(run_id).finished, 30, "the claim to be finished")
    finally:
        if leftover is not None and leftover.poll() is None:
            leftover.kill()
            leftover.wait()
