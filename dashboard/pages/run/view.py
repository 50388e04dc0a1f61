"""The run page's typed view of one run summary: what every part of the page decides from.

A run summary (``snakedeck.projection.run_summary``: what the page is rendered from and what
the feed pushes) is a loose mapping; :class:`RunView` reads it once, so the layout and the live
callbacks agree on what a hand-run run may do, which rules there are and in which order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dashboard import progress
from snakedeck.states import InvalidTransition, JobState, RunState, check_resume, is_terminal

HAND_RUN_RERUN = "Started by hand, not from a registered workflow: snakedeck cannot run it again."
HAND_RUN_CANCEL = (
    "Started by hand: stop it where it runs (snakedeck only watches a hand-run Snakemake)."
)
NO_WORKFLOW_RERUN = "This run names no workflow, so it cannot be run again."
ENDED_CANCEL = "The run has ended: there is nothing to cancel."
HAND_RUN_RESUME = "Started by hand: resume it where it ran (snakedeck did not start it)."


@dataclass(frozen=True)
class RunView:
    run_id: str
    state: str
    workflow: str | None
    hand_run: bool
    cancel_requested: bool
    rules: tuple[str, ...]
    """Rules with jobs, in pipeline order."""
    rule_order: tuple[str, ...]
    summary: Mapping[str, Any]
    registered: bool = True
    """Whether the run's workflow is registered here (a rerun needs it)."""

    @classmethod
    def of(cls, summary: Mapping[str, Any], *, registered: bool = True) -> RunView:
        order = tuple(str(r) for r in summary.get("rule_order") or [])
        return cls(
            run_id=str(summary.get("run_id") or ""),
            state=str(summary.get("state") or RunState.UNKNOWN),
            workflow=summary.get("workflow") or None,
            hand_run=bool(summary.get("hand_run")),
            cancel_requested=bool(summary.get("cancel_requested")),
            rules=tuple(progress.ordered_rules(order, summary.get("rule_counts"))),
            rule_order=order,
            summary=summary,
            registered=registered,
        )

    @property
    def terminal(self) -> bool:
        return is_terminal(self.state)

    @property
    def progress(self) -> Mapping[str, Any]:
        return self.summary.get("progress") or {}

    @property
    def rule_counts(self) -> Mapping[str, Mapping[str, Any]]:
        return self.summary.get("rule_counts") or {}

    @property
    def failed(self) -> int:
        return progress.count(self.progress, JobState.FAILED)

    @property
    def why_no_rerun(self) -> str | None:
        """Why Rerun is not offered, or ``None`` when it is."""
        if self.hand_run:
            return HAND_RUN_RERUN
        if not self.workflow:
            return NO_WORKFLOW_RERUN
        if not self.registered:
            return (
                f"No workflow named {self.workflow!r} is registered here any more, so this run "
                "cannot be run again."
            )
        return None

    @property
    def why_no_resume(self) -> str | None:
        """Why Resume is not offered, or ``None`` when it is (the service decides the rest:
        ownership, and whether the run's runner is still there)."""
        if self.hand_run:
            return HAND_RUN_RESUME
        try:
            check_resume(self.state)
        except InvalidTransition as exc:
            return f"Not resumable: {exc}."
        return None

    @property
    def why_no_cancel(self) -> str | None:
        if self.hand_run:
            return HAND_RUN_CANCEL
        if self.terminal:
            return ENDED_CANCEL
        return None

    @property
    def cancelling(self) -> bool:
        """Whether the page says a cancel is under way (asked for, and the run not ended)."""
        return (self.cancel_requested or self.state == RunState.CANCELING) and not self.terminal
