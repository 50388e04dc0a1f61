"""The service layer's usual surroundings for unit tests: settings in a temporary data dir with
the shipped workflows, the real SQLite store, the in-process bus. A module that needs other
surroundings overrides the fixture it changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from snakedeck.bus.local import LocalBus
from snakedeck.service import Service
from snakedeck.settings import Settings
from snakedeck.store.sqlite import SqliteStore
from snakedeck.workflows import WorkflowRegistry
from tests.support.services import unique_namespace

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", workflows_dir=REPO / "workflows", namespace=unique_namespace()
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[SqliteStore]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(settings.sqlite_path)
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture
def bus(settings: Settings) -> Iterator[LocalBus]:
    bus = LocalBus(settings.namespace)
    yield bus
    bus.close()


@pytest.fixture
def service(settings: Settings, store: SqliteStore, bus: LocalBus) -> Service:
    return Service(settings, store, bus, WorkflowRegistry(settings.workflows_dir))
