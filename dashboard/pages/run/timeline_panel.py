"""The Timeline tab: built from the service the first time it is opened, then patched from the
job summaries of the live feed (never reloaded).

The feed's job summaries reach the server through ``timeline-feed`` (``{"seq", "jobs"}``, from
assets/snakedeck.js). The callback answers with ``timeline-ack`` = that ``seq``; the browser
keeps re-sending a job until a ``seq`` covering it is acknowledged, so an update Dash drops
(a newer one superseding a callback in flight) is never lost.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, Patch, State, dcc, html

from dashboard import timeline
from dashboard.context import Ctx
from dashboard.pages.run import ids
from snakedeck.service import ServiceError

PAGE = 500


def panel(usage_chart: Any) -> Any:
    """The jobs' bars, then the run's CPU and memory over time."""
    graph = dcc.Graph(
        id=ids.GANTT, config={"displaylogo": False, "responsive": True}, figure=placeholder()
    )
    return html.Div(
        [
            # Only the first build takes long enough to show the spinner; patches do not.
            dcc.Loading(graph, type="dot", delay_show=400),
            dmc.Text("CPU and memory", fw=600, mt="sm"),
            usage_chart,
            dcc.Store(id=ids.TIMELINE_STATE),
            dcc.Store(id=ids.TIMELINE_FEED),
            dcc.Store(id=ids.TIMELINE_ACK),
            dcc.Store(id=ids.TIMELINE_SINK),
        ]
    )


def placeholder() -> dict[str, Any]:
    return {
        "data": [],
        "layout": {
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "height": 260,
        },
    }


def started_jobs(ctx: Ctx, run_id: str) -> tuple[list[dict[str, Any]], int]:
    """Up to :data:`timeline.MAX_BARS` jobs in start order, and how many more there are."""
    jobs: list[dict[str, Any]] = []
    token = None
    total = 0
    while len(jobs) < timeline.MAX_BARS:
        page = ctx.service.list_jobs(
            run_id,
            sort="started_at",
            page_size=min(PAGE, timeline.MAX_BARS - len(jobs)),
            page_token=token,
        )
        jobs.extend(page["jobs"])
        total = int(page["total"])
        token = page["next_page_token"]
        if not token:
            break
    return jobs, max(0, total - len(jobs))


def _ack(feed: dict[str, Any] | None, state: timeline.TimelineState | None) -> dict[str, Any]:
    return {"seq": (feed or {}).get("seq", 0), "running": len((state or {}).get("running") or {})}


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.GANTT, "figure"),
        Output(ids.TIMELINE_STATE, "data"),
        Output(ids.TIMELINE_ACK, "data"),
        Input(ids.TABS, "value"),
        Input(ids.TIMELINE_FEED, "data"),
        # A rule order learnt after the last patch (the feed's job summaries and the run's
        # summary travel apart) still reaches the lanes.
        Input(ids.RULE_ORDER, "data"),
        State(ids.TIMELINE_STATE, "data"),
        State(ids.RUN_ID, "data"),
    )
    def draw(
        tab: str, feed: dict[str, Any] | None, rules: list[str] | None, state: Any, run_id: str
    ) -> tuple:
        order = list(rules or [])
        if state is None:
            if tab != "timeline":  # not drawn yet: it will be read whole when first opened
                return dash.no_update, dash.no_update, _ack(feed, None)
            try:
                jobs, left_out = started_jobs(ctx, run_id)
            except ServiceError:
                raise dash.exceptions.PreventUpdate from None
            figure, state = timeline.build(jobs, order, left_out=left_out)
            return figure, state, _ack(feed, state)
        patch = Patch()
        if dash.ctx.triggered_id == ids.RULE_ORDER:
            if order == state.get("order"):
                raise dash.exceptions.PreventUpdate
            timeline.apply_jobs(patch, state, [], rule_order=order)
            return patch, state, dash.no_update  # no feed drawn: nothing to acknowledge
        if dash.ctx.triggered_id != ids.TIMELINE_FEED or not feed:
            raise dash.exceptions.PreventUpdate
        timeline.apply_jobs(patch, state, feed.get("jobs") or [], rule_order=order)
        return patch, state, _ack(feed, state)

    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "timelineAck"),
        Output(ids.TIMELINE_SINK, "data"),
        Input(ids.TIMELINE_ACK, "data"),
        prevent_initial_call=True,
    )
