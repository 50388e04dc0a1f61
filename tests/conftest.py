"""Fixtures shared by every test: real RabbitMQ, a Mongo wire server, and both store backends."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from snakedeck.settings import Settings
from tests.support import figures
from tests.support.services import (
    AMQP_URL,
    MongoWireServer,
    tcp_reachable,
    unavailable,
    unique_namespace,
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not tcp_reachable(AMQP_URL):
        unavailable(f"RabbitMQ at {AMQP_URL}")
    return AMQP_URL


@pytest.fixture
def namespace() -> str:
    """Each test gets its own exchanges and queues, so runs never collide."""
    return unique_namespace()


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    """A real MongoDB when SNAKEDECK_TEST_MONGO_URI is set, else mongoeco's wire server."""
    real = os.environ.get("SNAKEDECK_TEST_MONGO_URI")
    if real:
        yield real
        return
    try:
        server = MongoWireServer().start()
    except Exception as exc:  # noqa: BLE001
        unavailable(f"mongoeco wire server ({exc})")
    yield server.uri
    server.stop()


@pytest.fixture
def mongo_db_name() -> str:
    return f"sdtest_{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["sqlite", "mongo"])
def store_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings_factory(tmp_path: Path, namespace: str, request: pytest.FixtureRequest):
    """Build Settings for a test: ``backend`` 'sqlite' or 'mongo', ``bus`` 'amqp' or 'local'."""

    def make(*, backend: str = "sqlite", bus: str = "amqp", **overrides: object) -> Settings:
        values: dict[str, object] = {
            "data_dir": tmp_path / "data",
            "workflows_dir": REPO / "workflows",
            "namespace": namespace,
        }
        if bus == "amqp":
            values["amqp_url"] = request.getfixturevalue("amqp_url")
        if backend == "mongo":
            values["mongo_uri"] = request.getfixturevalue("mongo_uri")
            values["mongo_db"] = request.getfixturevalue("mongo_db_name")
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return make


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controlling process (or the only one)
        figures.open_table()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not hasattr(terminalreporter.config, "workerinput"):
        figures.print_table(terminalreporter)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest suites first (faults, slow, browser): pytest-xdist hands test files out in
    this order, so the long ones run beside each other and the short ones fill the gaps,
    instead of all waiting for the last long file. Stable, so every process sorts alike."""

    def weight(item: pytest.Item) -> int:
        for rank, mark in enumerate(("faults", "slow", "browser")):
            if item.get_closest_marker(mark):
                return rank
        return 3

    items.sort(key=weight)
