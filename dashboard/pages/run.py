"""One run, live: progress, per-rule bars, rule graph, job table, timeline, events, job detail.

The page is rendered once from the service; after that the WebSocket feed (see
``assets/snakedeck.js``) pushes the run summary into ``run-live`` at most a few times a second,
patches job rows in the grid in place, and nudges ``run-slow`` (timeline) every few seconds.
"""

from __future__ import annotations

import json
from typing import Any

import dash
import dash_ag_grid as dag
import dash_cytoscape as cyto
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html

from dashboard import figures
from dashboard.components import (
    job_badge,
    progress_bar,
    progress_text,
    rule_progress,
    state_badge,
    tag_badges,
)
from dashboard.paging import OffsetCursor
from dashboard.theme import (
    JOB_STATES,
    format_duration,
    format_when,
    is_terminal,
    run_duration,
)
from snakedeck.projection import job_summary, run_summary
from snakedeck.service import NotFound, ServiceError

INITIAL_EVENTS = 200
GANTT_MAX_JOBS = 3000
GRID_BLOCK = 100
_cursor = OffsetCursor()

STATE_CLASS_RULES = {f"sd-state-cell sd-state-{s}": f"params.value === '{s}'" for s in JOB_STATES}

COLUMNS = [
    {"field": "jobid", "headerName": "Job", "sortable": True, "width": 90, "sort": "asc"},
    {"field": "rule", "headerName": "Rule", "sortable": False, "flex": 1, "minWidth": 120},
    {
        "field": "state",
        "headerName": "State",
        "sortable": False,
        "width": 110,
        "cellClassRules": STATE_CLASS_RULES,
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
        "width": 120,
        "valueFormatter": {"function": "sdDuration(params.value)"},
    },
    {"field": "threads", "headerName": "Threads", "sortable": False, "width": 95},
]
SORT_FIELDS = {"jobid": "jobid", "duration": "duration", "started_at": "started_at"}


def sort_from_model(model: list[dict[str, Any]] | None) -> str:
    """AG Grid's sort model → one of the service's ``sort`` values."""
    for item in model or []:
        name = SORT_FIELDS.get(item.get("colId"))
        if name:
            return ("-" if item.get("sort") == "desc" else "") + name
    return "jobid"


