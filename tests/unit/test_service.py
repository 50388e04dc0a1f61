"""The service layer's rules, with the real SQLite store, the in-process bus and the real
workflow registry: what a submitter, a canceller or a log reader would check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from snakedeck import envelope
from snakedeck.bus.amqp import AmqpBus
from snakedeck.bus.local import LocalBus
from snakedeck.service import Conflict, Invalid, NotFound, Service, Unavailable, new_run_id
from snakedeck.settings import Settings
from snakedeck.store.sqlite import SqliteStore
from snakedeck.workflows import WorkflowRegistry
from tests.support.services import unique_namespace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", workflows_dir=REPO / "workflows", namespace=unique_namespace()
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[SqliteStore]:
    settings.data_dir.mkdir(parents=True)
    store = SqliteStore(settings.sqlite_path)
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture
def bus(settings: Settings) -> Iterator[LocalBus]:
    bus = LocalBus(settings.namespace)
    yield bus
    bus.close()


@pytest.fixture
def service(settings: Settings, store: SqliteStore, bus: LocalBus) -> Service:
    return Service(settings, store, bus, WorkflowRegistry(settings.workflows_dir))


def received(subscribe, count: int) -> list[dict]:
    """Collect ``count`` messages from a bus subscription (the runner's or a runner's view)."""
    got: list[dict] = []
    done = threading.Event()

    def handler(deliveries):
        for d in deliveries:
            got.append(d.json())
            d.ack()
        if len(got) >= count:
            done.set()

    sub = subscribe(handler)
    assert done.wait(10), f"expected {count} message(s), got {got}"
    sub.stop()
    return got


def test_submit_stores_a_queued_run_and_enqueues_the_command(service: Service, bus) -> None:
    created = service.submit_run(
        "demo", {"samples": 2}, [{"file_id": "f1", "name": "extra"}], {"team": "a"}, "ann"
    )
    assert created["state"] == "QUEUED"
    run = service.get_run(created["run_id"])
    assert run["workflow"] == "demo" and run["workflow_version"] == "1.0.0"
    assert run["config"] == {"samples": 2}
    assert run["tags"] == {"team": "a"} and run["user"] == "ann"
    assert run["inputs"] == [{"file_id": "f1", "name": "extra"}]
    assert run["submitted_at"]
    assert not any(k.startswith("_") for k in run)
    (command,) = received(lambda h: bus.consume_runs(h, prefetch=1), 1)
    assert command["run_id"] == created["run_id"]
    assert command["workflow"] == "demo" and command["config"] == {"samples": 2}


@pytest.mark.parametrize(
    ("workflow", "config", "tags", "field"),
    [
        ("no-such-workflow", {}, {}, "workflow"),
        ("demo", {"samples": "six"}, {}, "config.samples"),
        ("demo", {"bogus": 1}, {}, "config.bogus"),
        ("demo", {}, {"bad key!": "x"}, "tags.bad key!"),
    ],
)
def test_bad_submissions_name_the_field_and_store_nothing(
    service: Service, store: SqliteStore, workflow, config, tags, field
) -> None:
    with pytest.raises(Invalid) as info:
        service.submit_run(workflow, config, [], tags)
    assert field in [e["field"] for e in info.value.errors]
    assert service.list_runs()["total"] == 0


def test_an_unreachable_broker_leaves_a_system_error_run(settings: Settings, store) -> None:
    dead_bus = AmqpBus("amqp://guest:guest@127.0.0.1:1/", settings.namespace, connect_timeout=1)
    service = Service(settings, store, dead_bus, WorkflowRegistry(settings.workflows_dir))
    with pytest.raises(Unavailable) as info:
        service.submit_run("demo", {})
    (run,) = service.list_runs()["runs"]
    assert run["run_id"] in info.value.detail
    assert run["state"] == "SYSTEM_ERROR"
    assert "message bus" in run["state_reason"]


def test_run_ids_are_valid_and_sort_by_time() -> None:
    ids = [new_run_id(1_700_000_000 + i) for i in range(50)]
    assert all(envelope.is_valid_run_id(i) for i in ids)
    assert ids == sorted(ids)
    assert len({new_run_id(1_700_000_000) for _ in range(200)}) == 200


def test_cancel_a_queued_run_records_the_request_and_tells_runners(service: Service, bus) -> None:
    run_id = service.submit_run("demo", {})["run_id"]
    ready = threading.Event()
    got: list[dict] = []

    def handler(deliveries):
        got.extend(d.json() for d in deliveries)
        ready.set()

    sub = bus.consume_control(handler)
    answer = service.cancel_run(run_id, "bob")
    assert answer == {"run_id": run_id, "state": "QUEUED", "cancel_requested": True}
    assert ready.wait(10)
    sub.stop()
    assert got == [{"action": "cancel", "run_id": run_id}]
    run = service.get_run(run_id)
    assert run["cancel_requested"] is True and run["cancel_requested_by"] == "bob"


def test_a_finished_run_cannot_be_cancelled(service: Service, store: SqliteStore) -> None:
    run_id = service.submit_run("demo", {})["run_id"]
    done = envelope.run_state(run_id, "COMPLETE", exit_code=0)
    done["seq"] = 1
    store.persist([done])
    with pytest.raises(Conflict, match="COMPLETE"):
        service.cancel_run(run_id)
    assert not service.get_run(run_id).get("cancel_requested")


def test_rerun_copies_the_run_and_points_back(service: Service) -> None:
    old = service.submit_run("demo", {"samples": 3}, [], {"k": "v"})["run_id"]
    new = service.rerun_run(old)["run_id"]
    assert new != old
    run = service.get_run(new)
    assert run["rerun_of"] == old
    assert run["config"] == {"samples": 3} and run["tags"] == {"k": "v"}
    with pytest.raises(NotFound):
        service.rerun_run("nonexistent")


def test_job_log_serves_the_tail_of_files_inside_the_work_dir_only(
    service: Service, store: SqliteStore, settings: Settings, tmp_path: Path
) -> None:
    run_id = service.submit_run("demo", {})["run_id"]
    work = settings.runs_dir / run_id / "work"
    (work / "logs").mkdir(parents=True)
    (work / "logs" / "a.log").write_text("x" * 100 + "THE END\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (work / "logs" / "link.log").symlink_to(secret)
    info = envelope.make(
        run_id,
        "job_info",
        seq=1,
        data={
            "jobid": 1,
            "rule_name": "make_sample",
            "log": ["logs/a.log", "../../../../secret.txt", str(secret), "logs/link.log"],
        },
    )
    store.persist([info])
    log = service.job_log(run_id, "1", max_bytes=20)
    by_path = {e["path"]: e for e in log["logs"]}
    assert by_path["logs/a.log"]["content"].endswith("THE END\n")
    assert by_path["logs/a.log"]["truncated"] is True
    assert len(by_path["logs/a.log"]["content"]) == 20
    for outside in ("../../../../secret.txt", str(secret), "logs/link.log"):
        assert by_path[outside]["content"] == ""
        assert "outside" in by_path[outside]["error"]
    with pytest.raises(NotFound):
        service.job_log(run_id, "99")


def test_list_validation(service: Service) -> None:
    with pytest.raises(Invalid) as info:
        service.list_runs(page_size=501)
    assert info.value.errors[0]["field"] == "page_size"
    with pytest.raises(Invalid) as info:
        service.list_runs(state="DONE")
    assert info.value.errors[0]["field"] == "state"
    with pytest.raises(Invalid) as info:
        service.list_runs(page_token="garbage")
    assert info.value.errors[0]["field"] == "page_token"
    with pytest.raises(NotFound):
        service.get_run("../etc")
