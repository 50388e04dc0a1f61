"""Hostile input against the real server (gunicorn + gevent, real RabbitMQ, SQLite): every hole
the probe found answers a 4xx problem document naming the problem, and the store is as before.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from snakedeck.auth import new_token, token_hash
from snakedeck.bus import open_bus
from snakedeck.settings import Settings
from snakedeck.store import RunFilter, Store, open_store
from tests.support.live_clients import GatewayProcess, SocketIOFeed
from tests.support.services import AMQP_URL, tcp_reachable, unavailable, unique_namespace

TOKEN = "hostile-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VIEWER = new_token()
SUBMITTER = new_token()


class Live:
    def __init__(self, gateway: GatewayProcess, store: Store) -> None:
        self.gateway = gateway
        self.url = gateway.url
        self.store = store

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**AUTH, **kw.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/api/v1{path}", headers=headers, timeout=60, **kw
        )

    def snapshot(self) -> tuple[list[dict], int]:
        return self.store.list_runs(RunFilter(), page_size=500).items, self.store.count_events()

    def raw(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send bytes as they are (no client library would send these), read the answer."""
        parts = urlsplit(self.url)
        with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
            sock.sendall(request)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    if not tcp_reachable(AMQP_URL):
        unavailable(f"RabbitMQ at {AMQP_URL}")
    root = tmp_path_factory.mktemp("hostile")
    token_file = root / "tokens"
    token_file.write_text(f"viewer:read:{token_hash(VIEWER)}\nana:submit:{token_hash(SUBMITTER)}\n")
    settings = Settings(
        data_dir=root / "data",
        workflows_dir=GatewayProcess.workflows_dir(),
        namespace=unique_namespace(),
        amqp_url=AMQP_URL,
        api_tokens=(TOKEN,),
        token_file=token_file,
    )
    with GatewayProcess(settings) as gateway:
        store = open_store(settings)
        try:
            yield Live(gateway, store)
        finally:
            store.close()
    bus = open_bus(settings)
    bus.delete_topology()  # type: ignore[attr-defined]
    bus.close()


