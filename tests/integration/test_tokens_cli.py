"""``snakedeck tokens`` and ``snakedeck audit`` as an operator types them, against a real
gateway (gunicorn, RabbitMQ, SQLite) sharing the operator's store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from snakedeck.auth import CACHE_SECONDS, token_hash
from snakedeck.bus import open_bus
from snakedeck.settings import Settings
from tests.support.live_clients import GatewayProcess
from tests.support.services import AMQP_URL, tcp_reachable, unavailable, unique_namespace

ADMIN = "cli-admin-token"


def snakedeck(settings: Settings, *args: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
    env |= {"SNAKEDECK_DATA_DIR": str(settings.data_dir), "COLUMNS": "200", **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    if not tcp_reachable(AMQP_URL):
        unavailable(f"RabbitMQ at {AMQP_URL}")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("tokens") / "data",
        workflows_dir=GatewayProcess.workflows_dir(),
        namespace=unique_namespace(),
        amqp_url=AMQP_URL,
    )
    with GatewayProcess(settings) as gw:
        yield settings, gw.url
    bus = open_bus(settings)
    bus.delete_topology()  # type: ignore[attr-defined]
    bus.close()


def runs(url: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url + "/api/v1/runs", headers=headers, timeout=30)


def test_the_first_token_turns_tokens_on_and_revoked_ones_stop_working(gateway) -> None:
    settings, url = gateway
    assert runs(url, None).status_code == 200  # no token anywhere: open (local admin)
    made = snakedeck(settings, "tokens", "create", "ops", "--role", "admin")
    assert made.returncode == 0, made.stderr
    admin = made.stdout.strip()
    assert admin.startswith("sdk_") and "shown only now" in made.stderr
    made = snakedeck(settings, "tokens", "create", "ana", "--role", "submit", "--json")
    ana = json.loads(made.stdout)["token"]
    time.sleep(CACHE_SECONDS + 0.5)
    assert runs(url, None).status_code == 401
    resp = requests.post(
        url + "/api/v1/runs",
        json={"workflow": "demo"},
        headers={"Authorization": f"Bearer {ana}"},
        timeout=30,
    )
    assert resp.status_code == 201
    assert runs(url, ana).json()["runs"][0]["user"] == "ana"

    listed = snakedeck(settings, "tokens", "list", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"]) for r in rows] == [("ana", "submit"), ("ops", "admin")]
    assert ana not in listed.stdout and admin not in listed.stdout
    assert next(r for r in rows if r["name"] == "ana")["last_used_at"]

    again = snakedeck(settings, "tokens", "create", "ana")
    assert again.returncode == 2 and "revoke it first" in again.stderr

    audit = snakedeck(settings, "audit", "--json", "--url", url, "--token", admin)
    assert audit.returncode == 0, audit.stderr
    entries = json.loads(audit.stdout)
    assert [(e["action"], e["target"], e["result"], e["status"]) for e in entries[:4]] == [
        ("token.create", "ana", "refused", 409),
        ("run.submit", entries[1]["target"], "ok", 201),
        ("token.create", "ana", "ok", 201),
        ("token.create", "ops", "ok", 201),
    ]
    assert entries[1]["actor"] == "ana" and entries[0]["actor"].startswith("cli:")
    denied = snakedeck(settings, "audit", "--url", url, "--token", ana)
    assert denied.returncode == 2 and "admin" in denied.stderr

    revoked = snakedeck(settings, "tokens", "revoke", "ana")
    assert revoked.returncode == 0 and "within" in revoked.stdout
    time.sleep(CACHE_SECONDS + 0.5)
    assert runs(url, ana).status_code == 401
    assert runs(url, admin).status_code == 200
    snakedeck(settings, "tokens", "revoke", "ops")
    time.sleep(CACHE_SECONDS + 0.5)
    assert runs(url, None).status_code == 401  # revoking the last token opens nothing
    assert runs(url, admin).status_code == 401


def test_a_token_file_gets_hashes_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    path = tmp_path / "tokens"
    made = snakedeck(settings, "tokens", "create", "ci", "--role", "read", "--file", str(path))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert path.read_text() == f"ci:read:{token_hash(token)}\n"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    listed = snakedeck(settings, "tokens", "list", "--file", str(path), "--json")
    assert json.loads(listed.stdout) == [{"name": "ci", "role": "read"}]
    snakedeck(settings, "tokens", "revoke", "ci", "--file", str(path))
    assert path.read_text() == ""
    bad = snakedeck(settings, "tokens", "create", "x", "--role", "owner")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
