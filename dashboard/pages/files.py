"""The Files page: every registered file (inputs, sample sheets, config files), filterable and
paginated by the service; add one by dropping it or from a URL, download it, delete it.

A dropped table is parsed by the service on registration; the page shows its columns, row count
and first rows at once, so a sheet read wrongly (a TSV saved as .csv) is seen before it is used.
"""

from __future__ import annotations

import time
from typing import Any, Final

import dash
import dash_mantine_components as dmc
from dash import ALL, Input, Output, State, dcc, html

from dashboard import file_cards, page_cursor, uploads
from dashboard.context import Ctx, clicked, write_callback
from dashboard.formatting import format_size, format_when
from dashboard.schema_form import parse_tags
from snakedeck.auth import Principal
from snakedeck.filekinds import KINDS
from snakedeck.service import ServiceError, invalid

PAGE_SIZE: Final = 25
DELETE: Final = "file-delete"
"""Pattern-matching id type of each row's Delete button."""
SHOW: Final = "file-show"
"""Pattern-matching id type of each row's name (opens the file's details)."""
CONTENT_URL: Final = "/api/v1/files/{file_id}/content"


def _add_options(workflows: list[str]) -> Any:
    """Kind, workflow and tags of the next file added (by drop or by URL)."""
    return dmc.Group(
        [
            dmc.Select(
                id="files-add-kind",
                label="Kind",
                placeholder="detect from the file",
                data=list(KINDS),
                clearable=True,
                w=190,
            ),
            dmc.Select(
                id="files-add-workflow",
                label="For workflow",
                placeholder="any",
                data=workflows,
                clearable=True,
                w=200,
            ),
            dmc.TextInput(
                id="files-add-tags", label="Tags", placeholder="project=liver, batch=7", w=230
            ),
            dmc.Text(
                "A config file registered for a workflow is offered on that workflow's launch "
                "form. The kind is told from the name and content unless you set it.",
                size="xs",
                c="dimmed",
                maw=340,
            ),
        ],
        align="flex-end",
        gap="sm",
    )


def _add_card(ctx: Ctx, workflows: list[str]) -> Any:
    limit = uploads.upload_limit(ctx.settings)
    by_url = dmc.Stack(
        [
            dmc.TextInput(
                id="files-url",
                label="Or add from a URL",
                description="the server fetches it (http or https)",
                placeholder="https://example.org/reference.fa",
            ),
            dmc.Group(dmc.Button("Add from URL", id="files-url-add", variant="default")),
        ],
        gap="xs",
    )
    drop = uploads.drop_zone("files-upload", "files-upload-note", limit, uploads.drop_hint(limit))
    return dmc.Paper(
        dmc.Stack(
            [
                dmc.Text("Add a file", fw=600),
                _add_options(workflows),
                dmc.Grid(
                    [
                        dmc.GridCol(
                            [drop, dmc.Text(id="files-upload-note", size="sm", mt=4)],
                            span={"base": 12, "md": 7},
                        ),
                        dmc.GridCol(by_url, span={"base": 12, "md": 5}),
                    ],
                    gutter="lg",
                ),
                dcc.Loading(html.Div(id="files-added"), type="dot", delay_show=300),
            ],
            gap="sm",
        ),
        p="lg",
        withBorder=True,
    )


def _filters() -> Any:
    return dmc.Group(
        [
            dmc.TextInput(
                id="files-q",
                placeholder="Search name, id, tag…",
                debounce=300,
                w=260,
                leftSection="⌕",
            ),
            dmc.Select(
                id="files-kind", placeholder="Any kind", data=list(KINDS), clearable=True, w=150
            ),
            dmc.TextInput(id="files-tag", placeholder="tag or tag=value", debounce=300, w=170),
        ],
        gap="sm",
    )


