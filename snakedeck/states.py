"""The run and job state machines, in one place.

Run states are GA4GH WES's. Job states are snakedeck's own. Every rule about which state may
follow which, and which event moves a job where, lives here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class RunState(StrEnum):
    QUEUED = "QUEUED"
    INITIALIZING = "INITIALIZING"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    EXECUTOR_ERROR = "EXECUTOR_ERROR"
    SYSTEM_ERROR = "SYSTEM_ERROR"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"


TERMINAL_RUN_STATES: Final = frozenset(
    {RunState.COMPLETE, RunState.EXECUTOR_ERROR, RunState.SYSTEM_ERROR, RunState.CANCELED}
)
ACTIVE_RUN_STATES: Final = frozenset(
    {RunState.QUEUED, RunState.INITIALIZING, RunState.RUNNING, RunState.CANCELING}
)

_RUN_TRANSITIONS: Final[dict[RunState, frozenset[RunState]]] = {
    RunState.QUEUED: frozenset(
        {RunState.INITIALIZING, RunState.CANCELING, RunState.CANCELED, RunState.SYSTEM_ERROR}
    ),
    RunState.INITIALIZING: frozenset(
        {RunState.RUNNING, RunState.CANCELING, RunState.SYSTEM_ERROR, RunState.EXECUTOR_ERROR}
    ),
    RunState.RUNNING: frozenset(
        {
            RunState.COMPLETE,
            RunState.EXECUTOR_ERROR,
            RunState.SYSTEM_ERROR,
            RunState.CANCELING,
        }
    ),
    RunState.CANCELING: frozenset(
        {RunState.CANCELED, RunState.SYSTEM_ERROR, RunState.COMPLETE, RunState.EXECUTOR_ERROR}
    ),
}


class InvalidTransition(ValueError):
    pass


def can_move(current: RunState, new: RunState) -> bool:
    return new in _RUN_TRANSITIONS.get(current, frozenset())


def check_move(current: RunState, new: RunState) -> None:
    """Raise :class:`InvalidTransition` for a lifecycle step the WES model does not allow."""
    if not can_move(current, new):
        raise InvalidTransition(f"a run cannot go from {current} to {new}")


def is_terminal(state: str) -> bool:
    return state in TERMINAL_RUN_STATES


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN_JOB_STATES: Final = frozenset({JobState.PENDING, JobState.RUNNING})
JOB_STATES_ORDER: Final = (
    JobState.PENDING,
    JobState.RUNNING,
    JobState.DONE,
    JobState.FAILED,
    JobState.CANCELLED,
)

# Which Snakemake event puts a job in which state.
JOB_STATE_BY_EVENT: Final[dict[str, JobState]] = {
    "job_info": JobState.RUNNING,
    "job_started": JobState.RUNNING,
    "job_finished": JobState.DONE,
    "job_error": JobState.FAILED,
}


def settle_job_state(state: JobState, closed_seq: int | None, state_seq: int) -> JobState:
    """A job still open when its run ended (cancel, crash) is ``cancelled``.

    ``closed_seq`` is the seq of the run's terminal ``run_state``; only events from before it can
    leave a job open, so the answer does not depend on the order events arrive in.
    """
    if state in OPEN_JOB_STATES and closed_seq is not None and state_seq < closed_seq:
        return JobState.CANCELLED
    return state
