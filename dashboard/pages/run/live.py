"""Live updates of the run page: each run summary the feed pushes is compared with the one the
page shows, and only what changed is sent back (a badge, one rule's row, one graph node...).

The rows of the job table and the timeline's bars are patched elsewhere, from the job summaries
of the same feed (assets/snakedeck.js, timeline_panel.py). Nothing here lists jobs, except the
few failed ones when the failed count moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypedDict

import dash
from dash import Input, Output, Patch, State

from dashboard import rule_graph
from dashboard.components import rule_progress, rule_row, state_badge
from dashboard.context import Ctx
from dashboard.pages.run import header, ids
from dashboard.pages.run.jobs import rule_options
from dashboard.pages.run.view import RunView
from snakedeck.service import ServiceError

Target = tuple[str, str]

OUTPUTS: Final[tuple[Target, ...]] = (
    (ids.STATE, "children"),
    (ids.DURATION, "children"),
    (ids.REASON, "children"),
    (ids.OVERALL, "children"),
    (ids.FAILED, "children"),
    (ids.ACTIONS, "children"),
    (ids.CANCEL_NOTE, "hide"),
    (ids.RULES, "children"),
    (ids.GRAPH, "elements"),
    (ids.GRAPH, "layout"),
    (ids.GRAPH, "style"),
    (ids.FILTER_RULE, "data"),
    (ids.RULEGRAPH, "data"),
    (ids.SHOWN, "data"),
    (ids.RULE_ORDER, "data"),
)


class Shown(TypedDict):
    """What the page shows: the summary it was rendered from, and its rules and graph nodes."""

    summary: dict[str, Any]
    nodes: list[str]
    registered: bool
    """Whether the run's workflow was registered when the page was rendered."""


def phase(summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the page's slower parts follow (the estimate's ticker, the attempts, the CPU and
    memory): assets/snakedeck.js ``phase`` moves it only when it changes, so a feed message
    costs them no round trip."""
    return {"state": summary.get("state"), "attempt": summary.get("attempt")}


def shown(summary: Mapping[str, Any], elements: list[dict[str, Any]], registered: bool) -> Shown:
    return {
        "summary": dict(summary),
        "nodes": [e["data"]["id"] for e in elements if "source" not in e["data"]],
        "registered": registered,
    }


def graph_style(elements: list[dict[str, Any]]) -> dict[str, str]:
    return {"width": "100%", "height": f"{rule_graph.height(elements)}px"}


def _header(ctx: Ctx, old: RunView, new: RunView) -> dict[Target, Any]:
    out: dict[Target, Any] = {(ids.DURATION, "children"): header.duration_text(new)}
    if new.state != old.state:
        out[(ids.STATE, "children")] = state_badge(new.state, size="lg")
    if header.reason_text(new) != header.reason_text(old):
        out[(ids.REASON, "children")] = header.reason_text(new)
    if new.progress != old.progress:
        out[(ids.OVERALL, "children")] = header.overall(new)
    if new.failed != old.failed:
        out[(ids.FAILED, "children")] = header.failed_jobs(ctx, new)
    if (new.why_no_resume, new.why_no_rerun, new.why_no_cancel) != (
        old.why_no_resume,
        old.why_no_rerun,
        old.why_no_cancel,
    ):
        out[(ids.ACTIONS, "children")] = header.actions(new)
    if new.cancelling != old.cancelling:
        out[(ids.CANCEL_NOTE, "hide")] = not new.cancelling
    return out


def _rules(old: RunView, new: RunView) -> dict[Target, Any]:
    if new.rules != old.rules:
        return {
            (ids.RULES, "children"): rule_progress(new.rules, new.rule_counts),
            (ids.FILTER_RULE, "data"): rule_options(new),
        }
    changed = [i for i, r in enumerate(new.rules) if new.rule_counts[r] != old.rule_counts.get(r)]
    if not changed:
        return {}
    rows = Patch()
    for i in changed:
        rows["props"]["children"][i] = rule_row(new.rules[i], new.rule_counts[new.rules[i]])
    return {(ids.RULES, "children"): rows}


def _graph(
    ctx: Ctx, before: Shown, old: RunView, new: RunView, rulegraph: Any
) -> tuple[dict[Target, Any], list[dict[str, Any]]]:
    out: dict[Target, Any] = {}
    if not rulegraph and new.rule_order and new.rule_order != old.rule_order:
        try:  # the rule graph arrived (rule_order is derived from it): fetch it once
            rulegraph = ctx.service.get_run(new.run_id).get("rulegraph")
            out[(ids.RULEGRAPH, "data")] = rulegraph
        except ServiceError:
            pass
    elements = rule_graph.elements(rulegraph, new.rule_counts, new.rule_order)
    nodes = [e for e in elements if "source" not in e["data"]]
    if [n["data"]["id"] for n in nodes] != before["nodes"] or (ids.RULEGRAPH, "data") in out:
        out[(ids.GRAPH, "elements")] = elements
        out[(ids.GRAPH, "layout")] = rule_graph.layout(elements)
        out[(ids.GRAPH, "style")] = graph_style(elements)
        return out, elements
    patch = Patch()
    touched = False
    for i, n in enumerate(nodes):
        rule = n["data"]["id"]
        if new.rule_counts.get(rule) != old.rule_counts.get(rule):
            patch[i] = n
            touched = True
    if touched:
        out[(ids.GRAPH, "elements")] = patch
    return out, elements


def changes(ctx: Ctx, before: Shown, summary: Mapping[str, Any], rulegraph: Any) -> dict:
    """Every output that must change for the page to show ``summary`` instead of ``before``."""
    registered = bool(before.get("registered", True))
    old = RunView.of(before["summary"], registered=registered)
    new = RunView.of(summary, registered=registered)
    out = _header(ctx, old, new)
    out.update(_rules(old, new))
    graph, elements = _graph(ctx, before, old, new, rulegraph)
    out.update(graph)
    out[(ids.SHOWN, "data")] = shown(summary, elements, registered)
    if new.rules != old.rules:  # the timeline re-orders its lanes on it
        out[(ids.RULE_ORDER, "data")] = list(new.rules)
    return out


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        *[Output(i, p, allow_duplicate=(i, p) == (ids.CANCEL_NOTE, "hide")) for i, p in OUTPUTS],
        Input(ids.LIVE, "data"),
        State(ids.SHOWN, "data"),
        State(ids.RULEGRAPH, "data"),
        prevent_initial_call=True,
    )
    def render_live(summary: dict[str, Any] | None, before: Shown | None, rulegraph: Any) -> tuple:
        if not summary or not before or summary.get("run_id") != before["summary"].get("run_id"):
            raise dash.exceptions.PreventUpdate
        out = changes(ctx, before, summary, rulegraph)
        return tuple(out.get(target, dash.no_update) for target in OUTPUTS)

    # The run's phase, moved in the browser only when it changes (see ``phase``).
    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "phase"),
        Output(ids.PHASE, "data"),
        Input(ids.LIVE, "data"),
        State(ids.PHASE, "data"),
        prevent_initial_call=True,
    )

    # A new graph box size: Cytoscape only measures its container on a window resize, so it
    # is told to, and lays the graph out again in the box it now has.
    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "refitGraph"),
        Output(ids.GRAPH_SINK, "data"),
        Input(ids.GRAPH, "style"),
        State(ids.GRAPH, "layout"),
        prevent_initial_call=True,
    )
