"""What a run's (or a rule's) job counts say, in words and fractions.

The counts are the core's (``progress`` and ``rule_counts[rule]`` of a run document: one number
per :class:`~snakedeck.states.JobState` plus ``total``). Only ``done`` is progress: a failed,
cancelled or never-run job is an outcome of its own, shown beside it, never counted as done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from snakedeck.states import JobState

Counts = Mapping[str, Any]

OUTCOMES: Final = (JobState.FAILED, JobState.CANCELLED, JobState.NOT_RUN)
"""Ends other than done, in the order they are written."""
BAR_STATES: Final = (JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.NOT_RUN)
"""Sections of a progress bar, left to right; running jobs are drawn after them."""


def count(counts: Counts | None, state: JobState | str) -> int:
    try:
        return max(0, int((counts or {}).get(str(state)) or 0))
    except (TypeError, ValueError):
        return 0


def total(counts: Counts | None) -> int:
    return count(counts, "total")


def done_percent(counts: Counts | None) -> int:
    """Done jobs as a whole percentage of all jobs, rounded down: 100 only when all are done."""
    n = total(counts)
    return (100 * count(counts, JobState.DONE)) // n if n else 0


def fractions(counts: Counts | None) -> dict[JobState, float]:
    """Percent of all jobs in each state (for the sections of a stacked bar)."""
    n = total(counts)
    return {s: (100.0 * count(counts, s) / n if n else 0.0) for s in JobState}


def outcome_parts(counts: Counts | None) -> list[tuple[JobState, str]]:
    """``[(failed, "1 failed"), (not_run, "9 not run"), (running, "2 running")]``: every
    state besides done that has jobs, in reading order."""
    parts = []
    for state in (*OUTCOMES, JobState.RUNNING, JobState.PENDING):
        n = count(counts, state)
        if n:
            parts.append((state, f"{n} {state.value.replace('_', ' ')}"))
    return parts


def done_text(counts: Counts | None, noun: str = "jobs") -> str:
    """``4 of 14 jobs done (28%)``."""
    noun = f" {noun}" if noun else ""
    return f"{count(counts, JobState.DONE)} of {total(counts)}{noun} done ({done_percent(counts)}%)"


def progress_text(counts: Counts | None, noun: str = "jobs") -> str:
    """``4 of 14 jobs done (28%) · 1 failed · 9 not run``."""
    return " · ".join([done_text(counts, noun), *(text for _, text in outcome_parts(counts))])


def rule_state(counts: Counts | None) -> JobState:
    """The one state that best describes a rule's jobs, for colouring a graph node."""
    n = total(counts)
    for state in (JobState.FAILED, JobState.RUNNING):
        if count(counts, state):
            return state
    if n and count(counts, JobState.DONE) >= n:
        return JobState.DONE
    for state in (JobState.CANCELLED, JobState.NOT_RUN):
        if count(counts, state):
            return state
    return JobState.PENDING


def ordered_rules(rule_order: Iterable[str] | None, rule_counts: Counts | None) -> list[str]:
    """The rules of ``rule_counts`` in pipeline order (the run's ``rule_order``, a topological
    order of its rule graph); rules it does not name follow in ``rule_counts``' own order."""
    counts = dict(rule_counts or {})
    first = [r for r in dict.fromkeys(rule_order or []) if r in counts]
    return first + [r for r in counts if r not in first]
