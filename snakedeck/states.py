"""The run and job state machines, in one place.

Run states are GA4GH WES's. A run's lifecycle is a sequence of **attempts**: the first, and one
more for each resume. Each attempt goes from QUEUED through the transitions below to exactly
one terminal state. Only a resume leaves a terminal state: a run that ended in one of
:data:`RESUMABLE_RUN_STATES` may start a new attempt at QUEUED (:func:`check_resume`), in the
same work directory; nothing else moves a run out of a terminal state.

Job states are snakedeck's own. Every rule about which state may follow which, which event
moves a job where, and how jobs count towards a run's progress lives here; the runner, the
logger plugin, the projection and the dashboard all read it from here.
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
    """WES's state for a run the server cannot say anything about; snakedeck never sets it."""


TERMINAL_RUN_STATES: Final = frozenset(
    {RunState.COMPLETE, RunState.EXECUTOR_ERROR, RunState.SYSTEM_ERROR, RunState.CANCELED}
)
FAILED_RUN_STATES: Final = frozenset({RunState.EXECUTOR_ERROR, RunState.SYSTEM_ERROR})

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


def _closure() -> dict[RunState, frozenset[RunState]]:
    reach: dict[RunState, frozenset[RunState]] = {}
    for start in RunState:
        seen: set[RunState] = set()
        todo = list(_RUN_TRANSITIONS.get(start, ()))
        while todo:
            state = todo.pop()
            if state not in seen:
                seen.add(state)
                todo.extend(_RUN_TRANSITIONS.get(state, ()))
        reach[start] = frozenset(seen)
    return reach


_REACHABLE: Final = _closure()


class InvalidTransition(ValueError):
    """A lifecycle step the WES model does not allow (a bug in whoever tried it)."""


RESUMABLE_RUN_STATES: Final = frozenset(
    {RunState.EXECUTOR_ERROR, RunState.SYSTEM_ERROR, RunState.CANCELED}
)
"""A run that ended here may be resumed: a new attempt, back at QUEUED."""


def can_resume(state: str | None) -> bool:
    return state in RESUMABLE_RUN_STATES


def check_resume(state: str | None) -> RunState:
    """The state a resume starts its attempt in (QUEUED), or :class:`InvalidTransition`
    saying why a run in ``state`` cannot be resumed."""
    if can_resume(state):
        return RunState.QUEUED
    if state == RunState.COMPLETE:
        raise InvalidTransition("a COMPLETE run has nothing left to do; rerun it for a new run")
    raise InvalidTransition(
        f"a run is resumed only once it ended failed or cancelled "
        f"({', '.join(sorted(RESUMABLE_RUN_STATES))}); it is {state}"
    )


def can_move(current: RunState, new: RunState) -> bool:
    """Whether ``new`` may directly follow ``current`` (what a run's owner may emit)."""
    return new in _RUN_TRANSITIONS.get(current, frozenset())


def check_move(current: RunState, new: RunState) -> None:
    """Raise :class:`InvalidTransition` unless ``new`` may directly follow ``current``."""
    if not can_move(current, new):
        raise InvalidTransition(f"a run cannot go from {current} to {new}")


def can_reach(current: RunState, new: RunState) -> bool:
    """Whether ``new`` can come after ``current`` through legal steps. The projection folds
    events in any order, so it checks reachability: a missing step may still be on its way."""
    return new in _REACHABLE[current]


def path_to(current: RunState, new: RunState) -> list[RunState]:
    """The shortest legal sequence of states from ``current`` that ends in ``new`` (``[]``
    when ``new`` cannot be reached), for an owner that knows only where a run ended up. Among
    equally short ones, the one through states declared earlier (the usual course) wins; it
    goes through CANCELING only to end CANCELED: nobody asked to cancel a run that completed."""
    if current == new:
        return []
    detours = set() if new in (RunState.CANCELING, RunState.CANCELED) else {RunState.CANCELING}
    paths: dict[RunState, list[RunState]] = {current: []}
    frontier = [current]
    while frontier:
        nxt: list[RunState] = []
        for state in frontier:
            for step in sorted(_RUN_TRANSITIONS.get(state, ()), key=list(RunState).index):
                if step not in paths and step not in detours:
                    paths[step] = [*paths[state], step]
                    if step == new:
                        return paths[step]
                    nxt.append(step)
        frontier = nxt
    return []


def is_terminal(state: str | None) -> bool:
    return state in TERMINAL_RUN_STATES


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    """It was running when its run ended (cancelled, or the run was lost)."""
    NOT_RUN = "not_run"
    """It never started, and never will: its run ended first."""


OPEN_JOB_STATES: Final = frozenset({JobState.PENDING, JobState.RUNNING})
JOB_STATES_ORDER: Final = (
    JobState.PENDING,
    JobState.RUNNING,
    JobState.DONE,
    JobState.FAILED,
    JobState.CANCELLED,
    JobState.NOT_RUN,
)

# Which Snakemake event puts a job in which state.
JOB_STATE_BY_EVENT: Final[dict[str, JobState]] = {
    "job_info": JobState.RUNNING,
    "job_started": JobState.RUNNING,
    "job_finished": JobState.DONE,
    "job_error": JobState.FAILED,
}

SETTLED_BY_RUN_END: Final[dict[JobState, JobState]] = {
    JobState.RUNNING: JobState.CANCELLED,
    JobState.PENDING: JobState.NOT_RUN,
}
"""What an open job becomes when its run ends with it still open."""


def settle_job_state(state: JobState, closed_seq: int | None, state_seq: int) -> JobState:
    """A job still open when its run ended is ``cancelled`` (running) or ``not_run`` (pending).

    ``closed_seq`` is the seq of the run's terminal ``run_state``; only events from before it can
    leave a job open, so the answer does not depend on the order events arrive in.
    """
    if state in OPEN_JOB_STATES and closed_seq is not None and state_seq < closed_seq:
        return SETTLED_BY_RUN_END[state]
    return state
