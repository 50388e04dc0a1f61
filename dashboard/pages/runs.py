"""The home page: every run, filterable, paginated by the service, updated live."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html

from dashboard.components import progress_bar, progress_text, state_badge, tag_badges
from dashboard.theme import RUN_STATES, format_duration, format_when, run_duration
from snakedeck.service import ServiceError

PAGE_SIZE = 25


def layout(ctx: Any) -> Any:
    try:
        workflows = [w["name"] for w in ctx.service.list_workflows()]
    except ServiceError:
        workflows = []
    filters = dmc.Group(
        [
            dmc.TextInput(
                id="runs-q",
                placeholder="Search run id, workflow, tag…",
                debounce=300,
                w=260,
                leftSection="⌕",
            ),
            dmc.Select(
                id="runs-state",
                placeholder="Any state",
                data=[{"value": s, "label": s.replace("_", " ")} for s in RUN_STATES],
                clearable=True,
                w=170,
            ),
            dmc.Select(
                id="runs-workflow",
                placeholder="Any workflow",
                data=workflows,
                clearable=True,
                w=170,
            ),
            dmc.TextInput(id="runs-tag", placeholder="tag or tag=value", debounce=300, w=170),
        ],
        gap="sm",
    )
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Title("Runs", order=2),
                    dcc.Link(dmc.Button("Launch a run"), href="/dashboard/launch"),
                ],
                justify="space-between",
            ),
            filters,
            dcc.Store(id="runs-live"),
            dcc.Store(id="runs-cursor", data={"tokens": [None], "index": 0}),
            dcc.Store(id="runs-next-token"),
            dmc.Paper(html.Div(id="runs-table"), withBorder=True, p=0, radius="md"),
            dmc.Group(
                [
                    dmc.Text(id="runs-count", size="sm", c="dimmed"),
                    dmc.Group(
                        [
                            dmc.Button("← Newer", id="runs-prev", variant="default", size="xs"),
                            dmc.Button("Older →", id="runs-next", variant="default", size="xs"),
                        ],
                        gap="xs",
                    ),
                ],
                justify="space-between",
            ),
        ],
        gap="md",
    )


def run_rows(runs: list[dict[str, Any]]) -> Any:
    head = dmc.TableThead(
        dmc.TableTr(
            [
                dmc.TableTh(h)
                for h in (
                    "Run",
                    "Workflow",
                    "State",
                    "Progress",
                    "Tags",
                    "Submitted",
                    "Duration",
                    "User",
                )
            ]
        )
    )
    body = []
    for r in runs:
        p = r.get("progress") or {}
        body.append(
            dmc.TableTr(
                [
                    dmc.TableTd(
                        dcc.Link(
                            dmc.Text(r["run_id"], ff="monospace", size="sm", c="teal"),
                            href=f"/dashboard/runs/{r['run_id']}",
                            className="sd-run-link",
                        )
                    ),
                    dmc.TableTd(
                        dmc.Text(
                            f"{r.get('workflow') or '—'}"
                            + (f" {r['workflow_version']}" if r.get("workflow_version") else ""),
                            size="sm",
                        )
                    ),
                    dmc.TableTd(state_badge(r.get("state"), size="sm")),
                    dmc.TableTd(
                        dmc.Stack(
                            [
                                progress_bar(p, size="sm"),
                                dmc.Text(progress_text(p), size="xs", c="dimmed"),
                            ],
                            gap=2,
                        ),
                        miw=170,
                    ),
                    dmc.TableTd(dmc.Group(tag_badges(r.get("tags")), gap=4)),
                    dmc.TableTd(dmc.Text(format_when(r.get("submitted_at")), size="xs")),
                    dmc.TableTd(dmc.Text(format_duration(run_duration(r)), size="sm")),
                    dmc.TableTd(dmc.Text(r.get("user") or "—", size="sm")),
                ],
                id={"type": "run-row", "run_id": r["run_id"]},
            )
        )
    if not body:
        return dmc.Center(dmc.Text("No runs match. Launch one to get started.", c="dimmed"), p="xl")
    return dmc.TableScrollContainer(
        dmc.Table(
            [head, dmc.TableTbody(body)],
            highlightOnHover=True,
            verticalSpacing="xs",
            className="sd-runs-table",
        ),
        minWidth=900,
    )


def register(app: dash.Dash, ctx: Any) -> None:
    @app.callback(
        Output("runs-cursor", "data"),
        Input("runs-q", "value"),
        Input("runs-state", "value"),
        Input("runs-workflow", "value"),
        Input("runs-tag", "value"),
        Input("runs-prev", "n_clicks"),
        Input("runs-next", "n_clicks"),
        State("runs-cursor", "data"),
        State("runs-next-token", "data"),
        prevent_initial_call=True,
    )
    def move(_q, _s, _w, _t, _p, _n, cursor, nxt):  # type: ignore[no-untyped-def]
        cursor = cursor or {"tokens": [None], "index": 0}
        trigger = dash.ctx.triggered_id
        if trigger in ("runs-prev", "runs-next") and not (_p if trigger == "runs-prev" else _n):
            raise dash.exceptions.PreventUpdate
        if trigger == "runs-prev":
            return {**cursor, "index": max(0, cursor["index"] - 1)}
        if trigger == "runs-next":
            if not nxt:
                raise dash.exceptions.PreventUpdate
            tokens = [*cursor["tokens"][: cursor["index"] + 1], nxt]
            return {"tokens": tokens, "index": cursor["index"] + 1}
        return {"tokens": [None], "index": 0}  # a filter changed: back to the first page

    @app.callback(
        Output("runs-table", "children"),
        Output("runs-count", "children"),
        Output("runs-prev", "disabled"),
        Output("runs-next", "disabled"),
        Output("runs-next-token", "data"),
        Input("runs-cursor", "data"),
        Input("runs-live", "data"),
        State("runs-q", "value"),
        State("runs-state", "value"),
        State("runs-workflow", "value"),
        State("runs-tag", "value"),
    )
    def render(cursor, _live, q, state, workflow, tag):  # type: ignore[no-untyped-def]
        cursor = cursor or {"tokens": [None], "index": 0}
        token = cursor["tokens"][cursor["index"]]
        try:
            page = ctx.service.list_runs(
                state=state or None,
                workflow=workflow or None,
                tag=(tag or "").strip() or None,
                q=(q or "").strip() or None,
                page_size=PAGE_SIZE,
                page_token=token,
            )
        except ServiceError as exc:
            alert = dmc.Alert(exc.detail, title="Could not list runs", color="red")
            return alert, "", True, True, None
        start = cursor["index"] * PAGE_SIZE
        shown = len(page["runs"])
        count = f"{start + 1}-{start + shown} of {page['total']} runs" if shown else "0 runs"
        return (
            run_rows(page["runs"]),
            count,
            cursor["index"] == 0,
            not page["next_page_token"],
            page["next_page_token"],
        )
