"""The pipeline's parts over the real RabbitMQ, on each store backend (``store_backend``).

A module overrides ``settings`` (e.g. a shorter cancel grace) or ``consumer`` (batch size)
where it needs to; the rest is shared.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumer.service import Consumer
from snakedeck.bus import Bus, open_bus
from snakedeck.settings import Settings
from snakedeck.store import Store, open_store


@pytest.fixture
def settings(settings_factory, store_backend: str) -> Settings:
    return settings_factory(backend=store_backend, bus="amqp")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = open_store(settings)
    yield s
    s.close()


@pytest.fixture
def bus(settings: Settings) -> Iterator[Bus]:
    """A declared topology, deleted again afterwards (the broker is shared by every run)."""
    b = open_bus(settings)
    b.declare()
    yield b
    b.close()
    cleanup = open_bus(settings)
    cleanup.delete_topology()  # type: ignore[attr-defined]
    cleanup.close()


@pytest.fixture
def consumer(settings: Settings, store: Store, bus: Bus) -> Iterator[Consumer]:
    c = Consumer(settings, store, open_bus(settings))
    c.start()
    yield c
    c.stop()
