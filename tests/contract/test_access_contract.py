"""The tokens and audit parts of the store contract, on every backend."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from snakedeck.store import AuditFilter, BadPageToken, Store, TokenExists, open_store


@pytest.fixture
def store(store_backend: str, settings_factory) -> Iterator[Store]:
    store = open_store(settings_factory(backend=store_backend, bus="local"))
    yield store
    store.drop()
    store.close()


def token(name: str, role: str = "read", secret: str | None = None, created: str = "") -> dict:
    digest = hashlib.sha256((secret or f"secret-of-{name}").encode()).hexdigest()
    return {
        "name": name,
        "role": role,
        "sha256": digest,
        "created": created or "2026-01-01T00:00:00.000Z",
    }


# -- tokens -------------------------------------------------------------------------------------


def test_a_token_is_found_by_its_hash_and_listed_by_name(store: Store) -> None:
    assert not store.has_tokens()
    store.create_token(token("zoe", "submit"))  # type: ignore[arg-type]
    store.create_token(token("ana", "admin"))  # type: ignore[arg-type]
    assert store.has_tokens()
    found = store.token_by_hash(hashlib.sha256(b"secret-of-zoe").hexdigest())
    assert found is not None and found["name"] == "zoe" and found["role"] == "submit"
    assert found["revoked_at"] is None and found["last_used_at"] is None
    assert [t["name"] for t in store.list_tokens()] == ["ana", "zoe"]
    assert store.token_by_hash("0" * 64) is None


def test_a_name_is_unique_among_unrevoked_tokens(store: Store) -> None:
    store.create_token(token("ana"))  # type: ignore[arg-type]
    with pytest.raises(TokenExists):
        store.create_token(token("ana", secret="another"))  # type: ignore[arg-type]
    with pytest.raises(TokenExists):  # the same secret under another name
        store.create_token({**token("ana"), "name": "bob"})  # type: ignore[arg-type]
    assert [t["name"] for t in store.list_tokens()] == ["ana"]


def test_a_revoked_token_stays_listed_and_its_name_can_be_used_again(store: Store) -> None:
    store.create_token(token("ana"))  # type: ignore[arg-type]
    revoked = store.revoke_token("ana", "2026-02-01T00:00:00.000Z")
    assert revoked is not None and revoked["revoked_at"] == "2026-02-01T00:00:00.000Z"
    assert store.revoke_token("ana", "2026-02-02T00:00:00.000Z") is None
    assert store.revoke_token("nobody", "2026-02-02T00:00:00.000Z") is None
    assert store.has_tokens() and store.list_tokens() == []  # revoked ones still count
    old = store.token_by_hash(hashlib.sha256(b"secret-of-ana").hexdigest())
    assert old is not None and old["revoked_at"]
    store.create_token(token("ana", secret="new", created="2026-03-01T00:00:00.000Z"))  # type: ignore[arg-type]
    listed = store.list_tokens(include_revoked=True)
    assert [(t["name"], bool(t["revoked_at"])) for t in listed] == [("ana", True), ("ana", False)]


def test_touching_a_token_records_its_last_use(store: Store) -> None:
    doc = token("ana")
    store.create_token(doc)  # type: ignore[arg-type]
    store.touch_token(doc["sha256"], "2026-04-01T10:00:00.000Z")
    found = store.token_by_hash(doc["sha256"])
    assert found is not None and found["last_used_at"] == "2026-04-01T10:00:00.000Z"


# -- audit --------------------------------------------------------------------------------------


def test_audit_entries_list_newest_first_and_filter(store: Store) -> None:
    for i, (actor, action, target) in enumerate(
        [
            ("ana", "run.submit", "r1"),
            ("bob", "run.cancel", "r1"),
            ("ana", "file.upload", "f1"),
            ("ana", "run_x.other", "r2"),
        ]
    ):
        store.record_audit(
            {
                "at": f"2026-01-01T00:00:0{i}.000Z",
                "actor": actor,
                "role": "submit",
                "action": action,
                "target": target,
                "source": "127.0.0.1",
                "result": "ok",
                "status": 200,
            }
        )
    everything = store.list_audit(AuditFilter())
    assert [e["action"] for e in everything.items] == [
        "run_x.other",
        "file.upload",
        "run.cancel",
        "run.submit",
    ]
    assert everything.total == 4 and all(e["audit_id"] for e in everything.items)
    assert [e["target"] for e in store.list_audit(AuditFilter(actor="ana")).items] == [
        "r2",
        "f1",
        "r1",
    ]
    # "run." is a prefix: it must not match "run_x." (no LIKE wildcard leaks)
    runs = store.list_audit(AuditFilter(action="run."))
    assert [e["action"] for e in runs.items] == ["run.cancel", "run.submit"]
    assert store.list_audit(AuditFilter(action="run.cancel", target="r1")).total == 1
    assert store.list_audit(AuditFilter(target="r9")).items == []


def test_audit_pages_follow_on_without_gaps(store: Store) -> None:
    for i in range(7):
        store.record_audit(
            {
                "at": "2026-01-01T00:00:00.000Z",
                "actor": "ana",
                "action": "run.submit",
                "target": f"r{i}",
                "result": "ok",
                "status": 201,
                "role": "admin",
            }
        )
    seen: list[str] = []
    page = store.list_audit(AuditFilter(), page_size=3)
    while True:
        seen += [e["audit_id"] for e in page.items]
        if not page.next_page_token:
            break
        page = store.list_audit(AuditFilter(), page_size=3, page_token=page.next_page_token)
    assert len(seen) == 7 == len(set(seen)) and seen == sorted(seen, reverse=True)
    with pytest.raises(BadPageToken):
        store.list_audit(AuditFilter(), page_token="bm9wZQ")
