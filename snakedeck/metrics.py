"""The Prometheus metrics of snakedeck, defined once so every process registers the same names.

The gateway exposes the default registry at ``/metrics``; in standalone mode that covers the
consumer too, since it runs in the same process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from snakedeck.store.base import Store

EVENTS_PERSISTED = Counter(
    "snakedeck_events_persisted",
    "Events the consumer wrote to the store (replays included).",
)
DEAD_LETTERED = Counter(
    "snakedeck_dead_lettered",
    "Messages the consumer could not use and sent to the dead-letter queue.",
)
CONSUMER_BATCHES = Counter(
    "snakedeck_consumer_batches",
    "Batches the consumer persisted and acknowledged.",
)
CONSUMER_STORE_ERRORS = Counter(
    "snakedeck_consumer_store_errors",
    "Batches requeued because the store refused or could not be reached.",
)
CONSUMER_LAG = Gauge(
    "snakedeck_consumer_lag",
    "Events waiting in the persist queue, as last measured by the consumer.",
)
RUNS_BY_STATE = Gauge(
    "snakedeck_runs_by_state",
    "Runs in the store, by WES state.",
    ["state"],
)
WEBSOCKET_CLIENTS = Gauge(
    "snakedeck_websocket_clients",
    "Live-feed clients connected to this gateway (Socket.IO and plain WebSocket).",
)


def refresh_runs_by_state(store: Store) -> None:
    """Set :data:`RUNS_BY_STATE` from the store (states with no run left read 0)."""
    from snakedeck.states import RunState

    counts = store.count_runs_by_state()
    for state in RunState:
        RUNS_BY_STATE.labels(state=state.value).set(counts.get(state.value, 0))
