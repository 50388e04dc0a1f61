"""The job table: an AG Grid over the service's keyset pages, with filters.

Rows come from the service a block at a time (the infinite row model); where each block's page
starts is remembered per browser tab in a ``dcc.Store`` (dashboard/paging.py), never in the
server. Live changes to jobs already in the grid are patched in place by assets/snakedeck.js.
"""

from __future__ import annotations

import json
from typing import Any

import dash
import dash_ag_grid as dag
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc

from dashboard import paging
from dashboard.context import Ctx
from dashboard.pages.run import ids
from dashboard.pages.run.resources import requested_text
from dashboard.pages.run.view import RunView
from dashboard.theme import job_state_color, job_state_label
from snakedeck.projection import job_summary
from snakedeck.service import ServiceError
from snakedeck.states import JOB_STATES_ORDER

BLOCK = 100
SORT_FIELDS = {"jobid": "jobid", "duration": "duration", "started_at": "started_at"}

STATE_STYLE = {
    "styleConditions": [
        {
            "condition": f"params.value === '{s.value}'",
            "style": {
                "color": f"var(--mantine-color-{job_state_color(s)}-text)",
                "fontWeight": 600,
            },
        }
        for s in JOB_STATES_ORDER
    ]
}

COLUMNS = [
    {"field": "jobid", "headerName": "Job", "sortable": True, "width": 90, "sort": "asc"},
    {"field": "rule", "headerName": "Rule", "sortable": False, "flex": 1, "minWidth": 120},
    {
        "field": "state",
        "headerName": "State",
        "sortable": False,
        "width": 110,
        "cellStyle": STATE_STYLE,
        "valueFormatter": {"function": "params.value ? params.value.replace('_', ' ') : ''"},
    },
    {
        "field": "wildcards",
        "headerName": "Wildcards",
        "sortable": False,
        "flex": 2,
        "minWidth": 160,
        "valueFormatter": {"function": "sdWildcards(params.value)"},
    },
    {
        "field": "started_at",
        "headerName": "Started (UTC)",
        "sortable": True,
        "width": 130,
        "valueFormatter": {"function": "sdTime(params.value)"},
    },
    {
        "field": "duration",
        "headerName": "Duration",
        "sortable": True,
        # Someone sorting by duration looks for the longest jobs: one click, longest first.
        "sortingOrder": ["desc", "asc", None],
        "width": 120,
        "valueFormatter": {"function": "sdDuration(params.value)"},
    },
    {"field": "threads", "headerName": "Threads", "sortable": False, "width": 95},
    {
        "field": "requested",
        "headerName": "Requested",
        "sortable": False,
        "width": 170,
        "headerTooltip": "Resources the job asked Snakemake for",
    },
    {
        "field": "resources_used.cpu_seconds",
        "colId": "cpu_seconds",
        "headerName": "CPU s",
        "sortable": False,
        "width": 95,
        "headerTooltip": "CPU seconds the job's processes used (measured)",
        "valueFormatter": {"function": "sdNumber(params.value, 1)"},
    },
    {
        "field": "resources_used.peak_rss_bytes",
        "colId": "peak_rss",
        "headerName": "Peak RSS",
        "sortable": False,
        "width": 110,
        "headerTooltip": "Peak resident memory of the job's processes (measured)",
        "valueFormatter": {"function": "sdBytes(params.value)"},
    },
    {
        "field": "resources_used.wall_seconds",
        "colId": "wall_seconds",
        "headerName": "Wall",
        "sortable": False,
        "width": 105,
        "headerTooltip": "Wall time from the job's start to its end (measured)",
        "valueFormatter": {"function": "sdDuration(params.value)"},
    },
    # Jobs an executor plugin ran on a cluster (SNAKEDECK_EXECUTOR=slurm); empty otherwise.
    {"field": "cluster_job_id", "headerName": "Cluster job", "sortable": False, "width": 115},
    {"field": "node", "headerName": "Node", "sortable": False, "width": 110},
]


def sort_from_model(model: list[dict[str, Any]] | None) -> str:
    """AG Grid's sort model → one of the service's ``sort`` values."""
    for item in model or []:
        name = SORT_FIELDS.get(item.get("colId"))
        if name:
            return ("-" if item.get("sort") == "desc" else "") + name
    return "jobid"


def rule_options(view: RunView) -> list[str]:
    return list(view.rules)


