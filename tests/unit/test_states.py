"""The run lifecycle is one table (snakedeck/states.py): what a run's owner may emit, what a
resume may start from, and the path an owner takes when it knows only where a run ended up."""

from __future__ import annotations

import pytest

from snakedeck.states import (
    TERMINAL_RUN_STATES,
    InvalidTransition,
    RunState,
    can_reach,
    check_move,
    check_resume,
    path_to,
)

S = RunState


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.QUEUED, S.INITIALIZING),
        (S.INITIALIZING, S.RUNNING),
        (S.RUNNING, S.COMPLETE),
        (S.RUNNING, S.CANCELING),
        (S.CANCELING, S.CANCELED),
        (S.QUEUED, S.CANCELED),  # cancelled before a runner took it
    ],
)
def test_the_usual_steps_are_allowed(current: RunState, new: RunState) -> None:
    check_move(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.QUEUED, S.RUNNING),  # what the hand-run plugin once wrote: INITIALIZING skipped
        (S.COMPLETE, S.RUNNING),
        (S.CANCELED, S.COMPLETE),
        (S.SYSTEM_ERROR, S.QUEUED),  # a resume is not a step of the same attempt
        (S.RUNNING, S.QUEUED),
        (S.RUNNING, S.RUNNING),
    ],
)
def test_an_illegal_step_raises_and_names_both_states(current: RunState, new: RunState) -> None:
    with pytest.raises(InvalidTransition) as refused:
        check_move(current, new)
    assert str(current) in str(refused.value) and str(new) in str(refused.value)


def test_nothing_follows_a_terminal_state() -> None:
    for end in TERMINAL_RUN_STATES:
        assert not any(can_reach(end, other) for other in RunState), end


def test_an_owner_that_knows_only_the_end_takes_the_usual_course() -> None:
    assert path_to(S.QUEUED, S.RUNNING) == [S.INITIALIZING, S.RUNNING]
    assert path_to(S.QUEUED, S.COMPLETE) == [S.INITIALIZING, S.RUNNING, S.COMPLETE]
    assert path_to(S.QUEUED, S.CANCELED) == [S.CANCELED]
    assert path_to(S.RUNNING, S.CANCELED) == [S.CANCELING, S.CANCELED]
    assert path_to(S.CANCELING, S.COMPLETE) == [S.COMPLETE]
    assert path_to(S.COMPLETE, S.RUNNING) == []


def test_only_a_failed_or_cancelled_run_resumes() -> None:
    for state in (S.EXECUTOR_ERROR, S.SYSTEM_ERROR, S.CANCELED):
        assert check_resume(state) == S.QUEUED
    with pytest.raises(InvalidTransition, match="rerun it"):
        check_resume(S.COMPLETE)
    with pytest.raises(InvalidTransition, match="it is RUNNING"):
        check_resume(S.RUNNING)