def layout(ctx: Any, run_id: str) -> tuple[Any, Any]:
    try:
        run = ctx.service.get_run(run_id)
    except NotFound as exc:
        return dmc.Alert(exc.detail, title="No such run", color="yellow"), None
    except ServiceError as exc:
        return dmc.Alert(exc.detail, title="Run unavailable", color="red"), None
    summary = run_summary(run)
    last_seq = int(run.get("last_seq") or 0)
    try:
        events = ctx.service.list_events(
            run_id, after_seq=max(0, last_seq - INITIAL_EVENTS), limit=INITIAL_EVENTS
        )["events"]
    except ServiceError:
        events = []
    feed = {
        "kind": "run",
        "path": f"/ws/runs/{run_id}",
        "run_id": run_id,
        "after_seq": max([last_seq, *[int(e["seq"]) for e in events]]),
        "events": events,
    }
    rules = sorted((run.get("rule_counts") or {}).keys())
    elements = figures.rule_graph_elements(run.get("rulegraph"), summary.get("rule_counts"))

    actions = dmc.Group(
        [
            dmc.Button("Rerun", id="run-rerun", variant="default"),
            dmc.Button(
                "Cancel run",
                id="run-cancel",
                color="red",
                variant="light",
                disabled=is_terminal(run.get("state")),
            ),
        ],
        gap="xs",
    )
    header = dmc.Paper(
        dmc.Stack(
            [
                dmc.Group(
                    [html.Div(_title(summary), id="run-title"), actions],
                    justify="space-between",
                    align="flex-start",
                ),
                html.Div(_overall(summary), id="run-overall"),
                html.Div(id="run-failed"),
                dmc.Alert(id="run-action-msg", hide=True, withCloseButton=True),
            ],
            gap="sm",
        ),
        p="lg",
        withBorder=True,
    )
    rules_card = dmc.Paper(
        dmc.Stack(
            [
                dmc.Text("Rules", fw=600),
                html.Div(rule_progress(summary.get("rule_counts")), id="rule-progress"),
            ],
            gap="sm",
        ),
        p="md",
        withBorder=True,
    )
    graph_card = dmc.Paper(
        dmc.Stack(
            [
                dmc.Text("Rule graph", fw=600),
                cyto.Cytoscape(
                    id="rule-graph",
                    elements=elements,
                    layout=figures.graph_layout(elements),
                    stylesheet=figures.cytoscape_stylesheet(),
                    style={"width": "100%", "height": "260px"},
                    userZoomingEnabled=True,
                    minZoom=0.3,
                    maxZoom=2.5,
                ),
            ],
            gap="sm",
        ),
        p="md",
        withBorder=True,
    )
    job_filters = dmc.Group(
        [
            dmc.Select(
                id="job-rule",
                placeholder="Any rule",
                data=rules,
                clearable=True,
                searchable=True,
                w=180,
            ),
            dmc.Select(
                id="job-state",
                placeholder="Any state",
                data=list(JOB_STATES),
                clearable=True,
                w=150,
            ),
            dmc.TextInput(
                id="job-q", placeholder="Wildcards, rule or job id…", debounce=300, w=240
            ),
            dmc.Text("Click a row for its command and log.", size="xs", c="dimmed"),
        ],
        gap="sm",
    )
    grid = dag.AgGrid(
        id="jobs-grid",
        columnDefs=COLUMNS,
        rowModelType="infinite",
        getRowId="params.data.jobid",
        defaultColDef={"resizable": True, "suppressHeaderMenuButton": True},
        dashGridOptions={
            "rowBuffer": 0,
            "cacheBlockSize": GRID_BLOCK,
            "maxBlocksInCache": 20,
            "infiniteInitialRowCount": 1,
            "maxConcurrentDatasourceRequests": 2,
            "rowHeight": 34,
            "suppressCellFocus": True,
            "animateRows": False,
        },
        style={"height": "520px", "width": "100%"},
    )
    tabs = dmc.Tabs(
        [
            dmc.TabsList(
                [
                    dmc.TabsTab("Jobs", value="jobs"),
                    dmc.TabsTab("Timeline", value="timeline"),
                    dmc.TabsTab("Events", value="events"),
                ]
            ),
            dmc.TabsPanel(dmc.Stack([job_filters, grid], gap="sm", pt="sm"), value="jobs"),
            dmc.TabsPanel(
                dcc.Loading(
                    dcc.Graph(
                        id="gantt",
                        config={"displaylogo": False, "responsive": True},
                        figure=_empty_fig(),
                    ),
                    type="dot",
                ),
                value="timeline",
                pt="sm",
            ),
            dmc.TabsPanel(
                html.Div(id="events-log", className="sd-events"), value="events", pt="sm"
            ),
        ],
        id="run-tabs",
        value="jobs",
        keepMounted=True,
    )
    drawer = dmc.Drawer(
        id="job-drawer",
        position="right",
        size="xl",
        padding="md",
        title=html.Span(id="job-drawer-title"),
        children=html.Div(id="job-detail"),
    )
    confirm = dmc.Modal(
        id="cancel-modal",
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
                        dmc.Button("Keep running", id="cancel-no", variant="default"),
                        dmc.Button("Cancel run", id="cancel-yes", color="red"),
                    ],
                    justify="flex-end",
                ),
            ]
        ),
    )
    body = dmc.Stack(
        [
            dcc.Store(id="run-id", data=run_id),
            dcc.Store(id="run-live", data=summary),
            dcc.Store(id="run-slow"),
            dcc.Store(id="run-rulegraph", data=run.get("rulegraph")),
            dcc.Store(id="grid-sink"),
            header,
            dmc.Grid(
                [
                    dmc.GridCol(
                        dmc.Stack([rules_card, graph_card], gap="md"),
                        span={"base": 12, "lg": 4},
                        order={"base": 2, "lg": 1},
                    ),
                    dmc.GridCol(
                        dmc.Paper(tabs, p="md", withBorder=True),
                        span={"base": 12, "lg": 8},
                        order={"base": 1, "lg": 2},
                    ),
                ],
                gutter="md",
            ),
            drawer,
            confirm,
        ],
        gap="md",
    )
    return body, feed


