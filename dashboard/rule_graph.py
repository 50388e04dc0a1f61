"""The rule graph as Cytoscape elements: a node per rule (coloured by how its jobs are doing),
an edge per dependency, laid out top to bottom in a box tall enough for labels to stay
readable. Pure builders: no callbacks, unit-tested on plain data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from dashboard import progress
from dashboard.theme import MANTINE_HEX, job_state_color
from snakedeck.states import JobState

NEUTRAL: Final = "#868e96"
FONT_PX: Final = 13
LEVEL_PX: Final = 84
"""Height given to each level of the graph: a two-line label at FONT_PX plus the edge."""
MIN_HEIGHT: Final = 160
MAX_HEIGHT: Final = 900


def _parse(rulegraph: Mapping[str, Any] | None) -> tuple[list[str], list[tuple[str, str]]]:
    """Rule names and ``(dependency, dependent)`` pairs of Snakemake's ``{"nodes": [{"rule"}],
    "links": [{"source": i, "target": j}]}``."""
    nodes = rulegraph.get("nodes") if isinstance(rulegraph, Mapping) else None
    if not isinstance(nodes, list):
        return [], []
    index = [str(n.get("rule") if isinstance(n, Mapping) else n) for n in nodes]
    edges: list[tuple[str, str]] = []
    for link in (rulegraph or {}).get("links") or []:
        try:
            src, dst = index[int(link["source"])], index[int(link["target"])]
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if src != dst and (src, dst) not in edges:
            edges.append((src, dst))
    return list(dict.fromkeys(index)), edges


def node_label(rule: str, counts: progress.Counts) -> str:
    """``make_sample`` over ``2/3 · 1 failed``: done of total, then any other outcome."""
    done = f"{progress.count(counts, JobState.DONE)}/{progress.total(counts)}"
    extra = [text for state, text in progress.outcome_parts(counts) if state in progress.OUTCOMES]
    return f"{rule}\n{' · '.join([done, *extra])}"


def elements(
    rulegraph: Mapping[str, Any] | None,
    rule_counts: Mapping[str, progress.Counts] | None,
    rule_order: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Nodes in pipeline order (``rule_order``), then edges. Without a rule graph, the rules of
    ``rule_counts`` become unconnected nodes."""
    counts = dict(rule_counts or {})
    names, edges = _parse(rulegraph)
    ordered = [r for r in dict.fromkeys(rule_order or []) if r in names or r in counts]
    names = ordered + [n for n in [*names, *counts] if n not in ordered]
    names = list(dict.fromkeys(names))
    out: list[dict[str, Any]] = [node(name, counts.get(name) or {}) for name in names]
    out += [{"data": {"id": f"{s}->{t}", "source": s, "target": t}} for s, t in edges]
    return out


def node(rule: str, counts: progress.Counts) -> dict[str, Any]:
    state = progress.rule_state(counts).value
    return {
        "data": {
            "id": rule,
            "label": node_label(rule, counts),
            "state": state,
            "total": progress.total(counts),
        },
        "classes": state,
    }


def levels(items: list[dict[str, Any]]) -> int:
    """How many rows a top-to-bottom layout needs: the longest dependency chain."""
    nodes = [e["data"]["id"] for e in items if "source" not in e["data"]]
    edges = [(e["data"]["source"], e["data"]["target"]) for e in items if "source" in e["data"]]
    depth = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):  # Bellman-Ford style: stable after |V| rounds even on a cycle
        changed = False
        for s, t in edges:
            if s in depth and t in depth and depth[t] < depth[s] + 1 <= len(nodes):
                depth[t] = depth[s] + 1
                changed = True
        if not changed:
            break
    return (max(depth.values()) + 1) if depth else 0


def height(items: list[dict[str, Any]]) -> int:
    """Pixels for the graph box: every level at a readable size, within bounds."""
    return max(MIN_HEIGHT, min(MAX_HEIGHT, 40 + LEVEL_PX * levels(items)))


def layout(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Top to bottom along the dependencies (roots are the rules nothing feeds), a tidy grid of
    rules when there are none."""
    if any("source" in e["data"] for e in items):
        return {
            "name": "breadthfirst",
            "directed": True,
            "maximal": True,
            "spacingFactor": 1.0,
            "padding": 12,
            "animate": False,
            "fit": True,
        }
    return {"name": "grid", "avoidOverlap": True, "animate": False, "padding": 12, "fit": True}


def stylesheet() -> list[dict[str, Any]]:
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
                "padding": "8px",
                "font-size": f"{FONT_PX}px",
                "line-height": 1.25,
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
    for state in JobState:
        sheet.append(
            {
                "selector": f".{state.value}",
                "style": {"background-color": MANTINE_HEX[job_state_color(state)]},
            }
        )
    return sheet