def filters(view: RunView) -> Any:
    return dmc.Group(
        [
            dmc.Select(
                id=ids.FILTER_RULE,
                placeholder="Any rule",
                data=rule_options(view),
                clearable=True,
                searchable=True,
                w=180,
            ),
            dmc.Select(
                id=ids.FILTER_STATE,
                placeholder="Any state",
                data=[{"value": s.value, "label": job_state_label(s)} for s in JOB_STATES_ORDER],
                clearable=True,
                w=150,
            ),
            dmc.TextInput(
                id=ids.FILTER_TEXT, placeholder="Wildcards, rule or job id…", debounce=300, w=240
            ),
            dmc.Text("Click a row for its command and log.", size="xs", c="dimmed"),
        ],
        gap="sm",
    )


def grid() -> Any:
    return dag.AgGrid(
        id=ids.GRID,
        columnDefs=COLUMNS,
        rowModelType="infinite",
        getRowId="params.data.jobid",
        defaultColDef={"resizable": True, "suppressHeaderMenuButton": True},
        dashGridOptions={
            "rowBuffer": 0,
            "cacheBlockSize": BLOCK,
            "maxBlocksInCache": 20,
            "infiniteInitialRowCount": 1,
            "maxConcurrentDatasourceRequests": 2,
            "rowHeight": 34,
            "suppressCellFocus": True,
            "animateRows": False,
        },
        style={"height": "520px", "width": "100%"},
    )


def panel(view: RunView) -> Any:
    return dmc.Stack(
        [filters(view), grid(), dcc.Store(id=ids.GRID_MARKS), dcc.Store(id=ids.GRID_SINK)],
        gap="sm",
        pt="sm",
    )


def rows(
    ctx: Ctx, run_id: str, request: dict[str, Any], listing: dict[str, Any], marks: Any
) -> tuple[dict[str, Any], paging.PageMarks | None]:
    """One block of rows for the grid, and this tab's updated paging marks."""
    start = int(request.get("startRow") or 0)
    end = int(request.get("endRow") or start + BLOCK)
    sort = sort_from_model(request.get("sortModel"))
    key = json.dumps({**listing, "run_id": run_id, "sort": sort}, sort_keys=True)

    def fetch(size: int, token: str | None) -> dict[str, Any]:
        return ctx.service.list_jobs(run_id, **listing, sort=sort, page_size=size, page_token=token)

    try:
        jobs, total, marks = paging.window(marks, key, start, end, fetch)
    except ServiceError:
        return {"rowData": [], "rowCount": 0}, None
    data = [
        {
            **job_summary(j),
            "jobid": str(j["jobid"]),
            "requested": requested_text(j.get("resources")),
        }
        for j in jobs
    ]
    return {"rowData": data, "rowCount": total}, marks


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.GRID, "getRowsResponse"),
        Output(ids.GRID_MARKS, "data"),
        Input(ids.GRID, "getRowsRequest"),
        State(ids.RUN_ID, "data"),
        State(ids.FILTER_RULE, "value"),
        State(ids.FILTER_STATE, "value"),
        State(ids.FILTER_TEXT, "value"),
        State(ids.GRID_MARKS, "data"),
    )
    def grid_rows(
        request: dict[str, Any] | None,
        run_id: str,
        rule: str | None,
        state: str | None,
        q: str | None,
        marks: Any,
    ) -> tuple[dict[str, Any], Any]:
        if not request:
            raise dash.exceptions.PreventUpdate
        listing = {"rule": rule or None, "state": state or None, "q": (q or "").strip() or None}
        response, marks = rows(ctx, run_id, request, listing, marks)
        return response, marks if marks is not None else dash.no_update

    # A new filter: the grid forgets its rows and asks again from the top.
    app.clientside_callback(
        """function (rule, state, q) {
            try {
                var api = window.dash_ag_grid.getApi("jobs-grid");
                api.purgeInfiniteCache();
                api.ensureIndexVisible(0, "top");
            } catch (err) { /* the grid is not ready yet: it will ask by itself */ }
            return Date.now();
        }""",
        Output(ids.GRID_SINK, "data"),
        Input(ids.FILTER_RULE, "value"),
        Input(ids.FILTER_STATE, "value"),
        Input(ids.FILTER_TEXT, "value"),
        prevent_initial_call=True,
    )
