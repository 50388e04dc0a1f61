"""The colour of every run and job state. The states themselves come from
:mod:`snakedeck.states`; only their colours are declared here.

Mantine colour names (for badges and progress sections) adapt to the light and dark schemes by
themselves; the hex values are Mantine's shade 6 of the same colours, mid-tones that stay
readable on both a white and a near-black background (used where Mantine's theme does not
reach: Plotly figures and the Cytoscape graph).
"""

from __future__ import annotations

from typing import Final

from snakedeck.states import JobState, RunState

RUN_STATE_COLOR: Final[dict[RunState, str]] = {
    RunState.QUEUED: "gray",
    RunState.INITIALIZING: "cyan",
    RunState.RUNNING: "blue",
    RunState.COMPLETE: "green",
    RunState.EXECUTOR_ERROR: "red",
    RunState.SYSTEM_ERROR: "grape",
    RunState.CANCELING: "orange",
    RunState.CANCELED: "yellow",
    RunState.UNKNOWN: "dark",
}

JOB_STATE_COLOR: Final[dict[JobState, str]] = {
    JobState.PENDING: "gray",
    JobState.RUNNING: "blue",
    JobState.DONE: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "orange",
    JobState.NOT_RUN: "violet",
}

MANTINE_HEX: Final = {
    "gray": "#868e96",
    "dark": "#5c5f66",
    "cyan": "#15aabf",
    "blue": "#228be6",
    "green": "#40c057",
    "red": "#fa5252",
    "grape": "#be4bdb",
    "violet": "#7950f2",
    "orange": "#fd7e14",
    "yellow": "#fab005",
}

FALLBACK: Final = "gray"
"""For a value that names no state (a malformed document)."""


def run_state_color(state: str | None) -> str:
    try:
        return RUN_STATE_COLOR[RunState(state)]
    except ValueError:
        return FALLBACK


def job_state_color(state: str | None) -> str:
    try:
        return JOB_STATE_COLOR[JobState(state or JobState.PENDING)]
    except ValueError:
        return FALLBACK


def job_state_hex(state: str | None) -> str:
    return MANTINE_HEX[job_state_color(state)]


def job_state_label(state: str | None) -> str:
    """``not_run`` reads ``not run``: the words a user sees for a job state."""
    return str(state or JobState.PENDING).replace("_", " ")


def run_state_label(state: str | None) -> str:
    return str(state or RunState.UNKNOWN).replace("_", " ")
