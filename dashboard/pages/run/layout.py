"""The run page as first rendered from the service; live.py keeps it current from then on."""

from __future__ import annotations

from typing import Any

import dash_cytoscape as cyto
import dash_mantine_components as dmc
from dash import dcc, html

from dashboard import rule_graph
from dashboard.components import rule_progress
from dashboard.context import Ctx
from dashboard.pages.run import (
    actions,
    attempts,
    detail,
    eta_panel,
    header,
    ids,
    jobs,
    live,
    results,
    run_log,
    timeline_panel,
    usage,
)
from dashboard.pages.run.view import RunView
from snakedeck.projection import run_summary
from snakedeck.service import NotFound, ServiceError
from snakedeck.states import TERMINAL_RUN_STATES

INITIAL_EVENTS = 200


def _card(title: str, body: Any) -> Any:
    return dmc.Paper(dmc.Stack([dmc.Text(title, fw=600), body], gap="sm"), p="md", withBorder=True)


def graph(view: RunView, rulegraph: Any) -> tuple[Any, list[dict[str, Any]]]:
    elements = rule_graph.elements(rulegraph, view.rule_counts, view.rule_order)
    return (
        cyto.Cytoscape(
            id=ids.GRAPH,
            elements=elements,
            layout=rule_graph.layout(elements),
            stylesheet=rule_graph.stylesheet(),
            style=live.graph_style(elements),
            userZoomingEnabled=True,
            minZoom=0.3,
            maxZoom=2.0,
        ),
        elements,
    )


def tabs(view: RunView, run: dict[str, Any]) -> Any:
    """The run's tabs. Every panel but the Timeline stays mounted while hidden (the job grid
    keeps its rows and scroll); the Timeline's two charts mount when it is first opened, so
    plotly.js is not loaded, parsed and run on the way to the first job rows."""
    return dmc.Tabs(
        [
            dmc.TabsList(
                [
                    dmc.TabsTab("Jobs", value="jobs"),
                    dmc.TabsTab("Timeline", value="timeline"),
                    dmc.TabsTab("Log", value="log"),
                    dmc.TabsTab("Results", value="results"),
                    dmc.TabsTab("Events", value="events"),
                ]
            ),
            dmc.TabsPanel(run_log.panel(), value="log", pt="sm", keepMounted=True),
            dmc.TabsPanel(results.panel(), value="results", keepMounted=True),
            dmc.TabsPanel(jobs.panel(view), value="jobs", keepMounted=True),
            dmc.TabsPanel(timeline_panel.panel(usage.chart(run)), value="timeline", pt="sm"),
            dmc.TabsPanel(
                html.Div(id=ids.EVENTS, className="sd-events"),
                value="events",
                pt="sm",
                keepMounted=True,
            ),
        ],
        id=ids.TABS,
        value="jobs",
        keepMounted=False,
    )


def feed(ctx: Ctx, run: dict[str, Any]) -> dict[str, Any]:
    """What assets/snakedeck.js needs to follow the run: where, from which seq, the recent
    events to show at once, and which run states end a run (the core's, not a copy)."""
    run_id = run["run_id"]
    last_seq = int(run.get("last_seq") or 0)
    try:
        events = ctx.service.list_events(
            run_id, after_seq=max(0, last_seq - INITIAL_EVENTS), limit=INITIAL_EVENTS
        )["events"]
    except ServiceError:
        events = []
    return {
        "kind": "run",
        "path": f"/ws/runs/{run_id}",
        "run_id": run_id,
        "after_seq": max([last_seq, *[int(e["seq"]) for e in events]]),
        "events": events,
        "log": run_log.initial(ctx, run_id),
        "terminal": sorted(TERMINAL_RUN_STATES),
    }


def workflow_registered(ctx: Ctx, name: str | None) -> bool:
    """Whether a rerun could find the run's workflow (a service hiccup is not a no)."""
    if not name:
        return False
    try:
        ctx.service.get_workflow(name)
    except NotFound:
        return False
    except ServiceError:
        return True
    return True


def layout(ctx: Ctx, run_id: str) -> tuple[Any, Any]:
    """The page for one run and the live feed it follows (``None``: no such run)."""
    try:
        run = ctx.service.get_run(run_id)
    except NotFound as exc:
        return dmc.Alert(exc.detail, title="No such run", color="yellow"), None
    except ServiceError as exc:
        return dmc.Alert(exc.detail, title="Run unavailable", color="red"), None
    summary = run_summary(run)
    registered = workflow_registered(ctx, summary.get("workflow"))
    view = RunView.of(summary, registered=registered)
    cytoscape, elements = graph(view, run.get("rulegraph"))
    side = dmc.Stack(
        [
            _card("Rules", html.Div(rule_progress(view.rules, view.rule_counts), id=ids.RULES)),
            _card("Rule graph", cytoscape),
            _card("CPU and memory", usage.side(run)),
            _card("Attempts", attempts.panel(run)),
        ],
        gap="md",
    )
    body = dmc.Stack(
        [
            dcc.Store(id=ids.RUN_ID, data=run_id),
            dcc.Store(id=ids.LIVE, data=summary),
            dcc.Store(id=ids.PHASE, data=live.phase(summary)),
            dcc.Store(id=ids.RESULTS_KEY),
            dcc.Store(id=ids.RULE_ORDER, data=list(view.rules)),
            dcc.Store(id=ids.SHOWN, data=live.shown(summary, elements, registered)),
            dcc.Store(id=ids.RULEGRAPH, data=run.get("rulegraph")),
            dcc.Store(id=ids.GRAPH_SINK),
            header.header(ctx, view, eta_panel.panel(run)),
            dmc.Grid(
                [
                    dmc.GridCol(side, span={"base": 12, "lg": 4}, order={"base": 2, "lg": 1}),
                    dmc.GridCol(
                        dmc.Paper(tabs(view, run), p="md", withBorder=True),
                        span={"base": 12, "lg": 8},
                        order={"base": 1, "lg": 2},
                    ),
                ],
                gutter="md",
            ),
            detail.drawer(),
            actions.confirm_modal(),
        ],
        gap="md",
    )
    return body, feed(ctx, run)
