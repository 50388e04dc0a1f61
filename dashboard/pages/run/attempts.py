"""The run's attempts: the first execution and one more per resume, each with its state, when,
where and who asked; re-read from the service when the run's attempt or state moves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html

from dashboard.components import state_badge
from dashboard.context import Ctx
from dashboard.formatting import format_when
from dashboard.pages.run import ids
from snakedeck.service import ServiceError


def _key(run: Mapping[str, Any]) -> list[Any]:
    return [run.get("attempt"), run.get("state")]


def attempt_row(record: Mapping[str, Any]) -> Any:
    when = format_when(record.get("started_at") or record.get("requested_at"))
    end = format_when(record.get("finished_at")) if record.get("finished_at") else "…"
    details = [
        f"{when} → {end}",
        f"runner {record['runner']}" if record.get("runner") else None,
        f"asked by {record['requested_by']}" if record.get("requested_by") else None,
    ]
    reason = str(record.get("reason") or "")
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Text(f"attempt {record.get('attempt')}", fw=600, size="sm"),
                    state_badge(record.get("state"), size="sm"),
                ],
                gap="xs",
            ),
            dmc.Text(" · ".join(d for d in details if d), size="xs", c="dimmed"),
            dmc.Text(reason, size="xs") if reason and reason != record.get("state") else None,
        ],
        gap=2,
        className="sd-attempt",
    )


def attempts_list(run: Mapping[str, Any]) -> Any:
    records = list(run.get("attempts") or [])
    if not records:
        return dmc.Text("Not started yet.", size="sm", c="dimmed")
    return dmc.Stack([attempt_row(r) for r in reversed(records)], gap="sm")


def panel(run: Mapping[str, Any]) -> Any:
    return html.Div(
        [
            html.Div(attempts_list(run), id=ids.ATTEMPTS),
            dcc.Store(id=ids.ATTEMPTS_SHOWN, data=_key(run)),
        ]
    )


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.ATTEMPTS, "children"),
        Output(ids.ATTEMPTS_SHOWN, "data"),
        Input(ids.PHASE, "data"),
        State(ids.ATTEMPTS_SHOWN, "data"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    def refresh(summary: dict[str, Any] | None, shown: Any, run_id: str) -> tuple:
        if not summary or _key(summary) == shown:
            raise dash.exceptions.PreventUpdate
        try:
            run = ctx.service.get_run(run_id)
        except ServiceError:
            raise dash.exceptions.PreventUpdate from None
        return attempts_list(run), _key(summary)
