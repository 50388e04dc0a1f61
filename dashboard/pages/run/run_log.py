"""The Log tab: a live, scrolling tail of Snakemake's own log for the run.

The page starts from the stored tail (read through the service when it is rendered, handed to
assets/snakedeck.js with the feed); after that the run's live feed brings the log chunks the
runner stores (``log`` messages, ``{stream, offset, next_offset, text}``) and the browser
appends them. When it notices a gap (a chunk beyond the end it has: the socket reconnected, or
a chunk came before the page subscribed) or the run ends, it asks the server for the stored
log from where it stands (``run-log-want``); the answer (``run-log-fill``) is appended the
same way, so nothing is shown twice or left out.
"""

from __future__ import annotations

from typing import Any, Final

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html

from dashboard.context import Ctx
from dashboard.pages.run import ids
from snakedeck.service import ServiceError
from snakedeck.store.artefacts import RUN_LOG

TAIL_BYTES: Final = 64 * 1024
"""What the page starts with."""
FILL_BYTES: Final = 256 * 1024
"""What one catch-up reads at most (the browser asks again while there is more)."""


def initial(ctx: Ctx, run_id: str) -> dict[str, Any]:
    """The stored tail of the log, for the feed: ``{offset, next_offset, size, text}``."""
    try:
        part = ctx.service.run_log(run_id, tail=TAIL_BYTES)
    except ServiceError:
        return {"offset": 0, "next_offset": 0, "size": 0, "text": ""}
    return {k: part[k] for k in ("offset", "next_offset", "size", "text")}


def panel() -> Any:
    return dmc.Stack(
        [
            dmc.Text(
                "Snakemake's output for this run, as it grows. It stays at the bottom unless "
                "you scroll up.",
                size="xs",
                c="dimmed",
                id=ids.RUN_LOG_NOTE,
            ),
            html.Pre("", id=ids.RUN_LOG, className="sd-log sd-run-log"),
            dcc.Store(id=ids.RUN_LOG_WANT),
            dcc.Store(id=ids.RUN_LOG_FILL),
            dcc.Store(id=ids.RUN_LOG_SINK),
        ],
        gap="xs",
    )


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.RUN_LOG_FILL, "data"),
        Input(ids.RUN_LOG_WANT, "data"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    def fill(want: dict[str, Any] | None, run_id: str) -> dict[str, Any]:
        if not want:
            raise dash.exceptions.PreventUpdate
        offset = max(0, int(want.get("offset") or 0))
        try:
            part = ctx.service.run_log(run_id, stream=RUN_LOG, offset=offset, limit=FILL_BYTES)
        except ServiceError:
            raise dash.exceptions.PreventUpdate from None
        return {
            "n": want.get("n"),
            **{k: part[k] for k in ("offset", "next_offset", "size", "text", "state")},
        }

    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "logFill"),
        Output(ids.RUN_LOG_SINK, "data"),
        Input(ids.RUN_LOG_FILL, "data"),
        prevent_initial_call=True,
    )