def _empty_fig() -> dict[str, Any]:
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


def _title(run: dict[str, Any]) -> Any:
    wf = run.get("workflow") or "—"
    version = run.get("workflow_version")
    meta = [
        dmc.Text(f"{wf}{' v' + version if version else ''}", size="sm", fw=600),
        dmc.Text(f"submitted {format_when(run.get('submitted_at'))}", size="sm", c="dimmed"),
        dmc.Text(f"by {run.get('user') or '—'}", size="sm", c="dimmed"),
        dmc.Text(
            f"duration {format_duration(run_duration(run))}", size="sm", c="dimmed", id="run-dur"
        ),
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
                    dmc.Title(run["run_id"], order=3, ff="monospace"),
                    html.Span(state_badge(run.get("state"), size="lg"), id="run-state"),
                ],
                gap="sm",
            ),
            dmc.Group(meta, gap="md"),
            dmc.Group(tag_badges(run.get("tags")), gap=4),
            dmc.Text(run.get("state_reason") or "", size="sm", c="dimmed")
            if run.get("state_reason") and run.get("state_reason") != run.get("state")
            else None,
        ],
        gap=6,
    )


def _overall(run: dict[str, Any]) -> Any:
    p = run.get("progress") or {}
    return dmc.Stack(
        [
            progress_bar(p, size="xl"),
            dmc.Text(progress_text(p), size="sm", id="run-progress-label"),
        ],
        gap=4,
    )


def _failed_jobs(ctx: Any, run: dict[str, Any]) -> Any:
    failed = int((run.get("progress") or {}).get("failed") or 0)
    if not failed:
        return None
    try:
        jobs = ctx.service.list_jobs(run["run_id"], state="failed", page_size=5)["jobs"]
    except ServiceError:
        return None
    links = [
        dmc.Button(
            f"job {j['jobid']} · {j.get('rule') or '?'}"
            + (
                " · " + ", ".join(f"{k}={v}" for k, v in (j.get("wildcards") or {}).items())
                if j.get("wildcards")
                else ""
            ),
            id={"type": "failed-job", "jobid": str(j["jobid"])},
            variant="light",
            color="red",
            size="compact-sm",
        )
        for j in jobs
    ]
    more = failed - len(jobs)
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
        title=f"{failed} job{'s' if failed != 1 else ''} failed",
        color="red",
        variant="light",
    )


def _kv(label: str, value: Any) -> Any:
    return dmc.Group(
        [dmc.Text(label, size="sm", c="dimmed", w=110), html.Div(value, style={"flex": 1})],
        align="flex-start",
        wrap="nowrap",
        gap="sm",
    )


def _files(value: Any) -> Any:
    if isinstance(value, dict):
        value = [f"{k}: {v}" for k, v in value.items()]
    if isinstance(value, str):
        value = [value]
    if not value:
        return dmc.Text("—", size="sm")
    return dmc.Stack([dmc.Code(str(v)) for v in value], gap=2)


