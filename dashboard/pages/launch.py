"""Launch a run: pick a workflow, fill the form generated from its config schema, add tags."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import dash
import dash_mantine_components as dmc
from dash import ALL, Input, Output, State, html

from dashboard import schema_form
from snakedeck.service import Invalid, ServiceError


def layout(ctx: Any, search: str = "") -> Any:
    try:
        workflows = ctx.service.list_workflows()
        problem = None
    except ServiceError as exc:
        workflows, problem = [], exc.detail
    wanted = (parse_qs(search.lstrip("?")).get("workflow") or [None])[0]
    names = [w["name"] for w in workflows]
    selected = wanted if wanted in names else (names[0] if len(names) == 1 else None)
    return dmc.Stack(
        [
            dmc.Title("Launch a run", order=2),
            dmc.Alert(problem, color="red", title="Workflows unavailable") if problem else None,
            dmc.Grid(
                [
                    dmc.GridCol(
                        dmc.Paper(
                            dmc.Stack(
                                [
                                    dmc.Select(
                                        id="launch-workflow",
                                        label="Workflow",
                                        placeholder="Pick a registered workflow",
                                        data=[
                                            {"value": w["name"], "label": w["name"]}
                                            for w in workflows
                                        ],
                                        value=selected,
                                        searchable=True,
                                        allowDeselect=False,
                                        withAsterisk=True,
                                    ),
                                    html.Div(id="launch-about"),
                                    dmc.Divider(label="Configuration", labelPosition="left"),
                                    html.Div(id="launch-fields"),
                                    dmc.Divider(label="Tags", labelPosition="left"),
                                    dmc.TextInput(
                                        id="launch-tags",
                                        placeholder="project=liver, batch=7",
                                        description="key=value pairs, separated by commas",
                                    ),
                                    dmc.Alert(
                                        id="launch-error",
                                        color="red",
                                        title="The run was not started",
                                        hide=True,
                                    ),
                                    dmc.Group(
                                        dmc.Button(
                                            "Start run",
                                            id="launch-submit",
                                            size="md",
                                            disabled=True,
                                        ),
                                        justify="flex-end",
                                    ),
                                ],
                                gap="md",
                            ),
                            p="lg",
                            withBorder=True,
                        ),
                        span={"base": 12, "md": 8},
                    ),
                    dmc.GridCol(
                        dmc.Paper(
                            dmc.Stack(
                                [
                                    dmc.Text("How it works", fw=600),
                                    dmc.Text(
                                        "The form follows the workflow's own configuration "
                                        "schema: defaults are filled in, and each value is "
                                        "checked as you type. Fields left blank use the "
                                        "workflow's defaults.",
                                        size="sm",
                                        c="dimmed",
                                    ),
                                    dmc.Text(
                                        "After you start the run you land on its page, which "
                                        "updates live: no need to reload.",
                                        size="sm",
                                        c="dimmed",
                                    ),
                                ],
                                gap="xs",
                            ),
                            p="lg",
                            withBorder=True,
                        ),
                        span={"base": 12, "md": 4},
                    ),
                ]
            ),
        ],
        gap="md",
    )


def _specs(ctx: Any, name: str | None) -> list[schema_form.FieldSpec]:
    if not name:
        return []
    return schema_form.fields_from_schema(ctx.service.get_workflow(name).get("config_schema"))


def _values(ids: list[dict], values: list, bool_ids: list[dict], checks: list) -> dict[str, Any]:
    out = {i["name"]: v for i, v in zip(ids, values, strict=False)}
    out.update({i["name"]: v for i, v in zip(bool_ids, checks, strict=False)})
    return out


def register(app: dash.Dash, ctx: Any) -> None:
    @app.callback(
        Output("launch-about", "children"),
        Output("launch-fields", "children"),
        Output("launch-submit", "disabled"),
        Input("launch-workflow", "value"),
    )
    def pick(name: str | None) -> tuple[Any, Any, bool]:
        if not name:
            return dmc.Text("Choose a workflow to see its settings.", c="dimmed"), None, True
        try:
            wf = ctx.service.get_workflow(name)
        except ServiceError as exc:
            return dmc.Alert(exc.detail, color="red"), None, True
        about = dmc.Stack(
            [
                dmc.Group(
                    [
                        dmc.Text(wf["name"], fw=700),
                        dmc.Badge(f"v{wf['version']}", variant="light", color="gray"),
                    ],
                    gap="xs",
                ),
                dmc.Text(wf.get("description") or "", size="sm", c="dimmed"),
            ],
            gap=4,
        )
        specs = schema_form.fields_from_schema(wf.get("config_schema"))
        fields = [schema_form.field_component(s) for s in specs]
        if not fields:
            fields = [dmc.Text("This workflow takes no configuration.", c="dimmed", size="sm")]
        return about, dmc.SimpleGrid(fields, cols={"base": 1, "sm": 2}, spacing="md"), False

    @app.callback(
        Output({"type": schema_form.FIELD_TYPE, "name": ALL}, "error"),
        Input({"type": schema_form.FIELD_TYPE, "name": ALL}, "value"),
        State({"type": schema_form.FIELD_TYPE, "name": ALL}, "id"),
        State("launch-workflow", "value"),
        prevent_initial_call=True,
    )
    def check(values: list, ids: list[dict], name: str | None) -> list:
        try:
            specs = {s.name: s for s in _specs(ctx, name)}
        except ServiceError:
            raise dash.exceptions.PreventUpdate from None
        return [
            schema_form.field_error(specs[i["name"]], v) if i["name"] in specs else None
            for i, v in zip(ids, values, strict=False)
        ]

    @app.callback(
        Output("url", "href"),
        Output("launch-error", "children"),
        Output("launch-error", "hide"),
        Output({"type": schema_form.FIELD_TYPE, "name": ALL}, "error", allow_duplicate=True),
        Output("launch-tags", "error"),
        Input("launch-submit", "n_clicks"),
        State("launch-workflow", "value"),
        State({"type": schema_form.FIELD_TYPE, "name": ALL}, "value"),
        State({"type": schema_form.FIELD_TYPE, "name": ALL}, "id"),
        State({"type": schema_form.BOOL_FIELD_TYPE, "name": ALL}, "checked"),
        State({"type": schema_form.BOOL_FIELD_TYPE, "name": ALL}, "id"),
        State("launch-tags", "value"),
        State("token", "data"),
        State("user", "data"),
        prevent_initial_call=True,
    )
    def submit(_n, name, values, ids, checks, bool_ids, tags_text, token, user):  # type: ignore[no-untyped-def]
        if not _n:
            raise dash.exceptions.PreventUpdate  # the button mounting, not a click
        keep = [dash.no_update] * len(ids)
        if not name:
            return dash.no_update, "Pick a workflow first.", False, keep, None
        specs = _specs(ctx, name)
        config, errors = schema_form.config_from_values(
            specs, _values(ids, values, bool_ids, checks)
        )
        tags, tag_error = schema_form.parse_tags(tags_text)
        field_errors = [errors.get(i["name"]) for i in ids]
        if errors or tag_error:
            return (
                dash.no_update,
                "Some values need fixing (see the messages next to them).",
                False,
                field_errors,
                tag_error,
            )
        if not ctx.authorized(token):
            return (
                dash.no_update,
                "This server requires an API token to start runs: click “Token” at the top "
                "right and paste yours.",
                False,
                field_errors,
                None,
            )
        try:
            created = ctx.service.submit_run(name, config, [], tags, user)
        except Invalid as exc:
            by_field = {
                str(e.get("field", "")).removeprefix("config."): e.get("message")
                for e in exc.errors
            }
            tag_msg = next((m for f, m in by_field.items() if f.startswith("tags")), None)
            return (
                dash.no_update,
                exc.detail,
                False,
                [by_field.get(i["name"]) for i in ids],
                tag_msg,
            )
        except ServiceError as exc:
            return dash.no_update, exc.detail, False, field_errors, None
        return f"/dashboard/runs/{created['run_id']}", None, True, field_errors, None
