"""The Results tab: the run's stored results (kind, size, sha256, a download link each), a
preview of one in the browser (a table as a small grid, a text, an image), and Snakemake's
report when the run has one. Everything is read through the service from the store; links
point at the REST API's streamed downloads.

The list is read when the tab is opened, and again when it is open (or next opened) after the
run's state or its count of done jobs moved (results are stored as the jobs that write them
finish, and after the run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import dash
import dash_ag_grid as dag
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html

from dashboard import previews
from dashboard.context import Ctx
from dashboard.formatting import format_size, format_when
from dashboard.pages.run import ids
from snakedeck.service import ServiceError

API: Final = "/api/v1/runs/{run_id}"
SHA_SHOWN: Final = 12


def output_url(run_id: str, path: str, *, inline: bool = False) -> str:
    url = f"{API.format(run_id=run_id)}/outputs/{quote(path, safe='/')}"
    return url + "?disposition=inline" if inline else url


def report_url(run_id: str) -> str:
    return f"{API.format(run_id=run_id)}/report"


def panel() -> Any:
    return dmc.Stack(
        [
            html.Div(dmc.Text("Loading…", size="sm", c="dimmed"), id=ids.RESULTS),
            html.Div(id=ids.PREVIEW),
            dcc.Store(id=ids.RESULTS_SHOWN),
        ],
        gap="md",
        pt="sm",
    )


def _key(summary: Mapping[str, Any] | None) -> list[Any]:
    """What a re-read follows; assets/snakedeck.js ``resultsKey`` moves on the same fields."""
    summary = summary or {}
    return [summary.get("state"), (summary.get("progress") or {}).get("done"),
            summary.get("attempt")]  # fmt: skip


def result_row(run_id: str, out: Mapping[str, Any]) -> Any:
    path = str(out.get("path") or "")
    sha = str(out.get("sha256") or "")
    return dmc.TableTr(
        [
            dmc.TableTd(
                dmc.Stack(
                    [
                        dmc.Text(path, className="sd-result-path"),
                        dmc.Text(out.get("description") or "", size="xs", c="dimmed")
                        if out.get("description")
                        else None,
                    ],
                    gap=0,
                )
            ),
            dmc.TableTd(dmc.Badge(out.get("kind") or "other", variant="light", size="sm")),
            dmc.TableTd(format_size(out.get("size"))),
            dmc.TableTd(dmc.Tooltip(dmc.Code(sha[:SHA_SHOWN]), label=sha or "—")),
            dmc.TableTd(
                dmc.Group(
                    [
                        dmc.Button(
                            "Preview",
                            id={"type": ids.RESULT_PREVIEW, "path": path},
                            variant="light",
                            size="compact-sm",
                        ),
                        dmc.Anchor("Download", href=output_url(run_id, path), refresh=True),
                    ],
                    gap="xs",
                    wrap="nowrap",
                )
            ),
        ]
    )


def report_line(run_id: str, report: Mapping[str, Any] | None) -> Any:
    if report:
        return dmc.Group(
            [
                dmc.Anchor(
                    "Snakemake report",
                    href=report_url(run_id),
                    target="_blank",
                    refresh=True,
                    id="run-report-link",
                    fw=600,
                ),
                dmc.Text(
                    f"{format_size(report.get('size'))}, made "
                    f"{format_when(report.get('stored_at'))}",
                    size="xs",
                    c="dimmed",
                ),
            ],
            gap="sm",
        )
    return None


def listing(run_id: str, answer: Mapping[str, Any]) -> Any:
    outputs = list(answer.get("outputs") or [])
    report = report_line(run_id, answer.get("report"))
    if not outputs:
        body: Any = dmc.Text(
            "No results stored yet: the workflow's declared results are stored as the jobs "
            "that write them finish, and after the run.",
            size="sm",
            c="dimmed",
        )
    else:
        head = dmc.TableThead(
            dmc.TableTr([dmc.TableTh(h) for h in ("Result", "Kind", "Size", "sha256", "")])
        )
        body = dmc.Table(
            [head, dmc.TableTbody([result_row(run_id, o) for o in outputs])],
            id="results-table",
            highlightOnHover=True,
            fz="sm",
        )
    return dmc.Stack([r for r in (report, body) if r is not None], gap="sm")


def preview_of(ctx: Ctx, run_id: str, path: str) -> Any:
    """The preview of one result, by its kind (a table as a grid, a text, an image)."""
    try:
        doc, stream = ctx.service.open_output(run_id, path)
    except ServiceError as exc:
        return dmc.Alert(exc.detail, color="red")
    kind = doc.get("kind")
    try:
        if kind == "image":
            body: Any = html.Img(
                src=output_url(run_id, path, inline=True), className="sd-preview-image", alt=path
            )
            note = ""
        elif kind in ("table", "text", "vcf"):
            data, more = previews.head(stream)
            shown = (
                previews.as_table(path, data, more)
                if kind == "table"
                else previews.as_text(data, more)
            )
            body, note = _shown(shown), shown.note
            if shown.partial:
                note = ", ".join(n for n in (note, "the start only: download it for the rest") if n)
        else:
            body = dmc.Text(
                f"A {kind or 'other'} result has no preview here: download it.",
                size="sm",
                c="dimmed",
            )
            note = ""
    finally:
        with contextlib.suppress(Exception):
            stream.close()
    return dmc.Paper(
        dmc.Stack(
            [
                dmc.Group(
                    [
                        dmc.Text(path, className="sd-result-path", fw=600),
                        dmc.Text(note, size="xs", c="dimmed"),
                    ],
                    gap="sm",
                ),
                body,
            ],
            gap="xs",
        ),
        p="sm",
        withBorder=True,
        id="result-preview-paper",
    )


def _shown(preview: previews.Preview) -> Any:
    if preview.kind == "table":
        small = len(preview.rows) <= 12
        return dag.AgGrid(
            id=ids.PREVIEW_GRID,
            rowData=preview.rows,
            columnDefs=[{"field": c, "headerName": c} for c in preview.columns],
            defaultColDef={"resizable": True, "sortable": True, "flex": 1, "minWidth": 90},
            dashGridOptions={
                "domLayout": "autoHeight" if small else "normal",
                "suppressCellFocus": True,
            },
            style={"width": "100%"} if small else {"width": "100%", "height": "320px"},
        )
    return html.Pre(preview.text, className="sd-log", id="result-preview-text")


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.RESULTS, "children"),
        Output(ids.RESULTS_SHOWN, "data"),
        Input(ids.TABS, "value"),
        Input(ids.RESULTS_KEY, "data"),  # moved by the feed only while this tab is open
        State(ids.LIVE, "data"),
        State(ids.RESULTS_SHOWN, "data"),
        State(ids.RUN_ID, "data"),
    )
    def show(tab: str | None, _moved: Any, summary: Any, shown: Any, run_id: str) -> tuple:
        key = _key(summary)
        if tab != "results" or key == shown:
            raise dash.exceptions.PreventUpdate  # read when it is looked at, and moved
        try:
            answer = ctx.service.list_outputs(run_id)
        except ServiceError as exc:
            return dmc.Alert(exc.detail, color="red"), None
        return listing(run_id, answer), key

    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "resultsKey"),
        Output(ids.RESULTS_KEY, "data"),
        Input(ids.LIVE, "data"),
        State(ids.TABS, "value"),
        State(ids.RESULTS_KEY, "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.PREVIEW, "children"),
        Input({"type": ids.RESULT_PREVIEW, "path": dash.ALL}, "n_clicks"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    def preview(clicks: list[Any], run_id: str) -> Any:
        trigger = dash.ctx.triggered_id
        if not isinstance(trigger, dict) or not any(clicks or []):
            raise dash.exceptions.PreventUpdate  # the list re-rendered, nobody clicked
        return preview_of(ctx, run_id, str(trigger["path"]))