def job_detail(job: dict[str, Any], logs: list[dict[str, Any]]) -> Any:
    wildcards = job.get("wildcards") or {}
    resources = job.get("resources") or {}
    error = job.get("error") or {}
    rows = [
        _kv("State", job_badge(job.get("state"))),
        _kv(
            "Wildcards",
            dmc.Text(", ".join(f"{k}={v}" for k, v in wildcards.items()) or "—", size="sm"),
        ),
        _kv(
            "Time",
            dmc.Text(
                f"{format_when(job.get('started_at'))} → {format_when(job.get('finished_at'))}"
                f" ({format_duration(job.get('duration'))})",
                size="sm",
            ),
        ),
        _kv("Threads", dmc.Text(str(job.get("threads") or "—"), size="sm")),
        _kv(
            "Resources",
            dmc.Text(
                ", ".join(f"{k}={v}" for k, v in resources.items())
                if isinstance(resources, dict)
                else json.dumps(resources),
                size="sm",
            )
            if resources
            else dmc.Text("—", size="sm"),
        ),
        _kv("Reason", dmc.Text(str(job.get("reason") or "—"), size="sm")),
        _kv("Inputs", _files(job.get("input"))),
        _kv("Outputs", _files(job.get("output"))),
    ]
    if error:
        rows.append(
            _kv(
                "Error",
                dmc.Text(
                    str(error.get("msg") or error.get("rule_msg") or "failed"), size="sm", c="red"
                ),
            )
        )
    shell = job.get("shellcmd")
    blocks: list[Any] = [dmc.Stack(rows, gap="xs")]
    blocks.append(dmc.Text("Shell command", fw=600, mt="sm"))
    blocks.append(
        html.Pre(str(shell).strip(), className="sd-log", id="job-shell")
        if shell
        else dmc.Text("No shell command (a run: or script: block).", size="sm", c="dimmed")
    )
    blocks.append(dmc.Text("Log", fw=600, mt="sm"))
    if not logs:
        blocks.append(dmc.Text("This job declares no log file.", size="sm", c="dimmed"))
    for entry in logs:
        note = ""
        if entry.get("truncated"):
            note = f" (last {len(entry.get('content') or '')} bytes of {entry.get('size')})"
        blocks.append(dmc.Text(f"{entry.get('path')}{note}", size="xs", ff="monospace"))
        if entry.get("error"):
            blocks.append(dmc.Text(entry["error"], size="sm", c="red"))
        elif not entry.get("exists"):
            blocks.append(dmc.Text("not written (yet)", size="sm", c="dimmed"))
        else:
            blocks.append(
                html.Pre(entry.get("content") or "(empty)", className="sd-log job-log-content")
            )
    return dmc.Stack(blocks, gap="xs")


