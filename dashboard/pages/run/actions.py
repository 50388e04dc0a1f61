"""Cancel, Rerun and Resume: the confirmation dialog and the write callbacks (token checked
once, by :func:`dashboard.context.write_callback`)."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State

from dashboard.context import Ctx, write_callback
from dashboard.pages.run import ids
from snakedeck.auth import Principal
from snakedeck.service import ServiceError


def confirm_modal() -> Any:
    return dmc.Modal(
        id=ids.CANCEL_MODAL,
        title="Cancel this run?",
        children=dmc.Stack(
            [
                dmc.Text(
                    "Running jobs are stopped and the run ends as CANCELED. Finished outputs "
                    "stay where they are.",
                    size="sm",
                ),
                dmc.Group(
                    [
                        dmc.Button("Keep running", id=ids.CANCEL_NO, variant="default"),
                        dmc.Button("Cancel run", id=ids.CANCEL_YES, color="red"),
                    ],
                    justify="flex-end",
                ),
            ]
        ),
    )


def _message(text: str) -> tuple[str, str, bool]:
    """The action alert's children, color and hide."""
    return text, "red", False


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.CANCEL_MODAL, "opened"),
        Input(ids.CANCEL, "n_clicks"),
        Input(ids.CANCEL_NO, "n_clicks"),
        prevent_initial_call=True,
    )
    def confirm(opened: Any, no: Any) -> bool:
        if not (opened or no):
            raise dash.exceptions.PreventUpdate
        return dash.ctx.triggered_id == ids.CANCEL

    @write_callback(
        app,
        ctx,
        Output(ids.ACTION_MSG, "children", allow_duplicate=True),
        Output(ids.ACTION_MSG, "color", allow_duplicate=True),
        Output(ids.ACTION_MSG, "hide", allow_duplicate=True),
        Output(ids.CANCEL_NOTE, "hide", allow_duplicate=True),
        Output(ids.CANCEL_MODAL, "opened", allow_duplicate=True),
        Input(ids.CANCEL_YES, "n_clicks"),
        State(ids.RUN_ID, "data"),
        denied=lambda message, *_: (*_message(message), dash.no_update, False),
    )
    def cancel(by: Principal, _clicks: Any, run_id: str) -> tuple:
        try:
            ctx.service.cancel_run(run_id, by=by)
        except ServiceError as exc:
            return *_message(exc.detail), dash.no_update, False
        return dash.no_update, dash.no_update, True, False, False

    @write_callback(
        app,
        ctx,
        Output(ids.ACTION_MSG, "children", allow_duplicate=True),
        Output(ids.ACTION_MSG, "color", allow_duplicate=True),
        Output(ids.ACTION_MSG, "hide", allow_duplicate=True),
        Output("url", "href", allow_duplicate=True),
        Input(ids.RERUN, "n_clicks"),
        State(ids.RUN_ID, "data"),
        denied=lambda message, *_: (*_message(message), dash.no_update),
    )
    def rerun(by: Principal, _clicks: Any, run_id: str) -> tuple:
        try:
            created = ctx.service.rerun_run(run_id, by=by)
        except ServiceError as exc:
            return *_message(exc.detail), dash.no_update
        return dash.no_update, dash.no_update, True, f"/dashboard/runs/{created['run_id']}"

    register_resume(app, ctx)


def register_resume(app: dash.Dash, ctx: Ctx) -> None:
    """Resume: the service checks the role, the ownership and whether the run's runner is
    still there; a refusal is shown with its reason (the API's 409 detail)."""

    @write_callback(
        app,
        ctx,
        Output(ids.ACTION_MSG, "children", allow_duplicate=True),
        Output(ids.ACTION_MSG, "color", allow_duplicate=True),
        Output(ids.ACTION_MSG, "hide", allow_duplicate=True),
        Input(ids.RESUME, "n_clicks"),
        State(ids.RUN_ID, "data"),
        denied=lambda message, *_: _message(message),
    )
    def resume(by: Principal, _clicks: Any, run_id: str) -> tuple:
        try:
            started = ctx.service.resume_run(run_id, by=by)
        except ServiceError as exc:
            return _message(exc.detail)
        text = (
            f"Resumed: attempt {started['attempt']} is queued on runner {started['runner']}; "
            "finished jobs are not redone."
        )
        return text, "teal", False