def _delete_modal() -> Any:
    return dmc.Modal(
        id="files-delete-modal",
        title="Delete this file?",
        children=dmc.Stack(
            [
                dmc.Text(id="files-delete-what", size="sm"),
                dmc.Text(
                    "Runs that used it keep their record; rerunning them will not be possible. "
                    "A file a queued or running run uses cannot be deleted.",
                    size="sm",
                    c="dimmed",
                ),
                dmc.Group(
                    [
                        dmc.Button("Keep it", id="files-delete-no", variant="default"),
                        dmc.Button("Delete", id="files-delete-yes", color="red"),
                    ],
                    justify="flex-end",
                ),
            ]
        ),
    )


def layout(ctx: Ctx) -> Any:
    try:
        workflows = [w["name"] for w in ctx.service.list_workflows()]
    except ServiceError:
        workflows = []
    return dmc.Stack(
        [
            dmc.Title("Files", order=2),
            _add_card(ctx, workflows),
            _filters(),
            dcc.Store(id="files-cursor", data=page_cursor.first()),
            dcc.Store(id="files-next-token"),
            dcc.Store(id="files-refresh"),
            dcc.Store(id="files-delete-target"),
            dmc.Alert(id="files-msg", hide=True, withCloseButton=True),
            dmc.Paper(html.Div(id="files-table"), withBorder=True, p=0, radius="md"),
            dmc.Group(
                [
                    dmc.Text(id="files-count", size="sm", c="dimmed"),
                    dmc.Group(
                        [
                            dmc.Button("← Newer", id="files-prev", variant="default", size="xs"),
                            dmc.Button("Older →", id="files-next", variant="default", size="xs"),
                        ],
                        gap="xs",
                    ),
                ],
                justify="space-between",
            ),
            _delete_modal(),
            dmc.Drawer(
                id="file-drawer",
                position="right",
                size="xl",
                padding="md",
                title=html.Span(id="file-drawer-heading"),
                children=html.Div(id="file-detail"),
            ),
        ],
        gap="md",
    )


def _row(doc: dict[str, Any]) -> Any:
    file_id = doc["file_id"]
    sha = str(doc.get("sha256") or "")
    return dmc.TableTr(
        [
            dmc.TableTd(
                dmc.UnstyledButton(
                    dmc.Text(doc.get("name") or file_id, size="sm", c="teal", fw=500),
                    id={"type": SHOW, "file_id": file_id},
                    className="sd-file-name",
                )
            ),
            dmc.TableTd(dmc.Badge(file_cards.kind_text(doc), variant="light", tt="none")),
            dmc.TableTd(dmc.Text(format_size(doc.get("size")), size="sm")),
            dmc.TableTd(dmc.Text(format_when(doc.get("created")), size="xs")),
            dmc.TableTd(
                dmc.Group(
                    [
                        dmc.Badge(
                            f"{k}={v}" if v else k, variant="outline", color="gray", tt="none"
                        )
                        for k, v in sorted((doc.get("tags") or {}).items())
                    ],
                    gap=4,
                )
            ),
            dmc.TableTd(
                html.Span(
                    sha[: file_cards.SHA_SHOWN], title=sha, className="sd-sha", **{"data-sha": sha}
                )
            ),
            dmc.TableTd(dmc.Text(doc.get("workflow") or "—", size="sm")),
            dmc.TableTd(
                dmc.Group(
                    [
                        dmc.Anchor(
                            "Download",
                            href=CONTENT_URL.format(file_id=file_id),
                            refresh=True,
                            size="sm",
                            className="sd-download",
                        ),
                        dmc.Button(
                            "Delete",
                            id={"type": DELETE, "file_id": file_id},
                            color="red",
                            variant="subtle",
                            size="compact-sm",
                        ),
                    ],
                    gap="xs",
                    wrap="nowrap",
                )
            ),
        ],
        id={"type": "file-row", "file_id": file_id},
    )


def file_rows(files: list[dict[str, Any]]) -> Any:
    if not files:
        return dmc.Center(dmc.Text("No files match. Drop one above.", c="dimmed"), p="xl")
    heads = ("Name", "Kind", "Size", "Created", "Tags", "sha256", "Workflow", "")
    return dmc.TableScrollContainer(
        dmc.Table(
            [
                dmc.TableThead(dmc.TableTr([dmc.TableTh(h) for h in heads])),
                dmc.TableTbody([_row(f) for f in files]),
            ],
            highlightOnHover=True,
            verticalSpacing="xs",
            className="sd-files-table",
        ),
        minWidth=900,
    )


