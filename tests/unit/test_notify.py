"""Notifications without a broker: targets as a submitter writes them (and the mistakes named),
the documents and payloads sent, their signatures, and the notifier's delivery rules against a
real local HTTP receiver and a real SMTP sink, with the real SQLite store and in-process bus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consumer.notifier import Notifier
from snakedeck import envelope, notify
from snakedeck.auth import LOCAL_ADMIN
from snakedeck.bus.local import LocalBus
from snakedeck.notify import NotifyError, NotifyTarget
from snakedeck.service import Invalid, Service
from snakedeck.settings import Settings, SettingsError
from snakedeck.store.sqlite import SqliteStore
from snakedeck.workflows import WorkflowRegistry
from tests.support.receiver import Receiver, SmtpSink
from tests.support.services import unique_namespace
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
SECRET = "a-long-webhook-secret"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        workflows_dir=REPO / "workflows",
        namespace=unique_namespace(),
        fetch_allow_private=True,  # the receiver is on 127.0.0.1
        notify_timeout=5.0,
    )


@pytest.fixture
def bus(settings: Settings) -> Iterator[LocalBus]:
    bus = LocalBus(settings.namespace)
    yield bus
    bus.delete_topology()
    bus.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def service_for(settings: Settings, store: SqliteStore, bus: LocalBus) -> Service:
    return Service(settings, store, bus, WorkflowRegistry(settings.workflows_dir))


def state_event(run_id: str, seq: int, state: str) -> dict[str, Any]:
    event = envelope.run_state(run_id, state)
    event["seq"] = seq
    return event


# -- targets --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ([{"url": "ftp://example.org/x"}], "notify.0.url", "http(s)"),
        ([{"url": "mailto:a@example.org"}], "notify.0", "email target"),
        ([{"url": "https://example.org", "format": "email"}], "notify.0", "mailto"),
        ([{"url": "https://example.org", "events": ["finished"]}], "notify.0.events.0", "state"),
        ([{"url": "https://example.org", "secret": "short"}], "notify.0.secret", "8"),
        ([{"url": "https://example.org", "token": "x"}], "notify.0.token", "Extra"),
        ([{"url": "https://example.org"}] * 11, "notify", "at most 10"),
    ],
)
def test_a_bad_target_is_refused_naming_its_field(raw: Any, field: str, words: str) -> None:
    with pytest.raises(NotifyError) as caught:
        notify.parse_targets(raw)
    assert caught.value.field == field
    assert words in caught.value.message


def test_the_public_view_of_a_target_never_shows_its_secret_or_url_credentials() -> None:
    slack, hook = notify.parse_targets(
        [
            {"url": "https://hooks.example.org/services/T0/B0/XYZ", "format": "slack"},
            {"url": "https://user:pw@example.org/hook?token=abc", "secret": SECRET},
        ]
    )
    assert slack.public()["url"] == "https://hooks.example.org/…"
    shown = hook.public()
    assert shown["url"] == "https://example.org/hook" and shown["signed"] is True
    assert SECRET not in json.dumps(shown) and SECRET not in repr(hook)
    assert slack.target_id != hook.target_id and len(hook.target_id) == 16


def test_a_tag_names_targets_as_json_or_as_a_bare_url() -> None:
    (bare,) = notify.targets_from_tag("https://example.org/hook")
    assert bare.format == "json" and bare.secret is None
    listed = notify.targets_from_tag(json.dumps([{"url": "https://a.example", "secret": SECRET}]))
    assert listed[0].secret == SECRET
    (one,) = notify.targets_from_tag('{"url": "https://b.example", "events": ["job_failed"]}')
    assert one.events == ["job_failed"]
    with pytest.raises(NotifyError, match=r"tags\.snakedeck\.notify"):
        notify.targets_from_tag("[not json")


def test_server_default_targets_come_from_the_settings_and_are_checked_at_start() -> None:
    raw = json.dumps([{"url": "https://ops.example/hook", "secret": SECRET}])
    settings = Settings.from_env({"SNAKEDECK_NOTIFY_TARGETS": raw})
    assert [t.url for t in notify.default_targets(settings)] == ["https://ops.example/hook"]
    with pytest.raises(SettingsError, match="NOTIFY_TARGETS"):
        Settings.from_env({"SNAKEDECK_NOTIFY_TARGETS": "{nope"})
    bad = Settings(notify_targets='[{"url": "gopher://x"}]')
    with pytest.raises(SettingsError, match=r"SNAKEDECK_NOTIFY_TARGETS\.0\.url"):
        notify.default_targets(bad)
    assert SECRET not in repr(settings)


# -- submit ----------------------------------------------------------------------------------------
def test_submit_refuses_private_addresses_unless_the_fetch_setting_allows_them(
    settings: Settings, store: SqliteStore, bus: LocalBus
) -> None:
    strict = service_for(settings.with_(fetch_allow_private=False), store, bus)
    for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://[::1]/hook"):
        with pytest.raises(Invalid) as caught:
            strict.submit_run("demo", {}, notify=[{"url": url}], by=LOCAL_ADMIN)
        assert caught.value.errors[0]["field"] == "notify.0.url"
        assert "private, loopback or reserved" in caught.value.detail
    with pytest.raises(Invalid, match="SMTP"):
        mail = {"url": "mailto:a@example.org", "format": "email"}
        strict.submit_run("demo", {}, notify=[mail], by=LOCAL_ADMIN)
    lax = service_for(settings, store, bus)
    created = lax.submit_run("demo", {}, notify=[{"url": "http://127.0.0.1:9/h"}], by=LOCAL_ADMIN)
    assert store.notify_targets(created["run_id"])[0]["url"] == "http://127.0.0.1:9/h"


def test_the_notify_tag_becomes_targets_and_is_not_kept_as_a_tag(
    settings: Settings, store: SqliteStore, bus: LocalBus
) -> None:
    svc = service_for(settings, store, bus)
    value = json.dumps({"url": "http://127.0.0.1:9/h", "secret": SECRET})
    created = svc.submit_run(
        "demo", {}, tags={"project": "x", notify.NOTIFY_TAG: value}, by=LOCAL_ADMIN
    )
    run = svc.get_run(created["run_id"])
    assert run["tags"] == {"project": "x"}
    assert SECRET not in json.dumps(run)
    listed = svc.list_deliveries(created["run_id"])
    assert listed["targets"] == [NotifyTarget(url="http://127.0.0.1:9/h", secret=SECRET).public()]
    assert SECRET not in json.dumps(listed)
    assert svc.notify_targets_from_tag("http://127.0.0.1:9/x")[0].url == "http://127.0.0.1:9/x"
    with pytest.raises(Invalid) as caught:
        service_for(settings.with_(fetch_allow_private=False), store, bus).submit_run(
            "demo", {}, tags={notify.NOTIFY_TAG: "http://127.0.0.1:9/h"}, by=LOCAL_ADMIN
        )
    assert caught.value.errors[0]["field"] == "tags.snakedeck.notify.0.url"


def test_a_rerun_notifies_the_same_targets(
    settings: Settings, store: SqliteStore, bus: LocalBus
) -> None:
    svc = service_for(settings, store, bus)
    targets = [{"url": "http://127.0.0.1:9/h", "format": "json", "secret": SECRET}]
    first = svc.submit_run("demo", {}, notify=targets, by=LOCAL_ADMIN)["run_id"]
    again = svc.rerun_run(first, by=LOCAL_ADMIN)["run_id"]
    assert store.notify_targets(again) == store.notify_targets(first)


# -- what is sent ----------------------------------------------------------------------------------
def test_the_document_of_a_state_change_and_its_slack_payload() -> None:
    run = {"workflow": "demo", "workflow_version": "1.0.0", "tags": {"p": "x"}, "state": "RUNNING"}
    event = state_event("r1", 7, "EXECUTOR_ERROR")
    event["data"]["reason"] = "job 3 failed"
    doc = notify.notification(event, run)
    assert doc["idempotency_key"] == "r1:7" and doc["state"] == "EXECUTOR_ERROR"
    assert doc["event"] == "state" and doc["workflow"] == "demo" and doc["time"] == event["ts"]
    assert doc["reason"] == "job 3 failed"
    slack = notify.slack_payload(doc)
    assert set(slack) == {"text", "blocks"}
    assert slack["text"] == "demo run r1 is EXECUTOR_ERROR: job 3 failed"
    assert slack["blocks"][0] == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": f"*snakedeck* {slack['text']}"},
    }
    assert slack["blocks"][1]["type"] == "context"
    assert all(e["type"] == "mrkdwn" for e in slack["blocks"][1]["elements"])


def test_a_signature_is_the_hmac_of_the_exact_body() -> None:
    body = notify.body_bytes({"run_id": "r1", "state": "COMPLETE"})
    signature = notify.sign(body, SECRET)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert notify.verify(body, SECRET, signature)
    assert not notify.verify(body + b" ", SECRET, signature)
    assert not notify.verify(body, SECRET + "x", signature)


# -- the notifier ----------------------------------------------------------------------------------
def make_run(store: SqliteStore, run_id: str, targets: list[dict[str, Any]]) -> None:
    store.create_run({"run_id": run_id, "state": "QUEUED", "workflow": "demo", "tags": {}})
    store.save_notify_targets(run_id, targets)


def test_a_state_change_is_retried_on_500_and_the_log_shows_every_attempt(
    settings: Settings, store: SqliteStore, bus: LocalBus
) -> None:
    with Receiver(fail_first=2) as receiver:
        make_run(store, "r1", [{"url": receiver.url(), "secret": SECRET}])
        notifier = Notifier(settings, store, bus)
        assert notifier.notify(state_event("r1", 2, "RUNNING"))
    assert [r.status for r in receiver.requests] == [500, 500, 204]
    assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {"r1:2"}
    last = receiver.requests[-1]
    assert notify.verify(last.body, SECRET, last.headers["X-Snakedeck-Signature"])
    assert last.json()["state"] == "RUNNING"
    log = store.list_deliveries("r1").items
    assert [(d["attempt"], d["outcome"], d["status"]) for d in log] == [
        (1, "failed", 500),
        (2, "failed", 500),
        (3, "delivered", 204),
    ]
    assert all(SECRET not in json.dumps(d) for d in log)


def test_a_redelivered_event_is_not_sent_again_and_a_4xx_is_final(
    settings: Settings, store: SqliteStore, bus: LocalBus, receiver: Receiver
) -> None:
    make_run(store, "r1", [{"url": receiver.url(), "secret": SECRET}])
    notifier = Notifier(settings, store, bus)
    event = state_event("r1", 3, "COMPLETE")
    assert notifier.notify(event)
    assert notifier.notify(event, redelivered=True)  # a copy the broker sent again
    assert len(receiver.requests) == 1
    receiver.fail_first, receiver.fail_status = 99, 404
    assert notifier.notify(state_event("r1", 4, "COMPLETE"))
    assert len(receiver.requests) == 2  # not retried
    last = store.list_deliveries("r1").items[-1]
    assert (last["outcome"], last["status"], last["attempt"]) == ("gave_up", 404, 1)


def test_the_notifier_gives_up_after_the_last_attempt(
    settings: Settings, store: SqliteStore, bus: LocalBus
) -> None:
    with Receiver(fail_first=99) as receiver:
        make_run(store, "r1", [{"url": receiver.url()}])
        notifier = Notifier(settings.with_(notify_max_attempts=3), store, bus)
        assert notifier.notify(state_event("r1", 2, "RUNNING"))
    assert len(receiver.requests) == 3
    assert [d["outcome"] for d in store.list_deliveries("r1").items] == [
        "failed",
        "failed",
        "gave_up",
    ]
    assert "X-Snakedeck-Signature" not in receiver.requests[0].headers  # no secret: unsigned


def test_a_receiver_that_does_not_answer_in_time_is_tried_again_with_the_same_key(
    settings: Settings, store: SqliteStore, bus: LocalBus
) -> None:
    with Receiver(stall_first=2.0) as receiver:
        make_run(store, "r1", [{"url": receiver.url(), "secret": SECRET}])
        notifier = Notifier(settings.with_(notify_timeout=0.5), store, bus)
        assert notifier.notify(state_event("r1", 2, "RUNNING"))
        wait_for(lambda: len(receiver.requests) == 2, 10, "the stalled request to end")
    log = store.list_deliveries("r1").items
    assert [(d["outcome"], d["status"]) for d in log] == [("failed", None), ("delivered", 204)]
    assert "no answer within 0.5 s" in log[0]["error"]
    # The receiver got both: the key is what lets it keep one.
    assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {"r1:2"}


def test_a_notifier_stopped_between_retries_leaves_the_message_for_the_next_one(
    settings: Settings, store: SqliteStore, bus: LocalBus
) -> None:
    with Receiver(fail_first=10_000) as receiver:
        make_run(store, "r1", [{"url": receiver.url(), "secret": SECRET}])
        first = Notifier(settings.with_(notify_max_attempts=50), store, bus)
        first.start()
        bus.publish_events([envelope_out(state_event("r1", 2, "RUNNING"))])
        wait_for(lambda: len(receiver.requests) >= 2, 20, "two failed attempts")
        first.stop()
        assert bus.queue_depth("notify") == 1  # requeued, not acknowledged
        tried = len(receiver.requests)
        receiver.fail_first = 0
        second = Notifier(settings.with_(notify_max_attempts=50), store, bus)
        second.start()
        try:
            wait_for(lambda: receiver.accepted(), 20, "the delivery")
            wait_for(lambda: bus.queue_depth("notify") == 0, 10, "the acknowledgement")
        finally:
            second.stop()
    assert len(receiver.accepted()) == 1
    log = store.list_deliveries("r1").items
    assert [d["attempt"] for d in log] == list(range(1, tried + 2))
    assert log[-1]["outcome"] == "delivered" and log[-1]["redelivered"] is True


def test_a_url_that_turns_private_after_submit_is_refused_at_delivery(
    settings: Settings, store: SqliteStore, bus: LocalBus, receiver: Receiver
) -> None:
    make_run(store, "r1", [{"url": receiver.url()}])
    notifier = Notifier(settings.with_(fetch_allow_private=False), store, bus)
    assert notifier.notify(state_event("r1", 2, "RUNNING"))
    assert receiver.requests == []
    (entry,) = store.list_deliveries("r1").items
    assert entry["outcome"] == "gave_up" and "private" in entry["error"]


def test_job_failures_go_only_to_targets_that_asked_for_them(
    settings: Settings, store: SqliteStore, bus: LocalBus, receiver: Receiver
) -> None:
    make_run(
        store,
        "r1",
        [
            {"url": receiver.url("/states")},
            {"url": receiver.url("/jobs"), "events": ["job_failed"]},
        ],
    )
    notifier = Notifier(settings, store, bus)
    failed = {"v": 1, "run_id": "r1", "seq": 9, "type": "job_error", "ts": envelope.now_iso()}
    failed |= {"source": "snakemake", "level": "error", "msg": "", "data": {"jobid": 4}}
    failed["data"]["rule_name"] = "count"
    assert notifier.notify(failed)  # type: ignore[arg-type]
    assert notifier.notify(state_event("r1", 10, "EXECUTOR_ERROR"))
    assert [r.path for r in receiver.requests] == ["/jobs", "/states"]
    job = receiver.requests[0].json()
    assert job["event"] == "job_failed" and job["job"] == {
        "jobid": 4,
        "rule": "count",
        "wildcards": None,
    }
    assert receiver.requests[0].headers["X-Snakedeck-Event"] == "job_failed"


def test_server_defaults_and_slack_targets_through_the_in_process_bus(
    settings: Settings, store: SqliteStore, bus: LocalBus, receiver: Receiver
) -> None:
    defaults = json.dumps([{"url": receiver.url("/ops"), "secret": SECRET}])
    settings = settings.with_(notify_targets=defaults)
    make_run(store, "r1", [{"url": receiver.url("/slack"), "format": "slack"}])
    notifier = Notifier(settings, store, bus)
    notifier.start()
    try:
        assert notifier.wait_ready()
        events = [state_event("r1", 1, "INITIALIZING"), state_event("r1", 2, "RUNNING")]
        bus.publish_events(
            [envelope_out(e) for e in events]
            + [envelope_out({**events[0], "seq": 3, "type": "progress", "data": {}})]
        )
        wait_for(lambda: len(receiver.accepted()) == 4, 20, "4 deliveries")
    finally:
        notifier.stop()
    slack = [r.json() for r in receiver.accepted("/slack")]
    assert [s["text"] for s in slack] == ["demo run r1 is INITIALIZING", "demo run r1 is RUNNING"]
    ops = receiver.accepted("/ops")
    assert [r.json()["state"] for r in ops] == ["INITIALIZING", "RUNNING"]
    assert all(notify.verify(r.body, SECRET, r.headers["X-Snakedeck-Signature"]) for r in ops)
    listed = service_for(settings, store, bus).list_deliveries("r1")
    assert [t.get("default", False) for t in listed["targets"]] == [False, True]
    assert listed["total"] == 4
    assert bus.queue_depth("notify") == 0


def envelope_out(event: dict[str, Any]) -> Any:
    from snakedeck.bus.base import Outgoing

    return Outgoing(envelope.routing_key(event), event, envelope.message_id(event))


def test_email_targets_are_sent_through_the_smtp_settings(
    settings: Settings, store: SqliteStore, bus: LocalBus
) -> None:
    with SmtpSink() as sink:
        mail = settings.with_(smtp_host="127.0.0.1", smtp_port=sink.port, smtp_from="sd@lab.test")
        svc = service_for(mail, store, bus)
        run_id = svc.submit_run(
            "demo",
            {},
            notify=[{"url": "mailto:ann@lab.test", "format": "email"}],
            by=LOCAL_ADMIN,
        )["run_id"]
        assert Notifier(mail, store, bus).notify(state_event(run_id, 5, "COMPLETE"))
    (message,) = sink.messages
    assert message["To"] == "ann@lab.test" and message["From"] == "sd@lab.test"
    assert message["Subject"] == f"[snakedeck] demo run {run_id} is COMPLETE"
    assert message["Idempotency-Key"] == f"{run_id}:5"
    body = message.get_payload(decode=True).decode()
    assert json.loads(body.strip().splitlines()[-1])["state"] == "COMPLETE"


def test_a_run_the_reaper_declares_lost_notifies_its_system_error(
    settings: Settings, store: SqliteStore, bus: LocalBus, receiver: Receiver
) -> None:
    from consumer.reaper import Reaper

    make_run(store, "lost", [{"url": receiver.url(), "secret": SECRET}])
    store.claim_run("lost", "dead-runner", host="h", now=0.0, lease=30)
    reaper = Reaper(store, bus, lease=30)
    assert reaper.sweep(now=10.0) == []
    assert reaper.sweep(now=41.0) == ["lost"]
    assert bus.queue_depth("notify") == 1 and bus.queue_depth("persist") == 0
    notifier = Notifier(settings, store, bus)
    notifier.start()
    try:
        wait_for(lambda: receiver.accepted(), 20, "the SYSTEM_ERROR notification")
    finally:
        notifier.stop()
    (request,) = receiver.accepted()
    doc = request.json()
    assert doc["state"] == "SYSTEM_ERROR" and "dead-runner was lost" in doc["reason"]
    assert notify.verify(request.body, SECRET, request.headers["X-Snakedeck-Signature"])
    assert request.headers["Idempotency-Key"] == f"lost:{envelope.MAX_SEQ - 2}"  # epoch 2
