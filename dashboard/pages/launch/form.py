"""Choosing a workflow renders its inputs, its config-file picker and the form generated from
its config schema; each config value is checked against the schema as it is typed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State

from dashboard import schema_form
from dashboard.context import Ctx
from dashboard.pages.launch import config_file, ids, inputs
from snakedeck.service import ServiceError


def about(wf: Mapping[str, Any]) -> Any:
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Text(wf["name"], fw=700),
                    dmc.Badge(f"v{wf['version']}", variant="light", color="gray"),
                ],
                gap="xs",
            ),
            schema_form.description(wf.get("description") or ""),
        ],
        gap=4,
        className="sd-about",
    )


def settings(wf: Mapping[str, Any]) -> Any:
    """One field per property of the config schema."""
    specs = schema_form.fields_from_schema(wf.get("config_schema"))
    fields = [schema_form.field_component(s) for s in specs]
    if not fields:
        fields = [dmc.Text("This workflow takes no configuration.", c="dimmed", size="sm")]
    return dmc.SimpleGrid(fields, cols={"base": 1, "sm": 2}, spacing="md")


def specs_of(ctx: Ctx, name: str | None) -> list[schema_form.FieldSpec]:
    if not name:
        return []
    return schema_form.fields_from_schema(ctx.service.get_workflow(name).get("config_schema"))


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.ABOUT, "children"),
        Output(ids.INPUTS, "children"),
        Output(ids.FIELDS_BOX, "children"),
        Output(ids.SUBMIT, "disabled"),
        Output(ids.CONFIG_FILE, "data"),
        Output(ids.CONFIG_FILE, "value"),
        Output(ids.CONFIG_FILE, "placeholder"),
        Output(ids.CONFIG_FILE, "disabled"),
        Input(ids.WORKFLOW, "value"),
    )
    def pick(name: str | None) -> tuple:
        off = ([], None, "Pick a workflow first", True)
        if not name:
            return (
                dmc.Text("Choose a workflow to see its settings.", c="dimmed"),
                None,
                None,
                True,
                *off,
            )
        try:
            wf = ctx.service.get_workflow(name)
            if not wf.get("available", True):
                reason = f"{name} {wf.get('unavailable_reason') or 'is unavailable here'}."
                alert = dmc.Alert(reason, title="Unavailable here", color="yellow")
                return [about(wf), alert], None, None, True, *off
            configs = config_file.options(ctx, name)
            on = (configs, None, config_file.placeholder(configs), False)
            return about(wf), inputs.pickers(ctx, wf), settings(wf), False, *on
        except ServiceError as exc:
            return dmc.Alert(exc.detail, color="red"), None, None, True, *off

    @app.callback(
        Output(ids.FIELDS, "error"),
        Input(ids.FIELDS, "value"),
        State(ids.FIELDS, "id"),
        State(ids.WORKFLOW, "value"),
        prevent_initial_call=True,
    )
    def check(values: list, field_ids: list[dict], name: str | None) -> list:
        try:
            specs = {s.name: s for s in specs_of(ctx, name)}
        except ServiceError:
            raise dash.exceptions.PreventUpdate from None
        return [
            schema_form.field_error(specs[i["name"]], v) if i["name"] in specs else None
            for i, v in zip(field_ids, values, strict=False)
        ]
