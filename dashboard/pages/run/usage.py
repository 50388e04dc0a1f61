"""The run's measured CPU and memory over time (the runner's samples of its processes, kept
on the run as ``resource_series``): two lines on the Timeline tab, and the latest and peak
figures as one line of text on the page's side; redrawn on the estimate's ticker while the run
runs, and once more when it has ended.

The chart lives on a tab that is mounted only when opened: plotly.js (4.7 MB) then loads only
for someone who looks at a chart, not on every run page's first paint
(``benchmarks/profile_dashboard.py``, a 1,000-job run: first job rows median 2.10 s → 1.05 s)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html

from dashboard.context import Ctx
from dashboard.pages.run import ids
from dashboard.theme import MANTINE_HEX
from snakedeck.service import ServiceError
from snakedeck.states import is_terminal


def _points(series: Mapping[str, Any] | None) -> list[Any]:
    """The samples that carry a time, a CPU % and an RSS."""
    return [p for p in (series or {}).get("points") or [] if len(p) >= 3]


def figure(series: Mapping[str, Any] | None) -> dict[str, Any]:
    """CPU % (left axis) and resident memory in MB (right axis) per sampled bucket."""
    points = _points(series)
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


def latest_and_peak(series: Mapping[str, Any] | None) -> str:
    """The latest sample and the peak memory, as one line (the side card's)."""
    points = _points(series)
    if not points:
        return "No samples yet."
    last = points[-1]
    peak = max(p[2] for p in points)
    return (
        f"Last sample: CPU {last[1]:.0f} %, memory {last[2] / 1e6:,.0f} MB; "
        f"peak memory {peak / 1e6:,.0f} MB. Over time: the Timeline tab."
    )


def side(run: Mapping[str, Any]) -> Any:
    """The side card's text, with what the redraw last saw."""
    return html.Div(
        [
            dmc.Text(latest_and_peak(run.get("resource_series")), id=ids.USAGE_SUMMARY, size="sm"),
            dcc.Store(id=ids.USAGE_SHOWN, data=run.get("state")),
        ]
    )


def chart(run: Mapping[str, Any]) -> Any:
    """The Timeline tab's chart."""
    return dcc.Graph(
        id=ids.USAGE,
        figure=figure(run.get("resource_series")),
        config={"displaylogo": False, "responsive": True},
    )


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.USAGE, "figure"),
        Output(ids.USAGE_SUMMARY, "children"),
        Output(ids.USAGE_SHOWN, "data"),
        Input(ids.ETA_TICK, "n_intervals"),
        Input(ids.PHASE, "data"),
        State(ids.USAGE_SHOWN, "data"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    def redraw(_tick: Any, summary: Any, shown: Any, run_id: str) -> tuple:
        state = (summary or {}).get("state")
        if dash.ctx.triggered_id == ids.PHASE and (state == shown or not is_terminal(state)):
            raise dash.exceptions.PreventUpdate  # while it runs, the ticker redraws it
        try:
            run = ctx.service.get_run(run_id)
        except ServiceError:
            raise dash.exceptions.PreventUpdate from None
        series = run.get("resource_series")
        return figure(series), latest_and_peak(series), state
