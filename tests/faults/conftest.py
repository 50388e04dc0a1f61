"""The fault suite: real processes, real broker, real store, and faults done to them.

Every test builds a :class:`~tests.support.deployment.Deployment` (runners, consumers and
gateways as ``python -m cli ...`` processes), runs a few-hundred-job demo workflow, does its
fault (a broker of its own stopped and started, processes SIGKILLed, the Mongo wire server taken
away, poison messages...), and checks the run's record with ``Deployment.verify``. The figures
of every test are printed as one table at the end of the session (tests/support/figures.py).

The machine's shared RabbitMQ is never stopped: broker outages use a private node
(:mod:`tests.support.rabbit_node`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snakedeck.settings import Settings
from tests.support import figures, rabbit_node
from tests.support.deployment import Deployment
from tests.support.services import AMQP_URL, MongoWireServer, tcp_reachable, unavailable

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``faults``; each runs a whole deployment through its fault,
    which on a loaded machine takes minutes (a ``pytestmark`` in a conftest marks nothing)."""
    for item in items:
        if HERE in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.timeout(900))


DEMO_JOBS = {"make_sample": "done", "count": "done", "summarize": "done", "all": "done"}


def demo_config(samples: int = 150, sleep: float = 0.1, **extra: Any) -> dict[str, Any]:
    """``2 * samples + 2`` jobs; with the defaults about 300 jobs that run for ~30 s here."""
    return {"samples": samples, "sleep": sleep, **extra}


@pytest.fixture(scope="session")
def workflows_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The registered workflows plus the test-only ones (tests/workflows)."""
    root = tmp_path_factory.mktemp("workflows")
    for source in (REPO / "workflows", REPO / "tests" / "workflows"):
        for wf in source.iterdir():
            if (wf / "workflow.yaml").is_file():
                (root / wf.name).symlink_to(wf, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def mongo() -> Iterator[MongoWireServer]:
    """A Mongo wire server of this module's own, so taking it away harms no other test."""
    server = MongoWireServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rabbit_node.RabbitNode]:
    if not rabbit_node.available():
        unavailable("a private RabbitMQ node (rabbitmq-server binaries, root)")
    node = rabbit_node.RabbitNode(tmp_path_factory.mktemp("rabbit")).start()
    yield node
    node.purge()


@pytest.fixture(scope="session")
def shared_broker() -> str:
    if not tcp_reachable(AMQP_URL):
        unavailable(f"RabbitMQ at {AMQP_URL}")
    return AMQP_URL


def base_settings(amqp_url: str, mongo_uri: str, workflows_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "amqp_url": amqp_url,
        "mongo_uri": mongo_uri,
        "mongo_db": f"sdfault_{uuid.uuid4().hex[:10]}",
        "namespace": f"sdfault-{uuid.uuid4().hex[:8]}",
        "workflows_dir": workflows_dir,
        "cores": 2,
        "max_runs": 4,
        "heartbeat_interval": 1.0,
        "cancel_grace": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def deployment_on(tmp_path: Path, mongo: MongoWireServer, workflows_dir: Path):
    """``deployment_on(amqp_url, **settings)``: a Deployment, closed at the end of the test."""
    made: list[Deployment] = []

    def make(amqp_url: str, **overrides: Any) -> Deployment:
        deployment = Deployment(
            tmp_path, base_settings(amqp_url, mongo.uri, workflows_dir, **overrides)
        )
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()


@pytest.fixture
def record() -> Any:
    """``record(figures)``: keep a test's figures for the table printed at the end."""
    return figures.record
