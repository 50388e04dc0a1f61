"""The estimate of a running run's remaining time, shown under its progress bar.

The service makes it (``get_run``'s ``eta``: per-rule durations of earlier COMPLETE runs of the
workflow and this run's finished jobs); the page only says it is an estimate and on what it is
based. It is asked for again every few seconds while the run runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html

from dashboard.context import Ctx
from dashboard.formatting import format_duration, format_when
from dashboard.pages.run import ids
from snakedeck.service import ServiceError
from snakedeck.states import RunState

TICK_MS: Final = 3000


def estimate_text(eta: Mapping[str, Any] | None) -> Any:
    """``Estimate: about 1 min 05 s left (ends around …)`` and its basis, or nothing."""
    if not eta:
        return None
    left = format_duration(eta.get("seconds_remaining"))
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Badge("estimate", color="gray", variant="outline", size="sm"),
                    dmc.Text(
                        f"about {left} left (ends around {format_when(eta.get('estimated_end'))})",
                        size="sm",
                        className="sd-eta-left",
                    ),
                ],
                gap="xs",
            ),
            dmc.Text(f"Based on {eta.get('basis') or '—'}", size="xs", c="dimmed"),
        ],
        gap=2,
        className="sd-eta",
    )


def panel(run: Mapping[str, Any]) -> Any:
    """The first estimate (from the run as rendered) and the ticker that refreshes it."""
    running = run.get("state") == RunState.RUNNING
    return html.Div(
        [
            html.Div(estimate_text(run.get("eta")), id=ids.ETA),
            dcc.Interval(id=ids.ETA_TICK, interval=TICK_MS, disabled=not running),
        ]
    )


def register(app: dash.Dash, ctx: Ctx) -> None:
    # Two callbacks: the run summaries of the feed only switch the ticker on and off (no
    # service call, so a burst of them costs nothing), and only the ticker asks the service.
    # Fed straight from the summaries, a slow estimate would be superseded by the next one
    # in flight and never shown.
    @app.callback(
        Output(ids.ETA_TICK, "disabled"),
        Output(ids.ETA, "children", allow_duplicate=True),
        Input(ids.PHASE, "data"),
        State(ids.ETA_TICK, "disabled"),
        prevent_initial_call=True,
    )
    def follow(summary: dict[str, Any] | None, disabled: bool | None) -> tuple:
        running = (summary or {}).get("state") == RunState.RUNNING
        if running != bool(disabled):
            raise dash.exceptions.PreventUpdate  # as it is
        return not running, dash.no_update if running else None

    @app.callback(
        Output(ids.ETA, "children"),
        Input(ids.ETA_TICK, "n_intervals"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick: Any, run_id: str) -> Any:
        try:
            run = ctx.service.get_run(run_id)
        except ServiceError:
            raise dash.exceptions.PreventUpdate from None
        return estimate_text(run.get("eta"))
