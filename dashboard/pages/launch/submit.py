"""Start the run: the form's values through the service's ``submit_run`` (token checked by
:func:`dashboard.context.write_callback`), and every problem it names shown where it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State

from dashboard import schema_form
from dashboard.context import Ctx, write_callback
from dashboard.pages.launch import errors, form, ids
from snakedeck.auth import Principal
from snakedeck.service import Invalid, ServiceError

FIX = "Some values need fixing: see the messages next to them."
REQUIRED = "required: pick a registered file, or upload one"

OUTPUTS = (
    Output("url", "href"),
    Output(ids.ERROR, "children"),
    Output(ids.ERROR, "hide"),
    Output(ids.FIELDS, "error", allow_duplicate=True),
    Output(ids.TAGS, "error"),
    Output(ids.PICKS, "error", allow_duplicate=True),
    Output(ids.SHEETS, "children", allow_duplicate=True),
    Output(ids.CONFIG_FILE, "error", allow_duplicate=True),
    Output(ids.WORKFLOW, "error"),
)
STATES = (
    State(ids.WORKFLOW, "value"),
    State(ids.FIELDS, "value"),
    State(ids.FIELDS, "id"),
    State(ids.BOOL_FIELDS, "checked"),
    State(ids.BOOL_FIELDS, "id"),
    State(ids.TAGS, "value"),
    State(ids.PICKS, "value"),
    State(ids.PICKS, "id"),
    State(ids.CONFIG_FILE, "value"),
)


@dataclass(frozen=True)
class Form:
    """The launch form's values, in the order of :data:`STATES`."""

    workflow: str | None
    values: list[Any]
    field_ids: list[dict[str, str]]
    checks: list[bool]
    bool_ids: list[dict[str, str]]
    tags_text: str | None
    picks: list[str | None]
    pick_ids: list[dict[str, str]]
    config_file: str | None

    def field_values(self) -> dict[str, Any]:
        out = {i["name"]: v for i, v in zip(self.field_ids, self.values, strict=False)}
        out.update({i["name"]: v for i, v in zip(self.bool_ids, self.checks, strict=False)})
        return out

    def inputs(self) -> dict[str, str]:
        return {i["name"]: v for i, v in zip(self.pick_ids, self.picks, strict=False) if v}


def answer(
    f: Form,
    *,
    url: Any = dash.no_update,
    message: Any = None,
    placed: errors.Placed | None = None,
    picks: str = "all",
) -> tuple:
    """Every output: where the run went, or the message and each problem at its place.
    ``placed=None`` leaves every inline message as it is. The pickers: ``all`` shows what
    ``placed`` says of each; ``missing`` only marks the required ones left empty (the others'
    own check already speaks for them); ``keep`` leaves them."""
    keep = dash.no_update
    fields = [keep] * len(f.field_ids)
    pick_errors, sheets = [keep] * len(f.pick_ids), [keep] * len(f.pick_ids)
    tags = config_file = workflow = keep
    if placed is not None:
        fields = [placed.fields.get(i["name"]) for i in f.field_ids]
        tags, config_file, workflow = placed.tags, placed.config_file, placed.workflow
        if picks == "all":
            pick_errors = [placed.input_error(i["name"]) for i in f.pick_ids]
            sheets = [errors.sheet_list(placed.sheets.get(i["name"])) for i in f.pick_ids]
        elif picks == "missing":
            pick_errors = [placed.inputs.get(i["name"], keep) for i in f.pick_ids]
    return (
        url,
        message,
        message is None,
        fields,
        tags,
        pick_errors,
        sheets,
        config_file,
        workflow,
    )


def local_problems(ctx: Ctx, f: Form) -> tuple[errors.Placed, dict[str, Any], dict[str, str]]:
    """What the form can tell before asking the service: schema checks of each value, tags,
    required inputs left empty. ``(problems, config, tags)``."""
    config, field_errors = schema_form.config_from_values(
        form.specs_of(ctx, f.workflow), f.field_values()
    )
    tags, tag_error = schema_form.parse_tags(f.tags_text)
    wf = ctx.service.get_workflow(str(f.workflow))
    required = {s["name"] for s in wf.get("inputs") or [] if s.get("required")}
    placed = errors.Placed(fields=field_errors, tags=tag_error)
    placed.inputs = {n: REQUIRED for n in required if not f.inputs().get(n)}
    return placed, config, tags


def refused(f: Form, exc: Invalid) -> tuple:
    placed = errors.place(
        exc.errors,
        fields=[i["name"] for i in [*f.field_ids, *f.bool_ids]],
        inputs=[i["name"] for i in f.pick_ids],
    )
    if not placed:
        return answer(f, message=exc.detail, placed=placed)
    about_inputs = any(str(e.get("field", "")).startswith("inputs") for e in exc.errors)
    general = [dmc.Text(g, size="sm") for g in placed.general]
    picks = "all" if about_inputs else "keep"
    return answer(f, message=[dmc.Text(FIX, size="sm"), *general], placed=placed, picks=picks)


def _denied(message: str, _n: Any, *states: Any) -> tuple:
    """No token for a submit: say so, and leave every inline message as it is."""
    return answer(Form(*states), message=message)


def register(app: dash.Dash, ctx: Ctx) -> None:
    @write_callback(app, ctx, *OUTPUTS, Input(ids.SUBMIT, "n_clicks"), *STATES, denied=_denied)
    def submit(by: Principal, _n: int | None, *states: Any) -> tuple:
        f = Form(*states)
        if not f.workflow:
            return answer(f, message="Pick a workflow first.")
        try:
            placed, config, tags = local_problems(ctx, f)
            if placed:
                return answer(f, message=FIX, placed=placed, picks="missing")
            created = ctx.service.submit_run(
                f.workflow, config, f.inputs(), tags, by=by, config_file=f.config_file or None
            )
        except Invalid as exc:
            return refused(f, exc)
        except ServiceError as exc:
            return answer(f, message=exc.detail)
        return answer(f, url=f"/dashboard/runs/{created['run_id']}", placed=errors.Placed())
