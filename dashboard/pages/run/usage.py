"""The run's measured CPU and memory over time (the runner's samples of its processes, kept
on the run as ``resource_series``), drawn as two lines; redrawn on the estimate's ticker while
the run runs, and once more when it has ended."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from dashboard.context import Ctx
from dashboard.pages.run import ids
from dashboard.theme import MANTINE_HEX
from snakedeck.service import ServiceError
from snakedeck.states import is_terminal


def figure(series: Mapping[str, Any] | None) -> dict[str, Any]:
    """CPU % (left axis) and resident memory in MB (right axis) per sampled bucket."""
    points = [p for p in (series or {}).get("points") or [] if len(p) >= 3]
    times = [datetime.fromtimestamp(p[0], UTC).strftime("%Y-%m-%d %H:%M:%S") for p in points]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "CPU %",
                "x": times,
                "y": [round(p[1], 1) for p in points],
                "line": {"color": MANTINE_HEX["blue"]},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "RSS MB",
                "x": times,
                "yaxis": "y2",
                "y": [round(p[2] / 1e6, 1) for p in points],
                "line": {"color": MANTINE_HEX["orange"]},
            },
        ],
        "layout": {
            "height": 220,
            "margin": {"l": 44, "r": 44, "t": 10, "b": 30},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "showlegend": True,
            "legend": {"orientation": "h", "y": -0.25},
            "xaxis": {"type": "date"},
            "yaxis": {"title": {"text": "CPU %"}, "rangemode": "tozero"},
            "yaxis2": {
                "title": {"text": "MB"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
            },
            "annotations": []
            if points
            else [
                {
                    "text": "No samples yet",
                    "showarrow": False,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                }
            ],
        },
    }


def panel(run: Mapping[str, Any]) -> Any:
    return html.Div(
        [
            dcc.Graph(
                id=ids.USAGE,
                figure=figure(run.get("resource_series")),
                config={"displaylogo": False, "responsive": True},
            ),
            dcc.Store(id=ids.USAGE_SHOWN, data=run.get("state")),
        ]
    )


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.USAGE, "figure"),
        Output(ids.USAGE_SHOWN, "data"),
        Input(ids.ETA_TICK, "n_intervals"),
        Input(ids.LIVE, "data"),
        State(ids.USAGE_SHOWN, "data"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    def redraw(_tick: Any, summary: Any, shown: Any, run_id: str) -> tuple:
        state = (summary or {}).get("state")
        if dash.ctx.triggered_id == ids.LIVE and (state == shown or not is_terminal(state)):
            raise dash.exceptions.PreventUpdate  # while it runs, the ticker redraws it
        try:
            run = ctx.service.get_run(run_id)
        except ServiceError:
            raise dash.exceptions.PreventUpdate from None
        return figure(run.get("resource_series")), state