def problem_of(resp: requests.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text[:500]
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status and body["detail"]
    return body


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BODIES = [
    # (what, body text, status, field named)
    ("10,000-deep JSON", deep(10_000), 422, "(root)"),
    (
        "900-deep config",
        json.dumps({"workflow": "demo", "config": json.loads(deep(900))}),
        422,
        "config",
    ),
    ("lone surrogate in a tag", '{"workflow": "demo", "tags": {"a": "\\ud800"}}', 422, "tags.a"),
    (
        "lone surrogate in config",
        '{"workflow": "demo", "config": {"greeting": "\\udfff"}}',
        422,
        "config.greeting",
    ),
    (
        "huge integer",
        '{"workflow": "demo", "config": {"samples": 109472516107482071040}}',
        422,
        "config.samples",
    ),
    (
        "100,000 inputs",
        json.dumps({"workflow": "demo", "inputs": {f"i{n}": "abcdefgh" for n in range(100_000)}}),
        422,
        "inputs",
    ),
    (
        "over-long string",
        json.dumps({"workflow": "demo", "config": {"greeting": "x" * 70_000}}),
        422,
        "config.greeting",
    ),
]


@pytest.mark.parametrize(("what", "text", "status", "field"), BODIES, ids=[b[0] for b in BODIES])
def test_hostile_json_is_refused_naming_the_field(live: Live, what, text, status, field) -> None:
    before = live.snapshot()
    resp = live.api(
        "POST",
        "/runs",
        data=text.encode("utf-8", "surrogatepass"),
        headers={"Content-Type": "application/json"},
    )
    body = problem_of(resp, status)
    fields = [e["field"] for e in body.get("errors", [])]
    assert any(f.startswith(field) for f in fields), body
    assert len(resp.content) < 20_000  # names the problem, never echoes the value
    assert live.snapshot() == before


def test_a_huge_config_value_is_not_echoed(live: Live) -> None:
    resp = live.api(
        "POST", "/runs", json={"workflow": "demo", "config": {"samples": "x" * 5_000_000}}
    )
    body = problem_of(resp, 422)
    assert body["errors"][0]["field"] == "config.samples"
    assert len(resp.content) < 20_000


def test_an_after_seq_past_2_53_is_a_422_over_rest_and_socketio(live: Live) -> None:
    run_id = live.api("POST", "/runs", json={"workflow": "demo"}).json()["run_id"]
    body = problem_of(
        live.api("GET", f"/runs/{run_id}/events", params={"after_seq": 109472516107482071040}), 422
    )
    assert body["errors"][0]["field"] == "after_seq"
    feed = SocketIOFeed(live.url, token=TOKEN).connect()
    try:
        ack = feed.subscribe(run_id=run_id, after_seq=109472516107482071040)
        assert ack["error"]["status"] == 422 and "after_seq" in ack["error"]["detail"]
        # a payload too deep for any parser still gets its answer
        ack = feed.client.call("subscribe", json.loads(deep(50)), timeout=30)
        assert ack["error"]["status"] == 422
        assert feed.subscribe(run_id=run_id) == {"last_seq": 0} or "last_seq" in feed.subscribe(
            run_id=run_id
        )
    finally:
        feed.close()


def test_a_chunked_body_past_the_limit_is_413(live: Live) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"workflow": "demo", "config": {"greeting": "'
        for _ in range(20 * 16):  # 20 MiB, never a Content-Length
            yield b"x" * 65536
        yield b'"}}'

    resp = live.api("POST", "/runs", data=chunks(), headers={"Content-Type": "application/json"})
    problem_of(resp, 413)


def test_gunicorn_refusals_are_problem_documents(live: Live) -> None:
    host = urlsplit(live.url).netloc.encode()
    status, headers, body = live.raw(
        b"GET /api/v1/runs?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    )
    assert status == 414 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 414
    status, headers, body = live.raw(
        b"GET /api/v1/runs HTTP/1.1\r\nHost: " + host + b"\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n"
    )
    assert status == 431 and headers["content-type"] == "application/problem+json"
    assert "header" in json.loads(body)["detail"]
    status, headers, body = live.raw(b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400 and headers["content-type"] == "application/problem+json"


def test_unknown_dashboard_assets_are_404(live: Live) -> None:
    resp = requests.get(
        live.url + "/dashboard/_dash-component-suites/os/path.py", headers=AUTH, timeout=30
    )
    problem_of(resp, 404)


def test_a_rebound_host_is_refused(live: Live) -> None:
    resp = requests.get(
        live.url + "/api/v1/runs", headers={**AUTH, "Host": "evil.example"}, timeout=30
    )
    problem_of(resp, 400)


def test_a_socket_from_another_origin_is_refused(live: Live) -> None:
    import websocket

    ws_url = live.url.replace("http://", "ws://", 1) + f"/ws/runs?token={TOKEN}"
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(ws_url, origin="https://evil.example", timeout=30)
    assert info.value.status_code == 403
    own = websocket.create_connection(ws_url, origin=live.url, timeout=30)
    own.close()
    import socketio

    client = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(
            live.url,
            auth={"token": TOKEN},
            transports=["websocket"],
            headers={"Origin": "https://evil.example"},
            wait_timeout=20,
        )


@pytest.mark.parametrize(
    ("who", "token", "allowed"),
    [
        ("none", None, False),
        ("wrong", "wrong-token", False),
        ("prefix", TOKEN[:-1], False),
        ("read", VIEWER, True),
        ("submit", SUBMITTER, True),
        ("admin", TOKEN, True),
    ],
    ids=["none", "wrong", "prefix", "read", "submit", "admin"],  # tokens are random per process
)
def test_each_role_on_both_socket_kinds(
    live: Live, who: str, token: str | None, allowed: bool
) -> None:
    import socketio
    import websocket

    feed = SocketIOFeed(live.url, token=token)
    if allowed:
        feed.connect()
        assert feed.subscribe(all=True) == {"last_seq": None}
        feed.close()
    else:
        with pytest.raises(socketio.exceptions.ConnectionError):
            feed.connect()
    query = f"?token={token}" if token else ""
    ws_url = live.url.replace("http://", "ws://", 1) + "/ws/runs" + query
    if allowed:
        websocket.create_connection(ws_url, timeout=30).close()
    else:
        with pytest.raises(websocket.WebSocketBadStatusException) as info:
            websocket.create_connection(ws_url, timeout=30)
        assert info.value.status_code == 401
