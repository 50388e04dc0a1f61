"""The service's run artefacts (logs, outputs, report), resume and ETA, on the real SQLite
store and the in-process bus: what a reader of a run on another host gets, from the store
only."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest

from snakedeck import envelope, projection
from snakedeck.auth import LOCAL_ADMIN, Principal, Role
from snakedeck.bus.local import LocalBus
from snakedeck.service import Conflict, Invalid, NotFound, Service
from snakedeck.settings import Settings
from snakedeck.store.artefacts import REPORT_PATH, job_log_stream
from snakedeck.store.claims import RunnerBeat
from snakedeck.store.sqlite import SqliteStore
from tests.support.services import unique_namespace

ADMIN = LOCAL_ADMIN
ADA = Principal("ada", Role.SUBMIT)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "gateway-host",
        workflows_dir=REPO / "workflows",
        namespace=unique_namespace(),
    )


def events(run_id: str, *specs: tuple[str, dict[str, Any]], start: int = 1) -> list:
    """Events ten seconds apart."""
    out = []
    for seq, (kind, data) in enumerate(specs, start=start):
        source = "runner" if kind in envelope.RUNNER_TYPES else "snakemake"
        ts = envelope.iso_from_epoch(1_780_000_000 + 10 * seq)
        out.append(envelope.make(run_id, kind, data=data, source=source, seq=seq, ts=ts))
    return out


def test_a_job_log_is_read_from_the_store_never_from_a_disk(
    service: Service, store: SqliteStore, settings: Settings
) -> None:
    run_id = service.submit_run("demo", {}, by=ADMIN)["run_id"]
    log = ["logs/a.log", "logs/never.log", "/elsewhere/secret.log"]
    store.persist(events(run_id, ("job_info", {"jobid": 1, "rule_name": "make", "log": log})))
    store.append_log(run_id, job_log_stream(1, 1, "logs/a.log"), 0, b"x" * 100 + b"END\n", now=1)
    # A file where the old code looked would not be served: nothing reads the disk any more.
    work = settings.runs_dir / run_id / "work" / "logs"
    work.mkdir(parents=True)
    (work / "never.log").write_text("on the gateway's disk")
    answer = service.job_log(run_id, "1", max_bytes=20)
    by_path = {e["path"]: e for e in answer["logs"]}
    assert set(by_path) == {"logs/a.log", "logs/never.log"}  # no server path in the answer
    assert by_path["logs/a.log"]["content"].endswith("END\n")
    assert by_path["logs/a.log"]["truncated"] and len(by_path["logs/a.log"]["content"]) == 20
    assert by_path["logs/a.log"]["stream"] == "job/1/1/logs/a.log"
    assert by_path["logs/never.log"]["exists"] is False
    assert by_path["logs/never.log"]["content"] == ""
    with pytest.raises(NotFound):
        service.job_log(run_id, "99")
    with pytest.raises(NotFound, match="no attempt 2"):
        service.job_log(run_id, "1", attempt=2)


def test_the_run_log_reads_from_an_offset_in_whole_characters(
    service: Service, store: SqliteStore
) -> None:
    run_id = service.submit_run("demo", {}, by=ADMIN)["run_id"]
    empty = service.run_log(run_id)
    assert (empty["text"], empty["next_offset"], empty["size"]) == ("", 0, 0)
    data = "Building DAG of jobs...\nrésumé ✓\n".encode()
    store.append_log(run_id, "snakemake", 0, data, now=1)
    whole = service.run_log(run_id)
    assert whole["text"] == data.decode() and whole["next_offset"] == len(data)
    cut = data.index("é".encode()) + 1  # a read that would end inside "é"
    first = service.run_log(run_id, limit=cut)
    assert first["next_offset"] == cut - 1 and "é" not in first["text"]
    rest = service.run_log(run_id, offset=first["next_offset"])
    assert first["text"] + rest["text"] == data.decode()
    assert service.run_log(run_id, tail=8)["text"] == "mé ✓\n"
    assert service.run_log(run_id, tail=6)["text"] == " ✓\n"  # no half "é" at the start
    for bad in ({"offset": -1}, {"limit": 0}, {"tail": 0}):
        with pytest.raises(Invalid):
            service.run_log(run_id, **bad)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="no log stream"):
        service.run_log(run_id, stream="../../etc")
    with pytest.raises(NotFound):
        service.run_log(run_id, stream="job/9/1/x.log")


def test_outputs_are_streamed_from_the_store_by_key(service: Service, store: SqliteStore) -> None:
    run_id = service.submit_run("demo", {}, by=ADMIN)["run_id"]
    content = b"sample\tlines\ns1\t5\n"
    blob = store.put_blob(io.BytesIO(content))
    store.put_output({"run_id": run_id, "path": "summary.tsv", "kind": "table",
                      "size": blob.size, "sha256": blob.sha256, "stored_at": "t"})  # fmt: skip
    listing = service.list_outputs(run_id)
    assert [o["path"] for o in listing["outputs"]] == ["summary.tsv"] and listing["report"] is None
    doc, stream = service.open_output(run_id, "summary.tsv")
    with stream:
        assert stream.read() == content and doc["sha256"] == blob.sha256
    for missing in ("nope.tsv", "../summary.tsv", "/etc/passwd"):
        with pytest.raises(NotFound):
            service.open_output(run_id, missing)
    with pytest.raises(NotFound, match="only once a run is COMPLETE"):
        service.open_report(run_id)
    store.put_output({"run_id": run_id, "path": REPORT_PATH, "kind": "html", "report": True,
                      "size": blob.size, "sha256": blob.sha256, "stored_at": "t"})  # fmt: skip
    assert service.list_outputs(run_id)["report"]["path"] == REPORT_PATH
    assert service.open_report(run_id)[0]["path"] == REPORT_PATH


def ended_run(service: Service, store: SqliteStore, state: str, runner: str = "r-a") -> str:
    run_id = service.submit_run("demo", {}, by=ADA)["run_id"]
    store.persist(
        events(
            run_id,
            ("run_state", {"state": "INITIALIZING", "runner": runner, "host": "h1"}),
            ("run_state", {"state": "RUNNING"}),
            ("run_state", {"state": state}),
        )
    )
    return run_id


def beat(store: SqliteStore, runner: str, seen: float) -> None:
    store.record_beat(RunnerBeat(runner, "h1", seen, seen - 100))


def test_a_failed_run_is_resumed_on_the_runner_holding_its_directory(
    service: Service, store: SqliteStore, bus: LocalBus
) -> None:
    run_id = ended_run(service, store, "EXECUTOR_ERROR")
    store.update_run(run_id, {"cancel_requested": True})
    beat(store, "r-a", time.time())
    got: list[dict] = []
    sub = bus.consume_runner("r-a", lambda ds: [got.append(d.json()) or d.ack() for d in ds],
                             prefetch=1)  # fmt: skip
    try:
        answer = service.resume_run(run_id, by=ADA)
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.stop()
    assert answer == {"run_id": run_id, "state": "QUEUED", "attempt": 2, "runner": "r-a"}
    assert got == [{"action": "resume", "run_id": run_id, "attempt": 2}]
    run = service.get_run(run_id)
    assert run["state"] == "QUEUED" and run["attempt"] == 2 and not run.get("cancel_requested")
    assert [(a["attempt"], a["state"]) for a in run["attempts"]] == [
        (1, "EXECUTOR_ERROR"), (2, "QUEUED"),
    ]  # fmt: skip
    assert run["attempts"][1]["requested_by"] == "ada"
    with pytest.raises(Conflict, match="QUEUED"):
        service.resume_run(run_id, by=ADMIN)  # the resume is under way


def test_resume_is_refused_with_the_reason(service: Service, store: SqliteStore) -> None:
    with pytest.raises(Conflict, match="nothing left to do"):
        service.resume_run(ended_run(service, store, "COMPLETE"), by=ADMIN)
    gone = ended_run(service, store, "CANCELED", runner="r-gone")
    beat(store, "r-gone", time.time() - 3600)
    with pytest.raises(Conflict, match=r"runner r-gone \(host h1\), which is not running"):
        service.resume_run(gone, by=ADMIN)
    unknown = ended_run(service, store, "SYSTEM_ERROR", runner="r-never-seen")
    with pytest.raises(Conflict, match="no longer known"):
        service.resume_run(unknown, by=ADMIN)
    queued = service.submit_run("demo", {}, by=ADMIN)["run_id"]
    service._fail_queued(queued, "no broker")
    with pytest.raises(Conflict, match="never reached a runner"):
        service.resume_run(queued, by=ADMIN)
    lost = ended_run(service, store, "RUNNING")
    beat(store, "r-a", time.time())
    store.declare_end(lost, projection.RunState.SYSTEM_ERROR, "lost", by="reaper", fence=2,
                      at="t")  # fmt: skip
    with pytest.raises(Conflict, match="declared lost"):
        service.resume_run(lost, by=ADMIN)
    running = ended_run(service, store, "RUNNING")
    with pytest.raises(Conflict, match="ended failed or cancelled"):
        service.resume_run(running, by=ADMIN)


def test_an_active_run_has_an_estimate_with_its_basis(service: Service, store: SqliteStore) -> None:
    old = service.submit_run("demo", {}, by=ADMIN)["run_id"]
    store.persist(
        events(
            old,
            ("run_state", {"state": "RUNNING"}),
            ("job_info", {"jobid": 1, "rule_name": "make_sample"}),
            ("job_finished", {"job_id": 1}),
            ("run_state", {"state": "COMPLETE"}),
        )
    )
    assert service.get_run(old)["rule_durations"]["make_sample"]["count"] == 1
    assert "eta" not in service.get_run(old)
    new = service.submit_run("demo", {}, by=ADMIN)["run_id"]
    store.persist(
        events(
            new,
            ("run_state", {"state": "RUNNING"}),
            ("resources_info", {"cores": 2}),
            ("run_info", {"stats": {"make_sample": 4, "total": 4}}),
        )
    )
    run = service.get_run(new)
    assert run["eta"]["seconds_remaining"] == 20.0  # 4 jobs of 10 s, 2 at a time
    assert "1 earlier COMPLETE run(s) of demo" in run["eta"]["basis"]
    assert "2 at a time" in run["eta"]["basis"]


def test_a_runner_that_no_longer_has_the_directory_ends_the_resumed_attempt(
    service: Service, store: SqliteStore, bus: LocalBus, settings: Settings, tmp_path: Path
) -> None:
    """The runner identity came back (same DATA_DIR id) but the run's directory is gone: the
    attempt ends SYSTEM_ERROR with the reason instead of waiting QUEUED for ever."""
    from runner.service import Runner

    runner_settings = settings.with_(data_dir=tmp_path / "runner-host")
    runner_settings.data_dir.mkdir()
    (runner_settings.data_dir / "runner-0.id").write_text("r-a\n")
    run_id = ended_run(service, store, "EXECUTOR_ERROR")
    beat(store, "r-a", time.time())
    runner = Runner(runner_settings, LocalBus(settings.namespace), store)
    runner.start()
    try:
        assert service.resume_run(run_id, by=ADMIN)["attempt"] == 2
        deadline = time.monotonic() + 10
        while service.get_run(run_id)["state"] == "QUEUED" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    run = service.get_run(run_id)
    assert run["state"] == "SYSTEM_ERROR" and run["attempt"] == 2
    assert "does not hold the run's work directory" in run["state_reason"]
    assert store.get_claim(run_id) is None