def register(app: dash.Dash, ctx: Any) -> None:
    @app.callback(
        Output("run-title", "children"),
        Output("run-overall", "children"),
        Output("run-failed", "children"),
        Output("rule-progress", "children"),
        Output("rule-graph", "elements"),
        Output("job-rule", "data"),
        Output("run-cancel", "disabled"),
        Output("run-rulegraph", "data"),
        Output("rule-graph", "layout"),
        Input("run-live", "data"),
        State("run-rulegraph", "data"),
    )
    def render_live(run: dict[str, Any] | None, rulegraph: Any) -> tuple:
        if not run:
            raise dash.exceptions.PreventUpdate
        new_graph = dash.no_update
        if not rulegraph and (run.get("progress") or {}).get("total"):
            try:
                rulegraph = ctx.service.get_run(run["run_id"]).get("rulegraph")
                new_graph = rulegraph
            except ServiceError:
                pass
        counts = run.get("rule_counts") or {}
        elements = figures.rule_graph_elements(rulegraph, counts)
        return (
            _title(run),
            _overall(run),
            _failed_jobs(ctx, run),
            rule_progress(counts),
            elements,
            sorted(counts),
            is_terminal(run.get("state")),
            new_graph,
            figures.graph_layout(elements) if new_graph is not dash.no_update else dash.no_update,
        )

    @app.callback(
        Output("jobs-grid", "getRowsResponse"),
        Input("jobs-grid", "getRowsRequest"),
        State("run-id", "data"),
        State("job-rule", "value"),
        State("job-state", "value"),
        State("job-q", "value"),
    )
    def rows(request: dict[str, Any] | None, run_id: str, rule, state, q) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        if not request:
            raise dash.exceptions.PreventUpdate
        start = int(request.get("startRow") or 0)
        end = int(request.get("endRow") or start + GRID_BLOCK)
        sort = sort_from_model(request.get("sortModel"))
        q = (q or "").strip() or None
        key = (run_id, rule, state, q, sort)

        def fetch(size: int, token: str | None) -> dict[str, Any]:
            return ctx.service.list_jobs(
                run_id, rule=rule, state=state, q=q, sort=sort, page_size=size, page_token=token
            )

        try:
            jobs, total = _cursor.window(key, start, end, fetch)
        except ServiceError:
            return {"rowData": [], "rowCount": 0}
        data = [job_summary(j) for j in jobs]
        for row in data:
            row["jobid"] = str(row["jobid"])
        return {"rowData": data, "rowCount": total}

    app.clientside_callback(
        """function (rule, state, q) {
            try {
                var api = window.dash_ag_grid.getApi("jobs-grid");
                api.purgeInfiniteCache();
                api.ensureIndexVisible(0, "top");
            } catch (err) { /* the grid is not ready yet: it will ask by itself */ }
            return Date.now();
        }""",
        Output("grid-sink", "data"),
        Input("job-rule", "value"),
        Input("job-state", "value"),
        Input("job-q", "value"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("job-drawer", "opened"),
        Output("job-drawer-title", "children"),
        Output("job-detail", "children"),
        Input("jobs-grid", "cellClicked"),
        Input({"type": "failed-job", "jobid": dash.ALL}, "n_clicks"),
        State("run-id", "data"),
        prevent_initial_call=True,
    )
    def open_job(cell: dict[str, Any] | None, _clicks: Any, run_id: str) -> tuple:
        trigger = dash.ctx.triggered_id
        if isinstance(trigger, dict):
            if not any(_clicks or []):
                raise dash.exceptions.PreventUpdate
            jobid = trigger["jobid"]
        else:
            jobid = (cell or {}).get("rowId")
        if jobid is None:
            raise dash.exceptions.PreventUpdate
        try:
            job = ctx.service.get_job(run_id, str(jobid))
            logs = ctx.service.job_log(run_id, str(jobid))["logs"]
        except ServiceError as exc:
            return True, f"job {jobid}", dmc.Alert(exc.detail, color="red")
        title = dmc.Group(
            [dmc.Text(f"job {jobid}", fw=700), dmc.Text(job.get("rule") or "", ff="monospace")],
            gap="sm",
        )
        return True, title, job_detail(job, logs)

    @app.callback(
        Output("gantt", "figure"),
        Input("run-slow", "data"),
        Input("run-tabs", "value"),
        State("run-id", "data"),
    )
    def timeline(_slow: Any, tab: str, run_id: str) -> Any:
        if tab != "timeline":
            raise dash.exceptions.PreventUpdate
        jobs: list[dict[str, Any]] = []
        token = None
        total = 0
        try:
            while len(jobs) < GANTT_MAX_JOBS:
                page = ctx.service.list_jobs(
                    run_id,
                    sort="started_at",
                    page_size=min(500, GANTT_MAX_JOBS - len(jobs)),
                    page_token=token,
                )
                jobs.extend(page["jobs"])
                total = page["total"]
                token = page["next_page_token"]
                if not token:
                    break
        except ServiceError:
            raise dash.exceptions.PreventUpdate from None
        return figures.gantt_figure(jobs, truncated=max(0, total - len(jobs)))

    @app.callback(
        Output("cancel-modal", "opened"),
        Input("run-cancel", "n_clicks"),
        Input("cancel-no", "n_clicks"),
        prevent_initial_call=True,
    )
    def confirm(opened: Any, no: Any) -> bool:
        if not (opened or no):
            raise dash.exceptions.PreventUpdate
        return dash.ctx.triggered_id == "run-cancel"

    @app.callback(
        Output("run-action-msg", "children"),
        Output("run-action-msg", "color"),
        Output("run-action-msg", "hide"),
        Output("cancel-modal", "opened", allow_duplicate=True),
        Output("url", "href", allow_duplicate=True),
        Input("cancel-yes", "n_clicks"),
        Input("run-rerun", "n_clicks"),
        State("run-id", "data"),
        State("token", "data"),
        State("user", "data"),
        prevent_initial_call=True,
    )
    def act(cancel: Any, rerun: Any, run_id: str, token: str | None, user: str | None) -> tuple:
        action = dash.ctx.triggered_id
        if not (cancel if action == "cancel-yes" else rerun):
            raise dash.exceptions.PreventUpdate  # a button mounting, not a click
        if not ctx.authorized(token):
            return (
                "This server requires an API token for this: click “Token” at the top right.",
                "red",
                False,
                False,
                dash.no_update,
            )
        try:
            if action == "cancel-yes":
                ctx.service.cancel_run(run_id, user)
                return (
                    "Cancel requested: the run stops shortly.",
                    "orange",
                    False,
                    False,
                    (dash.no_update),
                )
            created = ctx.service.rerun_run(run_id, user)
        except ServiceError as exc:
            return exc.detail, "red", False, False, dash.no_update
        return dash.no_update, dash.no_update, True, False, f"/dashboard/runs/{created['run_id']}"
