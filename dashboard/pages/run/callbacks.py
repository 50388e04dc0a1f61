"""Every callback of the run page, registered once at startup."""

from __future__ import annotations

import dash

from dashboard.context import Ctx
from dashboard.pages.run import (
    actions,
    attempts,
    detail,
    eta_panel,
    jobs,
    live,
    results,
    run_log,
    timeline_panel,
    usage,
)


def register(app: dash.Dash, ctx: Ctx) -> None:
    live.register(app, ctx)
    jobs.register(app, ctx)
    detail.register(app, ctx)
    timeline_panel.register(app, ctx)
    actions.register(app, ctx)
    eta_panel.register(app, ctx)
    attempts.register(app, ctx)
    run_log.register(app, ctx)
    results.register(app, ctx)
    usage.register(app, ctx)
