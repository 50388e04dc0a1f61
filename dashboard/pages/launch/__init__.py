"""Launch a run: pick a workflow, a registered file for each of its inputs (or upload one right
there), optionally a config file, fill the form generated from its config schema, add tags.

layout.py renders the page; form.py follows the workflow picked; inputs.py and config_file.py
are the file pickers; submit.py starts the run and shows each problem the service names where
it is (errors.py).
"""

from __future__ import annotations

import dash

from dashboard.context import Ctx
from dashboard.pages.launch import config_file, form, inputs, submit
from dashboard.pages.launch.layout import layout

__all__ = ["layout", "register"]


def register(app: dash.Dash, ctx: Ctx) -> None:
    form.register(app, ctx)
    inputs.register(app, ctx)
    config_file.register(app, ctx)
    submit.register(app, ctx)
