"""A gateway app built in this process as standalone mode builds it (no runner, no server):
for tests that drive the Flask app directly (schemathesis, the access matrix)."""

from __future__ import annotations

from typing import Any

from snakedeck.settings import Settings


def in_process_gateway(settings: Settings) -> tuple[Any, Any, Any]:
    """The app, its store and its bus (topology declared); the caller closes bus and store."""
    from cli.processes import build_gateway
    from snakedeck.bus import open_bus
    from snakedeck.store import open_store

    store = open_store(settings)
    bus = open_bus(settings)
    bus.declare()
    return build_gateway(settings, store, bus), store, bus
