"""The Prometheus metrics of snakedeck, defined once so every process registers the same names.

The gateway exposes the default registry at ``/metrics``; in standalone mode that covers the
consumer too, since it runs in the same process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

if TYPE_CHECKING:
    from snakedeck.store import Store

EVENTS_PERSISTED = Counter(
    "snakedeck_events_persisted",
    "Events the consumer wrote to the store (replays included).",
)
DEAD_LETTERED = Counter(
    "snakedeck_dead_lettered",
    "Messages no part of snakedeck could use, filed in the dead-letter queue, by source queue.",
    ["queue"],
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
NOTIFICATION_ATTEMPTS = Counter(
    "snakedeck_notification_attempts",
    "Attempts to deliver a notification to a target, by format and outcome "
    "(delivered, failed: retried later, gave_up).",
    ["format", "outcome"],
)
RUNS_LOST = Counter(
    "snakedeck_runs_lost",
    "Runs the reaper declared SYSTEM_ERROR because their runner stopped renewing its claim.",
)
RUNS_BY_STATE = Gauge(
    "snakedeck_runs_by_state",
    "Runs in the store, by WES state.",
    ["state"],
)
LIVE_EVENTS_RECEIVED = Counter(
    "snakedeck_live_events_received",
    "Persisted events this gateway heard of on the updates fanout (and pushed to subscribers).",
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
