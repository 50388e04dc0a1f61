"""deploy/compose.yaml is a valid Compose file and a coherent deployment.

The machine's docker has no compose plugin (and no network for images), so the file is
checked against the Compose Specification's own JSON Schema (``tests/support/compose-spec.json``,
from compose-spec/compose-spec, Apache-2.0), and then for what the schema cannot see: the
replica set's three members, the URI naming them, every dependency and volume defined.
Where ``docker compose`` works, it also has to pass ``docker compose config -q``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose.yaml"
SCHEMA = REPO / "tests" / "support" / "compose-spec.json"
SNAKEDECK = ("gateway", "consumer", "runner")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # merges the x- anchors as Compose does


def test_the_file_is_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        done = subprocess.run(  # where the compose plugin exists, it must agree
            [docker, "compose", "-f", str(COMPOSE), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["mongo1"]["depends_on"] = {"mongo2": {"condition": "when_ready"}}
    broken["services"]["gateway"]["comand"] = ["gateway"]  # a typo of a key
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    assert len(list(validator.iter_errors(broken))) >= 2


def test_mongodb_is_a_three_node_replica_set_the_services_connect_to(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    members = [n for n in services if n.startswith("mongo") and n != "mongo-init"]
    assert sorted(members) == ["mongo1", "mongo2", "mongo3"]
    for name in members:
        command = services[name]["command"]
        assert command[command.index("--replSet") + 1] == "rs0", name
        assert "--bind_ip_all" in command
    init = " ".join(services["mongo-init"]["command"])
    for name in members:
        assert f'host: "{name}:27017"' in init
    assert '_id: "rs0"' in init
    for name in SNAKEDECK:
        env = services[name]["environment"]
        uri = urlparse(env["SNAKEDECK_MONGO_URI"])
        hosts = sorted(uri.netloc.split(","))
        assert hosts == ["mongo1:27017", "mongo2:27017", "mongo3:27017"], name
        assert parse_qs(uri.query)["replicaSet"] == ["rs0"]
        assert env["SNAKEDECK_QUEUE_TYPE"] in ("classic", "quorum")
        assert services[name]["depends_on"]["mongo-init"]["condition"] == (
            "service_completed_successfully"
        )
        assert services[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_every_dependency_volume_and_mounted_file_exists(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for dep in service.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown {dep}"
            if service["depends_on"][dep].get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
