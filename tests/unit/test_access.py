"""The parts of access control that need no server: the token registry and its cache, the
token file, the origin and host rules, the OpenAPI 3.0 rendition, the bounded Socket.IO JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.feed_socketio import MALFORMED, EngineJson, LimitedJson
from gateway.openapi import to_oas30
from gateway.origins import OriginPolicy, default_hosts, host_name
from snakedeck import auth
from snakedeck.auth import (
    ANONYMOUS,
    LOCAL_ADMIN,
    Authenticator,
    AuthError,
    Principal,
    Role,
    TokenRegistry,
    new_token,
    parse_token_file,
    token_hash,
)
from snakedeck.store.sqlite import SqliteStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- tokens ---------------------------------------------------------------------------------------
def test_new_tokens_are_long_random_and_kept_only_as_hashes(store: SqliteStore) -> None:
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 40 and a.startswith("sdk_")
    token, doc = auth.create_token(store, "ana", Role.SUBMIT, by=LOCAL_ADMIN)
    kept = json.dumps(store.list_tokens(include_revoked=True))
    assert token not in kept and token_hash(token) in kept
    assert doc["created_by"] == "local"


def test_token_names_are_checked(store: SqliteStore) -> None:
    for bad in ("", "has space", "a:b", "-dash-first", "x" * 65):
        with pytest.raises(auth.TokenChangeError):
            auth.create_token(store, bad, Role.READ, by=LOCAL_ADMIN)
    auth.create_token(store, "ana", Role.READ, by=LOCAL_ADMIN)
    with pytest.raises(auth.TokenChangeError, match="exists"):
        auth.create_token(store, "ana", Role.ADMIN, by=LOCAL_ADMIN)
    with pytest.raises(auth.TokenChangeError, match="no unrevoked token"):
        auth.revoke_token(store, "nobody", by=LOCAL_ADMIN)


def test_the_registry_caches_and_revocation_takes_effect_after_the_cache(
    store: SqliteStore,
) -> None:
    clock = Clock()
    registry = TokenRegistry(store, clock=clock)
    authn = Authenticator((), lookup=registry)
    assert not authn.enabled
    token, _ = auth.create_token(store, "ana", Role.SUBMIT, by=LOCAL_ADMIN)
    assert not authn.enabled  # cached "no tokens" for up to CACHE_SECONDS
    clock.now += auth.CACHE_SECONDS + 0.1
    assert authn.enabled
    assert authn.authenticate(token) == Principal("ana", Role.SUBMIT)
    auth.revoke_token(store, "ana", by=LOCAL_ADMIN)
    assert authn.authenticate(token).name == "ana"  # still cached
    clock.now += auth.CACHE_SECONDS + 0.1
    with pytest.raises(AuthError):
        authn.authenticate(token)


def test_last_use_is_written_at_most_once_a_minute(store: SqliteStore) -> None:
    clock = Clock()
    registry = TokenRegistry(store, clock=clock, cache_seconds=0.0)
    token, doc = auth.create_token(store, "ana", Role.READ, by=LOCAL_ADMIN)
    registry.find(token)
    first = store.token_by_hash(doc["sha256"])["last_used_at"]  # type: ignore[index]
    assert first
    clock.now += 30
    store.touch_token(doc["sha256"], "marker")
    registry.find(token)
    assert store.token_by_hash(doc["sha256"])["last_used_at"] == "marker"  # type: ignore[index]
    clock.now += 31
    registry.find(token)
    assert store.token_by_hash(doc["sha256"])["last_used_at"] != "marker"  # type: ignore[index]


def test_a_token_file_holds_hashes_and_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    viewer = new_token()
    path.write_text(f"# comment\n\nviewer:read:{token_hash(viewer)}\n")
    clock = Clock()
    registry = TokenRegistry(None, path, clock=clock)
    authn = Authenticator((), lookup=registry)
    assert authn.enabled and authn.authenticate(viewer) == Principal("viewer", Role.READ)
    admin = new_token()
    path.write_text(f"boss:admin:{token_hash(admin)}\n")
    import os

    os.utime(path, (clock.now + 99, clock.now + 99))
    clock.now += auth.CACHE_SECONDS + 0.1
    assert authn.authenticate(admin).role is Role.ADMIN
    with pytest.raises(AuthError):
        authn.authenticate(viewer)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("ana:read", "expected name:role:sha256hex"),
        ("ana:owner:" + "0" * 64, "unknown role"),
        ("ana:read:abc", "64 hex digits"),
        ("a b:read:" + "0" * 64, "not a token name"),
    ],
)
def test_a_broken_token_file_names_its_line(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_token_file(f"# ok\n{line}\n", "tokens")
    assert "line 2" in str(info.value)


def test_admin_tokens_public_reads_and_labels() -> None:
    authn = Authenticator(["first", "second"], public_read=True)
    assert authn.authenticate("second") == Principal("admin-token-2", Role.ADMIN)
    assert authn.reader(None) == ANONYMOUS
    with pytest.raises(AuthError):
        authn.reader("wrong")  # a wrong token is refused, not read as anonymous
    with pytest.raises(AuthError):
        authn.authenticate(None)  # writes never anonymous
    with pytest.raises(AuthError):
        authn.authenticate("firs")  # a prefix is no token
    open_ = Authenticator()
    assert open_.authenticate(None) == LOCAL_ADMIN
    assert open_.authenticate(None, label="ana").name == "ana"
    assert open_.authenticate(None, label="<script>").name == "local"


# -- origins and hosts ------------------------------------------------------------------------
def test_hosts_default_to_the_bound_address_and_localhost() -> None:
    policy = OriginPolicy((), (), "127.0.0.1")
    for ok in ("127.0.0.1:8000", "localhost", "LOCALHOST:1", "[::1]:8000"):
        assert policy.host_allowed(ok), ok
    for bad in ("evil.example", "127.0.0.1.evil.example:8000", "", None):
        assert not policy.host_allowed(bad), bad
    assert OriginPolicy((), ("*",), "127.0.0.1").host_allowed("anything")
    assert OriginPolicy((), ("deck.example.org",), "0.0.0.0").host_allowed("deck.example.org:443")
    assert "localhost" in default_hosts("0.0.0.0")
    assert host_name("[::1]:80") == "::1" and host_name("Host:1") == "host"


def test_origins_own_configured_and_foreign() -> None:
    policy = OriginPolicy(("https://app.example",), (), "127.0.0.1")
    own = {"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:8000"}
    assert policy.cross_site(own) is None
    assert policy.cross_site({"Host": "h", "Origin": "https://app.example"}) is None
    assert policy.cross_site({"Host": "127.0.0.1:8000", "Origin": "null"})
    assert policy.cross_site({"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:9999"})
    assert policy.cross_site({"Host": "h", "Sec-Fetch-Site": "cross-site"})
    assert policy.cross_site({"Host": "h", "Sec-Fetch-Site": "same-origin"}) is None
    assert policy.cross_site({"Host": "h"}) is None  # not a browser: tokens decide
    assert policy.cors_origin({"Origin": "https://app.example"}) == "https://app.example"
    assert policy.cors_origin({"Origin": "http://127.0.0.1:8000"}) is None


# -- the OpenAPI 3.0 rendition ---------------------------------------------------------------
def test_null_branches_become_nullable_on_a_typed_schema() -> None:
    assert to_oas30({"anyOf": [{"type": "integer"}, {"type": "null"}]}) == {
        "type": "integer",
        "nullable": True,
    }
    ref = to_oas30({"anyOf": [{"$ref": "#/x"}, {"type": "null"}]})
    assert ref == {"allOf": [{"$ref": "#/x"}], "nullable": True}
    enum = to_oas30({"anyOf": [{"enum": ["A"], "type": "string"}, {"type": "null"}]})
    assert enum["enum"] == ["A", None] and enum["type"] == "string"
    nested = to_oas30({"properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}})
    assert nested["properties"]["a"] == {"type": "string", "nullable": True}
    assert to_oas30({"type": "number", "exclusiveMinimum": 0}) == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
    }


def test_the_ui_rendition_has_no_typeless_branch() -> None:
    from gateway import rest
    from gateway.openapi import build_spec, downgrade

    rest.register_views()
    spec = downgrade(build_spec([rest.api], title="t", version="1"))
    found: list[object] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key in ("anyOf", "oneOf"):
                for branch in node.get(key, []):
                    if isinstance(branch, dict) and not ({"type", "$ref", "enum"} & set(branch)):
                        found.append(branch)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert found == []
    assert '{"nullable": true}' not in json.dumps(spec)


# -- Socket.IO's JSON ---------------------------------------------------------------------------
def test_socketio_payloads_are_bounded_and_still_answered() -> None:
    assert LimitedJson.loads('["subscribe", {"run_id": "r"}]') == ["subscribe", {"run_id": "r"}]
    event, problem = LimitedJson.loads("[" * 5000 + "]" * 5000)
    assert event == MALFORMED and problem["status"] == 422
    event, problem = LimitedJson.loads('["subscribe", {"run_id": "\\ud800"}]')
    assert event == MALFORMED and "surrogate" in problem["detail"]
    event, problem = LimitedJson.loads("not json")
    assert event == MALFORMED and problem["status"] == 400
    with pytest.raises(ValueError):
        EngineJson.loads("[" * 100_000)
    with pytest.raises(ValueError):
        EngineJson.loads("probe")
