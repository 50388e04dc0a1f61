"""The config-file picker: registered config files (YAML or JSON) of this workflow first, then
those registered for no workflow; picking one fills the form with its values.

The run is submitted with the file (``config_file``) and the form's values on top of it, so
the run records which file it came from, and what the form shows is what the run gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, html

from dashboard import file_cards, schema_form, uploads
from dashboard.context import Ctx, write_callback
from dashboard.pages.launch import ids
from snakedeck import filekinds
from snakedeck.auth import Principal
from snakedeck.service import ServiceError, invalid

MAX_OPTIONS: Final = 100


def options(ctx: Ctx, workflow: str) -> list[dict[str, Any]]:
    """Grouped options: ``For <workflow>``, then ``For any workflow``."""
    mine = ctx.service.list_files(kind="config", workflow=workflow, page_size=MAX_OPTIONS)
    every = ctx.service.list_files(kind="config", page_size=MAX_OPTIONS)
    general = [f for f in every["files"] if not f.get("workflow")]
    groups = [
        (f"For {workflow}", mine["files"]),
        ("For any workflow", general),
    ]
    return [
        {"group": label, "items": [file_cards.option(f) for f in files]}
        for label, files in groups
        if files
    ]


def placeholder(data: list[dict[str, Any]]) -> str:
    if data:
        return "Start from a config file (optional)"
    return "No config file registered yet: upload one (YAML or JSON)"


def picker(ctx: Ctx) -> Any:
    """The picker, in the page from the start (the submit callback names it): each workflow
    picked gives it its own options (:func:`options`)."""
    limit = uploads.upload_limit(ctx.settings)
    select = dmc.Select(
        id=ids.CONFIG_FILE,
        data=[],
        disabled=True,
        searchable=True,
        clearable=True,
        placeholder="Pick a workflow first",
        nothingFoundMessage="No config file matches",
        style={"flex": 1},
        **{"aria-label": "config file"},
    )
    upload = uploads.drop_zone(
        ids.CONFIG_UPLOAD,
        ids.CONFIG_SIZE_NOTE,
        limit,
        dmc.Button("Upload…", variant="light", className="sd-upload-button"),
        compact=True,
    )
    return dmc.Stack(
        [
            dmc.Text("Config file", fw=600, size="sm"),
            dmc.Group([select, upload], wrap="nowrap", align="flex-start", gap="xs"),
            dmc.Text(id=ids.CONFIG_SIZE_NOTE, size="sm"),
            html.Div(id=ids.CONFIG_NOTE),
        ],
        gap=4,
    )


def _read(ctx: Ctx, file_id: str) -> tuple[Mapping[str, Any], dict[str, Any]]:
    doc, stream = ctx.service.open_file(file_id)
    with stream:
        try:
            return doc, filekinds.read_config(stream, str(doc.get("format") or "yaml"))
        except filekinds.FileKindError as exc:
            raise invalid("config_file", f"{doc.get('name')!r} {exc}") from None


def filled_note(name: str, config: Mapping[str, Any], fields: set[str]) -> Any:
    shown = sorted(k for k in config if k in fields)
    extra = sorted(k for k in config if k not in fields)
    lines = [
        f"Filled from {name}: "
        + (", ".join(shown) if shown else "it sets no field of this form")
        + ". Fields it leaves out are back at the workflow's defaults."
    ]
    if extra:
        lines.append(f"Also in the file, not in the form (sent as they are): {', '.join(extra)}.")
    return dmc.Stack([dmc.Text(t, size="xs", c="dimmed") for t in lines], gap=0)


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.FIELDS, "value"),
        Output(ids.BOOL_FIELDS, "checked"),
        Output(ids.CONFIG_NOTE, "children"),
        Output(ids.CONFIG_FILE, "error"),
        Input(ids.CONFIG_FILE, "value"),
        State(ids.FIELDS, "id"),
        State(ids.BOOL_FIELDS, "id"),
        State(ids.WORKFLOW, "value"),
        prevent_initial_call=True,
    )
    def fill(file_id: str | None, field_ids: list, bool_ids: list, workflow: str | None) -> tuple:
        """Every field shows the file's value, or the workflow's default where it has none."""
        keep = [dash.no_update] * len(field_ids), [dash.no_update] * len(bool_ids)
        if not file_id or not workflow:
            return *keep, None, None
        try:
            doc, config = _read(ctx, file_id)
            wf = ctx.service.get_workflow(workflow)
        except ServiceError as exc:
            return *keep, None, exc.detail
        specs = {s.name: s for s in schema_form.fields_from_schema(wf.get("config_schema"))}

        def shown(name: str) -> Any:
            spec = specs[name]
            return schema_form.form_value(spec, config.get(name, spec.default))

        values = [shown(i["name"]) if i["name"] in specs else dash.no_update for i in field_ids]
        checks = [shown(i["name"]) if i["name"] in specs else dash.no_update for i in bool_ids]
        return values, checks, filled_note(str(doc.get("name")), config, set(specs)), None

    @write_callback(
        app,
        ctx,
        Output(ids.CONFIG_FILE, "data"),
        Output(ids.CONFIG_FILE, "value"),
        Output(ids.CONFIG_NOTE, "children", allow_duplicate=True),
        Output(ids.CONFIG_UPLOAD, "contents"),
        Input(ids.CONFIG_UPLOAD, "contents"),
        State(ids.CONFIG_UPLOAD, "filename"),
        State(ids.WORKFLOW, "value"),
        denied=lambda message, *_: (dash.no_update, dash.no_update, _refused(message), None),
    )
    def upload(by: Principal, contents: str, filename: str, workflow: str | None) -> tuple:
        """Register the file as a config file of this workflow, and start from it."""
        try:
            doc = uploads.register_upload(
                ctx, contents, filename, by=by, kind="config", workflow=workflow
            )
            data = options(ctx, str(workflow))
        except ServiceError as exc:
            return dash.no_update, dash.no_update, _refused(exc.detail), None
        return data, doc["file_id"], dash.no_update, None


def _refused(message: str) -> Any:
    return dmc.Alert(message, title="Not uploaded", color="red", className="sd-refused")
