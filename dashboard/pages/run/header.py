"""The run page's header: title, state, progress, failed jobs, and the Rerun/Cancel buttons.

Each piece is its own builder because the live callbacks (live.py) re-render only the pieces
whose part of the run summary changed.
"""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc
from dash import dcc, html

from dashboard.components import progress_bar, progress_words, state_badge, tag_badges
from dashboard.context import Ctx
from dashboard.formatting import format_duration, format_when, run_duration, wildcards_text
from dashboard.pages.run import ids
from dashboard.pages.run.view import RunView
from snakedeck.service import ServiceError
from snakedeck.states import JobState

FAILED_SHOWN = 5


def duration_text(view: RunView) -> str:
    return f"duration {format_duration(run_duration(view.summary))}"


def reason_text(view: RunView) -> str:
    reason = str(view.summary.get("state_reason") or "")
    return reason if reason != view.state else ""


def title(view: RunView) -> Any:
    run = view.summary
    version = run.get("workflow_version")
    meta: list[Any] = [
        dmc.Text(f"{view.workflow or '—'}{' v' + version if version else ''}", size="sm", fw=600),
        dmc.Badge("hand-run", color="gray", variant="outline", size="sm")
        if view.hand_run
        else None,
        dmc.Text(f"submitted {format_when(run.get('submitted_at'))}", size="sm", c="dimmed")
        if run.get("submitted_at")
        else None,
        dmc.Text(f"by {run.get('user') or '—'}", size="sm", c="dimmed"),
        dmc.Text(duration_text(view), size="sm", c="dimmed", id=ids.DURATION),
    ]
    if run.get("rerun_of"):
        meta.append(
            dcc.Link(
                dmc.Text(f"rerun of {run['rerun_of']}", size="sm"),
                href=f"/dashboard/runs/{run['rerun_of']}",
            )
        )
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Title(view.run_id, order=3, ff="monospace"),
                    html.Span(state_badge(view.state, size="lg"), id=ids.STATE),
                ],
                gap="sm",
            ),
            dmc.Group([m for m in meta if m is not None], gap="md"),
            dmc.Group(tag_badges(run.get("tags")), gap=4),
            dmc.Text(reason_text(view), size="sm", c="dimmed", id=ids.REASON),
        ],
        gap=6,
        id=ids.TITLE,
    )


def overall(view: RunView) -> Any:
    return dmc.Stack(
        [
            progress_bar(view.progress, size="xl"),
            progress_words(view.progress, size="sm", id=ids.PROGRESS_LABEL),
        ],
        gap=4,
    )


def _action(button: dmc.Button, why_not: str | None) -> Any:
    """A button, disabled with a tooltip saying why when it does not apply to this run (the
    wrapper receives the hover a disabled button would swallow)."""
    if why_not is None:
        return button
    button.disabled = True
    return dmc.Tooltip(
        html.Div(button, className="sd-disabled-action"),
        label=why_not,
        multiline=True,
        w=280,
        withArrow=True,
    )


def actions(view: RunView) -> Any:
    resume = dmc.Button("Resume", id=ids.RESUME, variant="light", color="teal")
    rerun = dmc.Button("Rerun", id=ids.RERUN, variant="default")
    cancel = dmc.Button("Cancel run", id=ids.CANCEL, color="red", variant="light")
    return dmc.Group(
        [
            _action(resume, view.why_no_resume),
            _action(rerun, view.why_no_rerun),
            _action(cancel, view.why_no_cancel),
        ],
        gap="xs",
    )


def failed_jobs(ctx: Ctx, view: RunView) -> Any:
    """The first failed jobs as buttons that open their detail, or nothing."""
    if not view.failed:
        return None
    try:
        jobs = ctx.service.list_jobs(
            view.run_id, state=JobState.FAILED.value, page_size=FAILED_SHOWN
        )["jobs"]
    except ServiceError:
        return None
    links = [
        dmc.Button(
            " · ".join(
                p
                for p in (
                    f"job {j['jobid']}",
                    j.get("rule") or "?",
                    wildcards_text(j.get("wildcards")),
                )
                if p
            ),
            id={"type": ids.FAILED_JOB, "jobid": str(j["jobid"])},
            variant="light",
            color="red",
            size="compact-sm",
        )
        for j in jobs
    ]
    more = view.failed - len(jobs)
    return dmc.Alert(
        dmc.Stack(
            [
                dmc.Group(links, gap="xs"),
                dmc.Text(f"and {more} more: filter the job table by state 'failed'", size="xs")
                if more > 0
                else None,
            ],
            gap=4,
        ),
        title=f"{view.failed} job{'s' if view.failed != 1 else ''} failed",
        color="red",
        variant="light",
    )


CANCEL_NOTE_TEXT = "Cancel requested: the run stops shortly."


def header(ctx: Ctx, view: RunView, estimate: Any = None) -> Any:
    """``estimate``: the ETA panel (eta_panel.py), shown under the progress bar."""
    return dmc.Paper(
        dmc.Stack(
            [
                dmc.Group(
                    [title(view), html.Div(actions(view), id=ids.ACTIONS)],
                    justify="space-between",
                    align="flex-start",
                ),
                html.Div(overall(view), id=ids.OVERALL),
                estimate,
                html.Div(failed_jobs(ctx, view), id=ids.FAILED),
                dmc.Alert(
                    CANCEL_NOTE_TEXT, id=ids.CANCEL_NOTE, color="orange", hide=not view.cancelling
                ),
                dmc.Alert(id=ids.ACTION_MSG, hide=True, withCloseButton=True),
            ],
            gap="sm",
        ),
        p="lg",
        withBorder=True,
    )