def register(app: dash.Dash, ctx: Ctx) -> None:
    _register_listing(app, ctx)
    _register_adding(app, ctx)
    _register_deleting(app, ctx)
    _register_detail(app, ctx)


def _register_listing(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output("files-cursor", "data"),
        Input("files-q", "value"),
        Input("files-kind", "value"),
        Input("files-tag", "value"),
        Input("files-prev", "n_clicks"),
        Input("files-next", "n_clicks"),
        State("files-cursor", "data"),
        State("files-next-token", "data"),
        prevent_initial_call=True,
    )
    def move(*values: Any) -> page_cursor.Cursor:
        *_filters, prev, nxt, cursor, next_token = values
        step = {"files-prev": "prev", "files-next": "next"}.get(str(dash.ctx.triggered_id), "")
        if step and not (prev if step == "prev" else nxt):
            raise dash.exceptions.PreventUpdate
        moved = page_cursor.moved(cursor, step, next_token)
        if moved is None:
            raise dash.exceptions.PreventUpdate
        return moved

    @app.callback(
        Output("files-table", "children"),
        Output("files-count", "children"),
        Output("files-prev", "disabled"),
        Output("files-next", "disabled"),
        Output("files-next-token", "data"),
        Input("files-cursor", "data"),
        Input("files-refresh", "data"),
        State("files-q", "value"),
        State("files-kind", "value"),
        State("files-tag", "value"),
    )
    def render(cursor: Any, _refresh: Any, q: Any, kind: Any, tag: Any) -> tuple:
        try:
            page = ctx.service.list_files(
                kind=kind or None,
                tag=(tag or "").strip() or None,
                q=(q or "").strip() or None,
                page_size=PAGE_SIZE,
                page_token=page_cursor.token(cursor),
            )
        except ServiceError as exc:
            return (
                dmc.Alert(exc.detail, title="Could not list files", color="red"),
                "",
                True,
                True,
                None,
            )
        count = page_cursor.count_text(
            cursor, PAGE_SIZE, len(page["files"]), page["total"], "files"
        )
        return (
            file_rows(page["files"]),
            count,
            page_cursor.valid(cursor)["index"] == 0,
            not page["next_page_token"],
            page["next_page_token"],
        )


def _refused(message: str) -> Any:
    return dmc.Alert(message, title="The file was not added", color="red", className="sd-refused")


def _register_adding(app: dash.Dash, ctx: Ctx) -> None:
    @write_callback(
        app,
        ctx,
        Output("files-added", "children"),
        Output("files-refresh", "data", allow_duplicate=True),
        Output("files-upload", "contents"),
        Input("files-upload", "contents"),
        State("files-upload", "filename"),
        State("files-add-kind", "value"),
        State("files-add-workflow", "value"),
        State("files-add-tags", "value"),
        denied=lambda message, *_: (_refused(message), dash.no_update, None),
    )
    def upload(by: Principal, contents: str, filename: str, *options: Any) -> tuple:
        """The dropped file, registered; the table below lists it at once."""
        try:
            doc = uploads.register_upload(ctx, contents, filename, by=by, **_options(*options))
        except ServiceError as exc:
            return _refused(exc.detail), dash.no_update, None
        return file_cards.registered(doc), time.time_ns(), None

    @write_callback(
        app,
        ctx,
        Output("files-added", "children", allow_duplicate=True),
        Output("files-refresh", "data", allow_duplicate=True),
        Input("files-url-add", "n_clicks"),
        State("files-url", "value"),
        State("files-add-kind", "value"),
        State("files-add-workflow", "value"),
        State("files-add-tags", "value"),
        denied=lambda message, *_: (_refused(message), dash.no_update),
    )
    def add_url(by: Principal, _n: Any, url: str | None, *options: Any) -> tuple:
        """The server fetches the URL (bounded in size and time) and registers what came."""
        if not (url or "").strip():
            return _refused("Type the URL of the file first."), dash.no_update
        try:
            doc = ctx.service.register_url(url.strip(), by=by, **_options(*options))
        except ServiceError as exc:
            return _refused(exc.detail), dash.no_update
        return file_cards.registered(doc), time.time_ns()


