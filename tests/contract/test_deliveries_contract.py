"""Notify targets and the delivery log, against every store backend: targets come back as saved
(secrets included, for the notifier only), the log keeps every attempt in order, pages through
it with the one pagination, and answers what was attempted for one notification and target."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from snakedeck.store import BadPageToken, Store, open_store
from snakedeck.store.deliveries import DeliveryDoc


@pytest.fixture
def store(store_backend: str, settings_factory) -> Iterator[Store]:
    store = open_store(settings_factory(backend=store_backend, bus="local"))
    yield store
    store.close()


def attempt(run_id: str, key: str, n: int, outcome: str, **extra: object) -> DeliveryDoc:
    return {  # type: ignore[typeddict-item]
        "run_id": run_id,
        "key": key,
        "target_id": "t1",
        "event": "state",
        "attempt": n,
        "outcome": outcome,
        **extra,
    }


def test_targets_are_kept_per_run_and_replaced_whole(store: Store) -> None:
    targets = [{"url": "https://example.org/h", "format": "json", "secret": "s3cret-value"}]
    assert store.notify_targets("r1") == []
    store.save_notify_targets("r1", targets)
    store.save_notify_targets("r2", [])
    assert store.notify_targets("r1") == targets
    assert store.notify_targets("r2") == []
    store.save_notify_targets("r1", targets[:0])
    assert store.notify_targets("r1") == []


def test_the_log_lists_every_attempt_of_a_run_oldest_first_in_pages(store: Store) -> None:
    made = []
    for i in range(7):
        made.append(store.record_delivery(attempt("r1", f"r1:{i}", 1, "delivered", status=200)))
    store.record_delivery(attempt("r2", "r2:1", 1, "delivered"))
    first = store.list_deliveries("r1", page_size=3)
    assert first.total == 7 and len(first.items) == 3 and first.next_page_token
    seen = list(first.items)
    token = first.next_page_token
    while token:
        page = store.list_deliveries("r1", page_size=3, page_token=token)
        seen += page.items
        token = page.next_page_token
    assert [d["key"] for d in seen] == [f"r1:{i}" for i in range(7)]
    assert [d["delivery_id"] for d in seen] == [d["delivery_id"] for d in made]
    assert all(d["at"] and d["status"] == 200 for d in seen)
    assert store.list_deliveries("nobody").total == 0
    with pytest.raises(BadPageToken):
        store.list_deliveries("r1", page_token="bm90LWEtdG9rZW4")


def test_the_attempts_of_one_notification_to_one_target(store: Store) -> None:
    store.record_delivery(attempt("r1", "r1:3", 1, "failed", status=500))
    store.record_delivery(attempt("r1", "r1:4", 1, "delivered"))
    store.record_delivery(attempt("r1", "r1:3", 2, "failed", error="timed out"))
    store.record_delivery(attempt("r1", "r1:3", 3, "delivered", status=204))
    store.record_delivery({**attempt("r1", "r1:3", 1, "gave_up"), "target_id": "t2"})
    tries = store.delivery_attempts("r1", "r1:3", "t1")
    assert [(d["attempt"], d["outcome"]) for d in tries] == [
        (1, "failed"),
        (2, "failed"),
        (3, "delivered"),
    ]
    assert tries[1]["error"] == "timed out"
    assert store.delivery_attempts("r1", "r1:9", "t1") == []
    assert [d["outcome"] for d in store.delivery_attempts("r1", "r1:3", "t2")] == ["gave_up"]
