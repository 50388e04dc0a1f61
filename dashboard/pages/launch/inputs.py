"""One picker per declared input: the registered files that fit it (by kind and format), an
upload right beside it (the file uploaded is picked at once), and the submit's own check of the
picked file (``Service.check_input``), so a sample sheet's problems show as soon as it is picked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import dash
import dash_mantine_components as dmc
from dash import MATCH, Input, Output, State, dcc, html

from dashboard import file_cards, schema_form, uploads
from dashboard.context import Ctx, write_callback
from dashboard.pages.launch import errors, ids
from snakedeck.auth import Principal
from snakedeck.service import ServiceError

MAX_OPTIONS: Final = 200
"""Files a picker lists (the newest that fit)."""


def picker_kinds(spec: Mapping[str, Any]) -> list[str | None]:
    """The kinds to list for an input (``None``: any); a sample sheet is a table."""
    if spec.get("table"):
        return ["table"]
    return list(spec.get("kinds") or []) or [None]


def upload_kind(spec: Mapping[str, Any]) -> str | None:
    """The kind an upload for this input is registered as, when there is only one (so a file
    that is not one is refused with the reason, e.g. "is not FASTA")."""
    kinds = picker_kinds(spec)
    return kinds[0] if len(kinds) == 1 else None


def accepts_text(spec: Mapping[str, Any]) -> str:
    """``fasta`` · ``fasta: fasta, fasta.gz`` · ``table: csv, tsv, xlsx`` · ``any file: txt``."""
    kinds = [k for k in picker_kinds(spec) if k]
    what = " or ".join(kinds) if kinds else "any file"
    formats = list(spec.get("formats") or [])
    return f"{what}: {', '.join(formats)}" if formats and formats != kinds else what


def sheet_hint(spec: Mapping[str, Any]) -> str | None:
    """``columns: sample, fastq1 (fastq file id), fastq2 (optional, fastq file id)``."""
    table = spec.get("table") or {}
    parts = []
    for column in table.get("columns") or []:
        notes = [] if column.get("required", True) else ["optional"]
        if column.get("file"):
            notes.append(f"{' or '.join(column['file'].get('kinds') or ['any'])} file id")
        parts.append(column["name"] + (f" ({', '.join(notes)})" if notes else ""))
    return f"columns: {', '.join(parts)}" if parts else None


def options(
    ctx: Ctx, spec: Mapping[str, Any], q: str | None = None
) -> tuple[list[dict[str, str]], bool]:
    """The newest registered files that fit the input (whose id, name, kind or tags hold
    ``q``, if given), and whether there are more."""
    formats = set(spec.get("formats") or [])
    found: dict[str, Mapping[str, Any]] = {}
    more = False
    for kind in picker_kinds(spec):
        page = ctx.service.list_files(kind=kind, q=q or None, page_size=MAX_OPTIONS)
        more = more or page["next_page_token"] is not None
        for doc in page["files"]:
            if not formats or doc.get("format") in formats:
                found[doc["file_id"]] = doc
    docs = sorted(found.values(), key=lambda d: str(d.get("created") or ""), reverse=True)
    return [file_cards.option(d) for d in docs[:MAX_OPTIONS]], more or len(docs) > MAX_OPTIONS


def _head(spec: Mapping[str, Any]) -> Any:
    return dmc.Group(
        [
            dmc.Text(spec["name"], fw=600, size="sm", ff="monospace"),
            dmc.Text("*", c="red", size="sm", span=True) if spec.get("required") else None,
            dmc.Badge(accepts_text(spec), variant="light", color="gray", tt="none", size="sm"),
        ],
        gap=6,
    )


def picker(ctx: Ctx, spec: Mapping[str, Any]) -> Any:
    name = str(spec["name"])
    data, more = options(ctx, spec)
    limit = uploads.upload_limit(ctx.settings)
    hint = sheet_hint(spec)
    select = dmc.Select(
        id=ids.one(ids.PICK, name),
        data=data,
        searchable=True,
        clearable=True,
        placeholder="Pick a registered file, or upload one"
        if data
        else "No registered file fits yet: upload one",
        nothingFoundMessage="No registered file matches",
        maxDropdownHeight=320,
        style={"flex": 1},
        **{"aria-label": name},
    )
    upload = uploads.drop_zone(
        ids.one(ids.PICK_UPLOAD, name),
        ids.one(ids.PICK_SIZE_NOTE, name),
        limit,
        dmc.Button("Upload…", variant="light", className="sd-upload-button"),
        compact=True,
    )
    return dmc.Stack(
        [
            _head(spec),
            schema_form.description(str(spec.get("description") or "")),
            dmc.Text(hint, size="xs", c="dimmed", ff="monospace") if hint else None,
            dmc.Group([select, upload], wrap="nowrap", align="flex-start", gap="xs"),
            dmc.Text(
                f"The newest {MAX_OPTIONS} that fit are listed; type to search all of them."
                if more
                else None,
                size="xs",
                c="dimmed",
            ),
            dcc.Store(id=ids.one(ids.PICK_MORE, name), data=more),
            dcc.Store(id=ids.one(ids.PICK_SEARCH, name)),
            dmc.Text(id=ids.one(ids.PICK_SIZE_NOTE, name), size="sm"),
            html.Div(id=ids.one(ids.SHEET_ERRORS, name)),
            html.Div(id=ids.one(ids.PICK_NOTE, name)),
            dcc.Store(id=ids.one(ids.PICK_UPLOADED, name)),
        ],
        gap=4,
        className="sd-input",
    )


def pickers(ctx: Ctx, workflow: Mapping[str, Any]) -> Any:
    specs = list(workflow.get("inputs") or [])
    if not specs:
        return dmc.Text("This workflow takes no input files.", c="dimmed", size="sm")
    return dmc.Stack([picker(ctx, s) for s in specs], gap="lg")


def _spec(ctx: Ctx, workflow: str | None, name: str) -> Mapping[str, Any]:
    wf = ctx.service.get_workflow(str(workflow or ""))
    return next((i for i in wf.get("inputs") or [] if i["name"] == name), {"name": name})


def _refused(message: str) -> Any:
    return dmc.Alert(message, title="Not uploaded", color="red", className="sd-refused")


def register(app: dash.Dash, ctx: Ctx) -> None:
    _register_upload(app, ctx)
    _register_check(app, ctx)
    _register_search(app, ctx)


def _register_upload(app: dash.Dash, ctx: Ctx) -> None:
    @write_callback(
        app,
        ctx,
        Output(ids.one(ids.PICK, MATCH), "data"),
        Output(ids.one(ids.PICK, MATCH), "value"),
        Output(ids.one(ids.PICK_NOTE, MATCH), "children"),
        Output(ids.one(ids.PICK_UPLOADED, MATCH), "data"),
        Output(ids.one(ids.PICK_UPLOAD, MATCH), "contents"),
        Input(ids.one(ids.PICK_UPLOAD, MATCH), "contents"),
        State(ids.one(ids.PICK_UPLOAD, MATCH), "filename"),
        State(ids.one(ids.PICK_UPLOAD, MATCH), "id"),
        State(ids.one(ids.PICK, MATCH), "data"),
        State(ids.WORKFLOW, "value"),
        denied=lambda message, *_: (dash.no_update, dash.no_update, _refused(message), None, None),
    )
    def upload(
        by: Principal, contents: str, filename: str, zone: dict, data: list, wf: str
    ) -> tuple:
        """Register the file (as the input's kind, when it takes one) and pick it."""
        try:
            spec = _spec(ctx, wf, zone["name"])
            doc = uploads.register_upload(ctx, contents, filename, by=by, kind=upload_kind(spec))
        except ServiceError as exc:
            return dash.no_update, dash.no_update, _refused(exc.detail), None, None
        option = file_cards.option(doc)
        rest = [o for o in data or [] if o.get("value") != option["value"]]
        note = file_cards.registered(doc, title=f"Uploaded and picked for {zone['name']}")
        return [option, *rest], doc["file_id"], note, doc["file_id"], None


def _register_check(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.one(ids.PICK, MATCH), "error"),
        Output(ids.one(ids.SHEET_ERRORS, MATCH), "children"),
        Output(ids.one(ids.PICK_NOTE, MATCH), "children", allow_duplicate=True),
        Input(ids.one(ids.PICK, MATCH), "value"),
        State(ids.one(ids.PICK, MATCH), "id"),
        State(ids.one(ids.PICK_UPLOADED, MATCH), "data"),
        State(ids.WORKFLOW, "value"),
        prevent_initial_call=True,
    )
    def check(file_id: str | None, pick: dict, uploaded: Any, workflow: str | None) -> tuple:
        """What a submit would say about this file here, said now (and the upload's note
        goes once another file is picked)."""
        note = dash.no_update if file_id and file_id == uploaded else None
        if not file_id or not workflow:
            return None, None, note
        try:
            found = ctx.service.check_input(workflow, pick["name"], file_id)
        except ServiceError as exc:
            return exc.detail, None, note
        name = pick["name"]
        placed = errors.place(found, fields=(), inputs=(name,))
        return placed.input_error(name), errors.sheet_list(placed.sheets.get(name)), note


