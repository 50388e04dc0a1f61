"""Dead letters for operators: a poison event dead-lettered by the real consumer over the real
RabbitMQ, then listed, replayed and purged through the gateway (a real gunicorn process) with
the ``snakedeck dead-letters`` commands a user types.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import requests

from snakedeck.bus import Outgoing, open_bus
from snakedeck.settings import Settings
from tests.support.live_clients import GatewayProcess, Pipeline, wait_until
from tests.support.services import unique_namespace
from tests.support.tcp_proxy import TcpProxy

TOKEN = "dead-letter-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOT_JSON = b"\xff not json"
BAD_ENVELOPE = {"v": 1, "run_id": "bad run id!", "seq": 1, "type": "log"}


@dataclass(frozen=True)
class RawOutgoing(Outgoing):
    """A message whose body is not JSON at all, as a broken producer might send."""

    raw: bytes = b""

    def encode(self) -> bytes:
        return self.raw


@pytest.fixture
def pipeline(settings_factory) -> Iterator[Pipeline]:
    """The consumer in this process, a gateway in its own, tokens configured."""
    settings = settings_factory(backend="sqlite", bus="amqp", api_tokens=(TOKEN,))
    p = Pipeline(settings)
    try:
        yield p.start()
    finally:
        p.stop()


def snakedeck(url: str, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
    env |= {"SNAKEDECK_URL": url, "COLUMNS": "200"}
    if token:
        env["SNAKEDECK_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "cli", "dead-letters", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def listed(url: str) -> dict[str, Any]:
    result = snakedeck(url, "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def dead_count(p: Pipeline) -> int:
    return p.bus.queue_depth(p.bus.topology.dead)


def poison(p: Pipeline) -> None:
    """Two events the consumer cannot use; it must dead-letter both, with a reason each."""
    p.bus.publish_events(
        [
            RawOutgoing("run.y.log", {}, "y:1", raw=NOT_JSON),
            Outgoing("run.x.log", BAD_ENVELOPE, "x:1"),
        ]
    )
    wait_until(lambda: dead_count(p) == 2, 60, "the consumer to dead-letter both events")


def test_list_replay_and_purge_dead_letters_from_the_cli(pipeline: Pipeline) -> None:
    url = pipeline.url
    assert snakedeck(url, "list").stdout.strip() == "no dead letters"
    poison(pipeline)

    shown = snakedeck(url, "list")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("not a valid event envelope") == 2, shown.stdout
    assert "run.x.log" in shown.stdout and "run.y.log" in shown.stdout
    assert "2 dead letters" in shown.stdout
    page = listed(url)
    assert page["total"] == 2
    by_id = {letter["message_id"]: letter for letter in page["dead_letters"]}
    assert set(by_id) == {"x:1", "y:1"}
    assert all(letter["queue"] == "persist" for letter in by_id.values())
    assert "not valid JSON" in by_id["y:1"]["reason"]
    assert "run_id" in by_id["x:1"]["reason"]
    assert json.loads(by_id["x:1"]["preview"]) == BAD_ENVELOPE
    first_filed = {mid: letter["dead_at"] for mid, letter in by_id.items()}
    assert snakedeck(url, "list", "--limit", "1", "--json").stdout.count('"message_id"') == 1

    # Writes need the token; without it nothing moves.
    refused = snakedeck(url, "replay", token=None)
    assert refused.returncode == 2 and "(401)" in refused.stderr, refused.stderr
    assert dead_count(pipeline) == 2

    replayed = snakedeck(url, "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == "replayed 2 dead letters"

    def filed_again() -> dict[str, dict[str, Any]] | None:
        again = {d["message_id"]: d for d in listed(url)["dead_letters"]}
        newer = set(again) == set(first_filed) and all(
            again[mid]["dead_at"] > first_filed[mid] for mid in first_filed
        )
        return again if newer else None

    again = wait_until(filed_again, 60, "the consumer to dead-letter the replayed events again")
    assert "not valid JSON" in again["y:1"]["reason"] and "run_id" in again["x:1"]["reason"]
    assert pipeline.store.get_run("bad run id!") is None

    unconfirmed = snakedeck(url, "purge")
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert dead_count(pipeline) == 2

    purged = snakedeck(url, "purge", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == "purged 2 dead letters"
    assert listed(url) == {"dead_letters": [], "total": 0}
    assert snakedeck(url, "list").stdout.strip() == "no dead letters"


def test_bad_dead_letter_requests_are_named_4xx_problems(pipeline: Pipeline) -> None:
    api = f"{pipeline.url}/api/v1/dead-letters"
    poison(pipeline)
    cases = [
        (requests.get(api, params={"limit": 0}, headers=AUTH, timeout=30), 422, "limit"),
        (requests.get(api, timeout=30), 401, None),
        (requests.post(f"{api}/replay", json={"limit": 0}, headers=AUTH, timeout=30), 422, "limit"),
        (requests.post(f"{api}/replay", json={"limt": 1}, headers=AUTH, timeout=30), 422, "limt"),
        (requests.post(f"{api}/replay", data="{", headers=AUTH | _json(), timeout=30), 400, None),
        (requests.post(f"{api}/replay", json={}, timeout=30), 401, None),
        (requests.delete(api, timeout=30), 401, None),
    ]
    for resp, status, field in cases:
        assert resp.status_code == status, resp.text
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        body = resp.json()
        assert body["detail"], body
        if field is not None:
            assert field in [e["field"] for e in body["errors"]], body
    assert dead_count(pipeline) == 2  # nothing moved, nothing lost
    one = requests.post(f"{api}/replay", json={"limit": 1}, headers=AUTH, timeout=30)
    assert one.status_code == 200 and one.json() == {"replayed": 1}
    spec = requests.get(f"{pipeline.url}/apispec_1.json", timeout=30).json()
    assert set(spec["paths"]["/api/v1/dead-letters"]) == {"get", "delete"}
    assert set(spec["paths"]["/api/v1/dead-letters/replay"]) == {"post"}


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def test_a_broker_outage_is_a_503_and_a_clean_cli_error(tmp_path, amqp_url) -> None:
    with TcpProxy.for_url(amqp_url) as proxy:
        settings = Settings(
            data_dir=tmp_path / "data",
            workflows_dir=GatewayProcess.workflows_dir(),
            namespace=unique_namespace(),
            amqp_url=proxy.url_for(amqp_url),
        )
        try:
            with GatewayProcess(settings) as gateway:
                broker_goes_away_under(gateway, proxy)
        finally:
            cleanup = open_bus(replace(settings, amqp_url=amqp_url))
            cleanup.delete_topology()  # type: ignore[attr-defined]
            cleanup.close()


def broker_goes_away_under(gateway: GatewayProcess, proxy: TcpProxy) -> None:
    assert listed(gateway.url)["total"] == 0
    proxy.cut()
    resp = requests.get(f"{gateway.url}/api/v1/dead-letters", timeout=60)
    assert resp.status_code == 503, resp.text
    assert "message broker is unavailable" in resp.json()["detail"]
    for args in (("list",), ("replay",), ("purge", "--yes")):
        result = snakedeck(gateway.url, *args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "message broker is unavailable" in result.stderr
        assert "Traceback" not in result.stderr
