"""The launch form as first rendered: the workflow picker (unavailable workflows shown, not
selectable, with the reason), and the boxes the workflow's inputs and settings fill."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import dash_mantine_components as dmc
from dash import html

from dashboard import schema_form, uploads
from dashboard.context import Ctx
from dashboard.formatting import format_size
from dashboard.pages.launch import config_file, ids
from snakedeck.service import ServiceError


def workflow_options(workflows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "value": w["name"],
            "label": w["name"] if w.get("available", True) else f"{w['name']} (unavailable here)",
            "disabled": not w.get("available", True),
        }
        for w in workflows
    ]


def unavailable_list(workflows: list[Mapping[str, Any]]) -> Any:
    """Which workflows this server cannot run, and why (a disabled option cannot say it)."""
    lines = [
        dmc.Text(
            [dmc.Code(w["name"]), f" {w.get('unavailable_reason') or 'is unavailable'}"],
            size="xs",
            c="dimmed",
        )
        for w in workflows
        if not w.get("available", True)
    ]
    return dmc.Stack(lines, gap=2, id=ids.UNAVAILABLE) if lines else html.Div(id=ids.UNAVAILABLE)


def _form(ctx: Ctx, workflows: list[Mapping[str, Any]], selected: str | None) -> Any:
    return dmc.Paper(
        dmc.Stack(
            [
                dmc.Select(
                    id=ids.WORKFLOW,
                    label="Workflow",
                    placeholder="Pick a registered workflow",
                    data=workflow_options(workflows),
                    value=selected,
                    searchable=True,
                    allowDeselect=False,
                    withAsterisk=True,
                ),
                unavailable_list(workflows),
                html.Div(id=ids.ABOUT),
                dmc.Divider(label="Inputs", labelPosition="left"),
                html.Div(id=ids.INPUTS),
                dmc.Divider(label="Configuration", labelPosition="left"),
                config_file.picker(ctx),
                html.Div(id=ids.FIELDS_BOX),
                dmc.Divider(label="Tags", labelPosition="left"),
                dmc.TextInput(
                    id=ids.TAGS,
                    placeholder="project=liver, batch=7",
                    description="key=value pairs, separated by commas",
                ),
                dmc.Alert(id=ids.ERROR, color="red", title="The run was not started", hide=True),
                dmc.Group(
                    dmc.Button("Start run", id=ids.SUBMIT, size="md", disabled=True),
                    justify="flex-end",
                ),
            ],
            gap="md",
        ),
        p="lg",
        withBorder=True,
    )


def _help(ctx: Ctx) -> Any:
    limit = format_size(uploads.upload_limit(ctx.settings))
    texts = [
        "Each input takes a registered file: pick one, or upload one right beside it (it is "
        "registered and picked). A sample sheet is checked as soon as it is picked; its "
        "problems are listed by row and column.",
        f"Uploads from the browser are limited to {limit}; larger files go in with "
        "`snakedeck files upload` or the REST API, and are then picked here.",
        "A config file fills the form with its values; what you change overrides it, and "
        "the run records the file it started from. Fields left blank use the workflow's "
        "defaults. A list takes one value per tag: type it and press Enter.",
        "After you start the run you land on its page, which updates live.",
    ]
    return dmc.Paper(
        dmc.Stack(
            [dmc.Text("How it works", fw=600)] + [schema_form.description(t) for t in texts],
            gap="xs",
            className="sd-help",
        ),
        p="lg",
        withBorder=True,
    )


def layout(ctx: Ctx, search: str = "") -> Any:
    try:
        workflows: list[Mapping[str, Any]] = list(ctx.service.list_workflows())
        problem = None
    except ServiceError as exc:
        workflows, problem = [], exc.detail
    wanted = (parse_qs(search.lstrip("?")).get("workflow") or [None])[0]
    names = [w["name"] for w in workflows]
    runnable = [w["name"] for w in workflows if w.get("available", True)]
    selected = wanted if wanted in names else (runnable[0] if len(runnable) == 1 else None)
    return dmc.Stack(
        [
            dmc.Title("Launch a run", order=2),
            dmc.Alert(problem, color="red", title="Workflows unavailable") if problem else None,
            dmc.Grid(
                [
                    dmc.GridCol(_form(ctx, workflows, selected), span={"base": 12, "md": 8}),
                    dmc.GridCol(_help(ctx), span={"base": 12, "md": 4}),
                ]
            ),
        ],
        gap="md",
    )
