"""Pure builders for the run page's pictures: the job timeline (Plotly) and the rule graph
(Cytoscape elements). No Dash callbacks here, so they are unit-tested on plain data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go

from dashboard.theme import JOB_STATES, MANTINE_HEX, job_state_color, parse_ts, rule_state

NEUTRAL = "#868e96"  # readable axis/text color on both a light and a dark background


def _label(job: Mapping[str, Any]) -> str:
    wc = job.get("wildcards")
    if isinstance(wc, Mapping) and wc:
        return ", ".join(f"{k}={v}" for k, v in wc.items())
    return ""


def gantt_figure(
    jobs: Iterable[Mapping[str, Any]], *, now: datetime | None = None, truncated: int = 0
) -> go.Figure:
    """Jobs as horizontal bars on a time axis, one lane per rule, colored by job state.

    A job still running ends at ``now``; a job that never started is left out (it has no
    place in time yet). ``truncated`` (jobs not drawn) is shown in the title.
    """
    now = now or datetime.now(UTC)
    lanes: list[str] = []
    by_state: dict[str, dict[str, list[Any]]] = {
        s: {"y": [], "base": [], "x": [], "text": [], "ids": []} for s in JOB_STATES
    }
    drawn = 0
    for job in jobs:
        start = parse_ts(job.get("started_at"))
        if start is None:
            continue
        end = parse_ts(job.get("finished_at")) or (now if job.get("state") == "running" else start)
        rule = str(job.get("rule") or "?")
        if rule not in lanes:
            lanes.append(rule)
        state = str(job.get("state") or "pending")
        bucket = by_state.setdefault(state, {"y": [], "base": [], "x": [], "text": [], "ids": []})
        millis = max((end - start).total_seconds() * 1000.0, 1.0)
        bucket["y"].append(rule)
        bucket["base"].append(start.isoformat())
        bucket["x"].append(millis)
        wc = _label(job)
        bucket["text"].append(
            f"job {job.get('jobid')} · {rule}{' · ' + wc if wc else ''}<br>"
            f"{state}, {millis / 1000:.1f} s"
        )
        bucket["ids"].append(str(job.get("jobid")))
        drawn += 1

    fig = go.Figure()
    for state, b in by_state.items():
        if not b["y"]:
            continue
        fig.add_trace(
            go.Bar(
                name=state,
                orientation="h",
                y=b["y"],
                base=b["base"],
                x=b["x"],
                customdata=b["ids"],
                hovertext=b["text"],
                hoverinfo="text",
                marker={"color": MANTINE_HEX[job_state_color(state)], "line": {"width": 0}},
                opacity=0.85,
            )
        )
    title = f"{drawn} jobs" + (f" (first {drawn}; {truncated} more not drawn)" if truncated else "")
    fig.update_layout(
        barmode="overlay",
        title={"text": title, "font": {"size": 13, "color": NEUTRAL}},
        height=max(260, 60 + 34 * len(lanes)),
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"color": NEUTRAL},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        xaxis={"type": "date", "gridcolor": "rgba(134,142,150,0.25)"},
        yaxis={
            "categoryorder": "array",
            "categoryarray": list(reversed(lanes)),
            "automargin": True,
            "gridcolor": "rgba(134,142,150,0.25)",
        },
    )
    return fig


def rule_graph_elements(
    rulegraph: Mapping[str, Any] | None, rule_counts: Mapping[str, Mapping[str, Any]] | None
) -> list[dict[str, Any]]:
    """Cytoscape elements for the rule graph: a node per rule, an edge per dependency.

    ``rulegraph`` is Snakemake's ``{"nodes": [{"rule": …}], "links": [{"source": i,
    "target": j}]}`` (source is the dependency); without one, the rules of ``rule_counts``
    become unconnected nodes. Each node carries its job counts and a ``state`` (class) for
    coloring.
    """
    counts = dict(rule_counts or {})
    names: list[str] = []
    edges: list[tuple[str, str]] = []
    nodes = (rulegraph or {}).get("nodes") if isinstance(rulegraph, Mapping) else None
    if isinstance(nodes, list) and nodes:
        index = [str(n.get("rule") if isinstance(n, Mapping) else n) for n in nodes]
        for name in index:
            if name not in names:
                names.append(name)
        for link in (rulegraph or {}).get("links") or []:
            try:
                src, dst = index[int(link["source"])], index[int(link["target"])]
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if src != dst and (src, dst) not in edges:
                edges.append((src, dst))
    for name in counts:
        if name not in names:
            names.append(name)

    elements: list[dict[str, Any]] = []
    for name in names:
        c = counts.get(name) or {}
        total = int(c.get("total") or 0)
        done = int(c.get("done") or 0)
        failed = int(c.get("failed") or 0)
        state = rule_state(c)
        label = f"{name}\n{done}/{total}" + (f" · {failed} failed" if failed else "")
        elements.append(
            {
                "data": {"id": name, "label": label, "state": state, "total": total},
                "classes": state,
            }
        )
    for src, dst in edges:
        elements.append({"data": {"id": f"{src}->{dst}", "source": src, "target": dst}})
    return elements


def cytoscape_stylesheet() -> list[dict[str, Any]]:
    sheet: list[dict[str, Any]] = [
        {
            "selector": "node",
            "style": {
                "label": "data(label)",
                "text-wrap": "wrap",
                "text-valign": "center",
                "text-halign": "center",
                "shape": "round-rectangle",
                "width": "label",
                "height": "label",
                "padding": "10px",
                "font-size": "12px",
                "color": "#ffffff",
                "text-outline-width": 0,
                "border-width": 0,
            },
        },
        {
            "selector": "edge",
            "style": {
                "curve-style": "bezier",
                "target-arrow-shape": "triangle",
                "line-color": NEUTRAL,
                "target-arrow-color": NEUTRAL,
                "width": 2,
            },
        },
    ]
    for state in JOB_STATES:
        sheet.append(
            {
                "selector": f".{state}",
                "style": {"background-color": MANTINE_HEX[job_state_color(state)]},
            }
        )
    return sheet


def graph_layout(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """Top-down DAG layout when there are dependencies, a tidy grid of rules otherwise."""
    if any("source" in e["data"] for e in elements):
        return {"name": "breadthfirst", "directed": True, "spacingFactor": 1.0, "animate": False}
    return {"name": "grid", "avoidOverlap": True, "animate": False}
