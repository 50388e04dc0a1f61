"""The service layer's rules, with the real SQLite store, the in-process bus and the real
workflow registry: what a submitter, a canceller or a log reader would check."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from snakedeck import envelope
from snakedeck.auth import LOCAL_ADMIN, Principal, Role
from snakedeck.bus.amqp import AmqpBus
from snakedeck.paging import MAX_PAGE_SIZE
from snakedeck.service import Conflict, Invalid, NotFound, Service, Unavailable, new_run_id
from snakedeck.settings import Settings
from snakedeck.store.sqlite import SqliteStore
from snakedeck.workflows import WorkflowRegistry

REPO = Path(__file__).resolve().parents[2]
ADMIN = LOCAL_ADMIN
ANN = Principal("ann", Role.SUBMIT)


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
    blob = service.put_content([b"one more line\n"], by=ANN)
    extra = service.register_file(blob, name="extra.txt", by=ANN)
    created = service.submit_run(
        "demo", {"samples": 2}, {"extra": extra["file_id"]}, {"team": "a"}, by=ANN
    )
    assert created["state"] == "QUEUED"
    run = service.get_run(created["run_id"])
    assert run["workflow"] == "demo" and run["workflow_version"] == "1.0.0"
    assert run["config"] == {"samples": 2}
    assert run["tags"] == {"team": "a"} and run["user"] == "ann"
    assert run["inputs"] == {
        "extra": {
            "file_id": extra["file_id"],
            "sha256": blob.sha256,
            "name": "extra.txt",
            "kind": "text",
            "format": "txt",
            "size": 14,
        }
    }
    assert run["file_ids"] == [extra["file_id"]]
    assert run["submitted_at"]
    assert not any(k.startswith("_") for k in run)
    (command,) = received(lambda h: bus.consume_runs(h, prefetch=1), 1)
    assert command["run_id"] == created["run_id"]
    assert command["workflow"] == "demo" and command["config"] == {"samples": 2}
    assert command["inputs"] == run["inputs"]


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
        service.submit_run(workflow, config, {}, tags, by=ADMIN)
    assert field in [e["field"] for e in info.value.errors]
    assert service.list_runs()["total"] == 0


def test_an_unreachable_broker_leaves_a_system_error_run(settings: Settings, store) -> None:
    dead_bus = AmqpBus("amqp://guest:guest@127.0.0.1:1/", settings.namespace, connect_timeout=1)
    service = Service(settings, store, dead_bus, WorkflowRegistry(settings.workflows_dir))
    with pytest.raises(Unavailable) as info:
        service.submit_run("demo", {}, by=ADMIN)
    (run,) = service.list_runs()["runs"]
    assert run["run_id"] in info.value.detail
    assert run["state"] == "SYSTEM_ERROR"
    assert "message broker" in run["state_reason"]


def test_run_ids_are_valid_and_sort_by_time() -> None:
    ids = [new_run_id(1_700_000_000 + i) for i in range(50)]
    assert all(envelope.is_valid_run_id(i) for i in ids)
    assert ids == sorted(ids)
    assert len({new_run_id(1_700_000_000) for _ in range(200)}) == 200


def test_cancel_a_queued_run_records_the_request_and_tells_runners(service: Service, bus) -> None:
    run_id = service.submit_run("demo", {}, by=ADMIN)["run_id"]
    ready = threading.Event()
    got: list[dict] = []

    def handler(deliveries):
        got.extend(d.json() for d in deliveries)
        ready.set()

    sub = bus.consume_control(handler)
    answer = service.cancel_run(run_id, by=Principal("bob", Role.ADMIN))
    assert answer == {"run_id": run_id, "state": "QUEUED", "cancel_requested": True}
    assert ready.wait(10)
    sub.stop()
    assert got == [{"action": "cancel", "run_id": run_id}]
    run = service.get_run(run_id)
    assert run["cancel_requested"] is True and run["cancel_requested_by"] == "bob"


def test_a_finished_run_cannot_be_cancelled(service: Service, store: SqliteStore) -> None:
    run_id = service.submit_run("demo", {}, by=ADMIN)["run_id"]
    done = envelope.run_state(run_id, "COMPLETE", exit_code=0)
    done["seq"] = 1
    store.persist([done])
    with pytest.raises(Conflict, match="COMPLETE"):
        service.cancel_run(run_id, by=ADMIN)
    assert not service.get_run(run_id).get("cancel_requested")


def test_rerun_copies_the_run_and_points_back(service: Service) -> None:
    old = service.submit_run("demo", {"samples": 3}, None, {"k": "v"}, by=ADMIN)["run_id"]
    new = service.rerun_run(old, by=ADMIN)["run_id"]
    assert new != old
    run = service.get_run(new)
    assert run["rerun_of"] == old
    assert run["config"] == {"samples": 3} and run["tags"] == {"k": "v"}
    with pytest.raises(NotFound):
        service.rerun_run("nonexistent", by=ADMIN)


def test_list_validation(service: Service) -> None:
    with pytest.raises(Invalid) as info:
        service.list_runs(page_size=MAX_PAGE_SIZE + 1)
    assert info.value.errors[0]["field"] == "page_size"
    assert service.list_runs(page_size=MAX_PAGE_SIZE)["total"] == 0
    with pytest.raises(Invalid) as info:
        service.list_runs(state="DONE")
    assert info.value.errors[0]["field"] == "state"
    with pytest.raises(Invalid) as info:
        service.list_runs(page_token="garbage")
    assert info.value.errors[0]["field"] == "page_token"
    with pytest.raises(NotFound):
        service.get_run("../etc")