def _register_search(app: dash.Dash, ctx: Ctx) -> None:
    # Only a picker that lists fewer files than fit sends what is typed (the browser filters
    # the others by itself).
    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "pickerSearch"),
        Output(ids.one(ids.PICK_SEARCH, MATCH), "data"),
        Input(ids.one(ids.PICK, MATCH), "searchValue"),
        State(ids.one(ids.PICK_MORE, MATCH), "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.one(ids.PICK, MATCH), "data", allow_duplicate=True),
        Input(ids.one(ids.PICK_SEARCH, MATCH), "data"),
        State(ids.one(ids.PICK, MATCH), "value"),
        State(ids.one(ids.PICK, MATCH), "data"),
        State(ids.one(ids.PICK, MATCH), "id"),
        State(ids.WORKFLOW, "value"),
        prevent_initial_call=True,
    )
    def search(text: str | None, value: str | None, data: list, pick: dict, workflow: str) -> list:
        """The files that fit and match what was typed; the picked one stays listed. The
        picked file's own label (Mantine shows it as the search text) lists the newest again."""
        chosen = [o for o in data or [] if o.get("value") == value]
        typed = (text or "").strip()
        if chosen and typed == chosen[0].get("label"):
            typed = ""
        try:
            found, _more = options(ctx, _spec(ctx, workflow, pick["name"]), q=typed)
        except ServiceError:
            raise dash.exceptions.PreventUpdate from None
        return chosen + [o for o in found if o["value"] != value]
