"""``snakedeck files …`` and ``submit --input/--config-file`` as a user types them, against a
real gateway process (SQLite store, real RabbitMQ)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from snakedeck.bus import open_bus
from snakedeck.settings import Settings
from tests.support.live_clients import REPO, GatewayProcess
from tests.support.services import AMQP_URL, tcp_reachable, unavailable, unique_namespace


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[GatewayProcess]:
    if not tcp_reachable(AMQP_URL):
        unavailable(f"RabbitMQ at {AMQP_URL}")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("cli") / "data",
        workflows_dir=GatewayProcess.workflows_dir(),
        namespace=unique_namespace(),
        amqp_url=AMQP_URL,
    )
    with GatewayProcess(settings) as gw:
        yield gw
    bus = open_bus(settings)
    bus.delete_topology()  # type: ignore[attr-defined]
    bus.close()


def snakedeck(gateway: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEDECK_")}
    env["SNAKEDECK_URL"] = gateway.url
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_upload_list_get_rm(gateway: GatewayProcess, tmp_path: Path) -> None:
    local = tmp_path / "notes.txt"
    local.write_text("line one\nline two\n")
    up = snakedeck(gateway, "files", "upload", str(local), "--tag", "project=cli", "--json")
    assert up.returncode == 0, up.stderr
    doc = json.loads(up.stdout)
    assert (
        doc["name"] == "notes.txt" and doc["kind"] == "text" and doc["tags"] == {"project": "cli"}
    )
    listed = snakedeck(gateway, "files", "list", "--tag", "project=cli", "--json")
    assert [d["file_id"] for d in json.loads(listed.stdout)] == [doc["file_id"]]
    table = snakedeck(gateway, "files", "list")
    assert doc["file_id"] in table.stdout and "notes.txt" in table.stdout
    out = tmp_path / "back"
    out.mkdir()
    got = snakedeck(gateway, "files", "get", doc["file_id"], "-o", str(out))
    assert got.returncode == 0, got.stderr
    assert (out / "notes.txt").read_text() == "line one\nline two\n"
    record = snakedeck(gateway, "files", "get", doc["file_id"])
    assert json.loads(record.stdout)["sha256"] == doc["sha256"]
    assert snakedeck(gateway, "files", "rm", doc["file_id"]).returncode == 0
    gone = snakedeck(gateway, "files", "get", doc["file_id"])
    assert gone.returncode == 2 and "no file with id" in gone.stderr


def test_submit_uploads_local_inputs_and_config_file(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("appended\n")
    config = tmp_path / "demo.yaml"
    config.write_text("samples: 2\ngreeting: from a file\n")
    run = snakedeck(
        gateway,
        "submit",
        "demo",
        "--input",
        f"extra={extra}",
        "--config-file",
        str(config),
        "--set",
        "samples=3",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    run_id = json.loads(run.stdout)["run_id"]
    doc = requests.get(f"{gateway.url}/api/v1/runs/{run_id}", timeout=30).json()
    assert doc["config"] == {"samples": 3, "greeting": "from a file"}
    assert doc["inputs"]["extra"]["name"] == "extra.txt"
    assert doc["config_file"]["name"] == "demo.yaml"
    by_id = snakedeck(
        gateway, "submit", "demo", "--input", f"extra={doc['inputs']['extra']['file_id']}"
    )
    assert by_id.returncode == 0, by_id.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "extra=/no/such/file.txt"], "no such local file"),
        (["--input", "extra"], "must look like NAME=FILE_ID_OR_PATH"),
        (["--input", "nosuchinput=abcdefgh"], "no input named 'nosuchinput'"),
        (["--input", "extra=abcdefgh"], "no registered file has the id"),
    ],
)
def test_bad_submissions_exit_2_with_the_reason(gateway: GatewayProcess, args, message) -> None:
    result = snakedeck(gateway, "submit", "demo", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_big_upload_streams_through_the_cli(gateway: GatewayProcess, tmp_path: Path) -> None:
    import hashlib
    import random

    rng = random.Random(3)
    big = tmp_path / "big.fq"
    with big.open("w") as f:
        for i in range(40_000):
            seq = "".join(rng.choice("ACGT") for _ in range(60))
            f.write(f"@r{i}\n{seq}\n+\n{'I' * 60}\n")
    up = snakedeck(gateway, "files", "upload", str(big), "--json")
    assert up.returncode == 0, up.stderr
    doc = json.loads(up.stdout)
    assert doc["kind"] == "fastq" and doc["size"] == big.stat().st_size
    assert doc["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
