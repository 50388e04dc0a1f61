"""What every part of the service stands on: its parts (settings, store, bus, registry), the
limits they share, and finding a run by id."""

from __future__ import annotations

import logging
from typing import Any

from snakedeck import envelope
from snakedeck.bus.base import Bus
from snakedeck.documents import (
    RunDoc,
)
from snakedeck.service.errors import NotFound
from snakedeck.settings import Settings
from snakedeck.store import (
    Store,
)
from snakedeck.store.artefacts import (
    MAX_READ,
)
from snakedeck.workflows import WorkflowRegistry

Doc = dict[str, Any]
log = logging.getLogger(__name__)

MAX_EVENTS_LIMIT = 5000


RUNNER_LOST_BEATS = 3


LOG_TAIL_BYTES = 64 * 1024


LOG_READ_BYTES = 256 * 1024


MAX_LOG_READ = MAX_READ


MAX_TAGS = 32


MAX_TAG_KEY = 64


MAX_TAG_VALUE = 256


class ServiceBase:
    """What every part of the service shares: the settings, the store, the bus, the registry.

    Every public method answers with documents or raises a :class:`ServiceError`; a store or
    broker failure is always :class:`Unavailable` (503), whichever call met it."""

    def __init__(
        self, settings: Settings, store: Store, bus: Bus, registry: WorkflowRegistry
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.registry = registry

    def _run(self, run_id: str) -> RunDoc:
        if not envelope.is_valid_run_id(run_id):
            raise NotFound(f"{run_id!r} is not a run id")
        run = self.store.get_run(run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id!r}")
        return run
