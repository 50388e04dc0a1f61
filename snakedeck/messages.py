"""Shapes of the non-event messages that cross process boundaries (events use the envelope).

- submit command (gateway → runs queue → runner)
- control command (gateway → control exchange → every runner)
- resume command (gateway → the queue of the runner holding the run's directory)
- update (consumer → updates exchange → every gateway), and runner heartbeats on the same fanout
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from snakedeck.bundles import BundleDoc
from snakedeck.documents import JobDoc, RunDoc, RunFileRef
from snakedeck.envelope import Envelope


class SubmitCommand(TypedDict):
    run_id: str
    workflow: str
    config: dict[str, Any]
    """The merged configuration (config file, then the submitted overrides)."""
    inputs: NotRequired[dict[str, RunFileRef]]
    """Declared input name → the registered file (id, sha256, display name, kind, format; a
    sheet's ``files`` too). The runner fetches each from the store by sha256."""
    tags: NotRequired[dict[str, str]]
    cores: NotRequired[int]
    """``--cores`` for this run (WES ``workflow_engine_parameters``), at most the runner's own
    ``SNAKEDECK_CORES``; absent: the runner's."""
    workflow_source: NotRequired[str]
    """``attachment``: the run brought its own workflow (``workflow`` is then not a registry
    name), whose files ``workflow_bundle`` names as stored blobs."""
    workflow_bundle: NotRequired[BundleDoc]


class ControlCommand(TypedDict):
    action: Literal["cancel"]
    run_id: str


class ResumeCommand(TypedDict):
    """Gateway → one runner's own queue: run the next attempt of a run it holds."""

    action: Literal["resume"]
    run_id: str
    attempt: int


class LogChunk(TypedDict):
    """A piece of a run's log stream as it was stored (a live ``log`` message)."""

    run_id: str
    stream: str
    """``snakemake`` or ``job/<jobid>/<attempt>/<path>``."""
    offset: int
    next_offset: int
    """The offset just after it, in bytes (``text`` is the bytes decoded as UTF-8)."""
    text: str
    jobid: NotRequired[str]


class PersistedUpdate(TypedDict):
    """What the consumer stored in one batch: envelopes plus compact run and job summaries."""

    kind: Literal["persisted"]
    events: list[Envelope]
    runs: list[RunDoc]
    jobs: list[JobDoc]
    logs: NotRequired[list[LogChunk]]
    """Log text that grew (run and job logs), for live tails: the runner publishes these
    after it stored the chunks."""


class RunnerHeartbeat(TypedDict):
    kind: Literal["heartbeat"]
    runner_id: str
    runs: list[str]
    ts: str


def cancel(run_id: str) -> ControlCommand:
    return {"action": "cancel", "run_id": run_id}


def resume(run_id: str, attempt: int) -> ResumeCommand:
    return {"action": "resume", "run_id": run_id, "attempt": attempt}