def _options(kind: str | None, workflow: str | None, tags_text: str | None) -> dict[str, Any]:
    tags, problem = parse_tags(tags_text)
    if problem:
        raise invalid("tags", problem)
    return {"kind": kind or None, "workflow": workflow or None, "tags": tags}


def _register_deleting(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output("files-delete-modal", "opened"),
        Output("files-delete-target", "data"),
        Output("files-delete-what", "children"),
        Input({"type": DELETE, "file_id": ALL}, "n_clicks"),
        Input("files-delete-no", "n_clicks"),
        prevent_initial_call=True,
    )
    def confirm(_clicks: list[Any], _no: Any) -> tuple:
        if not clicked():
            raise dash.exceptions.PreventUpdate  # the table re-rendered; nobody clicked
        trigger = dash.ctx.triggered_id
        if not isinstance(trigger, dict):
            return False, None, ""
        file_id = trigger["file_id"]
        try:
            doc = ctx.service.get_file(file_id)
        except ServiceError as exc:
            return False, None, exc.detail
        return True, file_id, file_cards.facts(doc)

    @write_callback(
        app,
        ctx,
        Output("files-msg", "children"),
        Output("files-msg", "color"),
        Output("files-msg", "hide"),
        Output("files-refresh", "data", allow_duplicate=True),
        Output("files-delete-modal", "opened", allow_duplicate=True),
        Input("files-delete-yes", "n_clicks"),
        State("files-delete-target", "data"),
        denied=lambda message, *_: (message, "red", False, dash.no_update, False),
    )
    def delete(by: Principal, _n: Any, file_id: str | None) -> tuple:
        """409 while a queued or running run uses the file: the service's message says which."""
        if not file_id:
            raise dash.exceptions.PreventUpdate
        try:
            ctx.service.delete_file(file_id, by=by)
        except ServiceError as exc:
            return exc.detail, "red", False, dash.no_update, False
        return f"File {file_id} deleted.", "teal", False, time.time_ns(), False


def _register_detail(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output("file-drawer", "opened"),
        Output("file-drawer-heading", "children"),
        Output("file-detail", "children"),
        Input({"type": SHOW, "file_id": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def show(_clicks: list[Any]) -> tuple:
        trigger = dash.ctx.triggered_id
        if not clicked() or not isinstance(trigger, dict):
            raise dash.exceptions.PreventUpdate
        try:
            doc = ctx.service.get_file(trigger["file_id"])
        except ServiceError as exc:
            return True, trigger["file_id"], dmc.Alert(exc.detail, color="red")
        return True, dmc.Text(doc.get("name") or doc["file_id"], fw=700), file_detail(doc)


def file_detail(doc: dict[str, Any]) -> Any:
    """Everything the registry knows about a file, and for a table its preview."""
    facts = [
        ("File id", doc["file_id"]),
        ("Kind", file_cards.kind_text(doc)),
        ("Size", f"{format_size(doc.get('size'))} ({doc.get('size')} bytes)"),
        ("sha256", doc.get("sha256")),
        ("Created", format_when(doc.get("created"))),
        ("By", doc.get("user") or "—"),
        ("Workflow", doc.get("workflow") or "—"),
        ("Source", doc.get("url") or doc.get("source") or "upload"),
    ]
    rows = [
        dmc.Group(
            [dmc.Text(k, size="sm", c="dimmed", w=90), dmc.Text(str(v), size="sm", ff="monospace")],
            gap="sm",
            wrap="nowrap",
            align="flex-start",
        )
        for k, v in facts
    ]
    return dmc.Stack(
        [
            *rows,
            file_cards.table_preview(doc.get("table"), rows=20),
            dmc.Anchor("Download", href=CONTENT_URL.format(file_id=doc["file_id"]), refresh=True),
        ],
        gap="xs",
    )
