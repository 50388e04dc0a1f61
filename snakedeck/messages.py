"""Shapes of the non-event messages that cross process boundaries (events use the envelope).

- submit command (gateway → runs queue → runner)
- control command (gateway → control exchange → every runner)
- update (consumer → updates exchange → every gateway), and runner heartbeats on the same fanout
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict


class SubmitCommand(TypedDict):
    run_id: str
    workflow: str
    config: dict[str, Any]
    inputs: NotRequired[list[dict[str, Any]]]
    """Registered input files: ``{"file_id", "name", "path"}``."""
    tags: NotRequired[dict[str, str]]


class ControlCommand(TypedDict):
    action: Literal["cancel"]
    run_id: str


class PersistedUpdate(TypedDict):
    """What the consumer stored in one batch: envelopes plus compact run and job summaries."""

    kind: Literal["persisted"]
    events: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    jobs: list[dict[str, Any]]


class RunnerHeartbeat(TypedDict):
    kind: Literal["heartbeat"]
    runner_id: str
    runs: list[str]
    ts: str


def cancel(run_id: str) -> ControlCommand:
    return {"action": "cancel", "run_id": run_id}
