"""The home page: every run, filterable, paginated by the service, updated live."""

from __future__ import annotations

from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html

from dashboard import page_cursor
from dashboard.components import progress_bar, progress_words, state_badge, tag_badges
from dashboard.context import Ctx
from dashboard.formatting import format_duration, format_when, run_duration
from dashboard.theme import run_state_label
from snakedeck.service import ServiceError
from snakedeck.states import RunState

PAGE_SIZE = 25


def layout(ctx: Ctx) -> Any:
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
                data=[{"value": s.value, "label": run_state_label(s)} for s in RunState],
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
            dmc.TextInput(id="runs-user", placeholder="submitted by", debounce=300, w=150),
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
            dcc.Store(id="runs-cursor", data=page_cursor.first()),
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
                                progress_words(p, size="xs", c="dimmed"),
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


def register(app: dash.Dash, ctx: Ctx) -> None:
    _register_paging(app)
    _register_table(app, ctx)


def _register_paging(app: dash.Dash) -> None:
    @app.callback(
        Output("runs-cursor", "data"),
        Input("runs-q", "value"),
        Input("runs-state", "value"),
        Input("runs-workflow", "value"),
        Input("runs-tag", "value"),
        Input("runs-user", "value"),
        Input("runs-prev", "n_clicks"),
        Input("runs-next", "n_clicks"),
        State("runs-cursor", "data"),
        State("runs-next-token", "data"),
        prevent_initial_call=True,
    )
    def move(*values: Any) -> page_cursor.Cursor:
        *_filters, prev, nxt, cursor, next_token = values
        step = {"runs-prev": "prev", "runs-next": "next"}.get(str(dash.ctx.triggered_id), "")
        if step and not (prev if step == "prev" else nxt):
            raise dash.exceptions.PreventUpdate  # the button mounted; nobody clicked
        moved = page_cursor.moved(cursor, step, next_token)
        if moved is None:
            raise dash.exceptions.PreventUpdate
        return moved


def _register_table(app: dash.Dash, ctx: Ctx) -> None:
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
        State("runs-user", "value"),
    )
    def render(
        cursor: Any,
        _live: Any,
        q: str | None,
        state: str | None,
        workflow: str | None,
        tag: str | None,
        user: str | None,
    ) -> tuple:
        try:
            page = ctx.service.list_runs(
                state=state or None,
                workflow=workflow or None,
                tag=(tag or "").strip() or None,
                q=(q or "").strip() or None,
                user=(user or "").strip() or None,
                page_size=PAGE_SIZE,
                page_token=page_cursor.token(cursor),
            )
        except ServiceError as exc:
            alert = dmc.Alert(exc.detail, title="Could not list runs", color="red")
            return alert, "", True, True, None
        count = page_cursor.count_text(cursor, PAGE_SIZE, len(page["runs"]), page["total"], "runs")
        return (
            run_rows(page["runs"]),
            count,
            page_cursor.valid(cursor)["index"] == 0,
            not page["next_page_token"],
            page["next_page_token"],
        )
