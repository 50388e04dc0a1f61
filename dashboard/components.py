"""Small Mantine building blocks used by several pages."""

from __future__ import annotations

from typing import Any

import dash_mantine_components as dmc

from dashboard.theme import job_state_color, progress_fractions, run_state_color


def state_badge(state: str | None, **kwargs: Any) -> dmc.Badge:
    state = state or "UNKNOWN"
    return dmc.Badge(
        state.replace("_", " "),
        color=run_state_color(state),
        variant="light",
        **{"size": "md", **kwargs},
    )


def job_badge(state: str | None) -> dmc.Badge:
    return dmc.Badge(state or "pending", color=job_state_color(state), variant="light")


def progress_bar(progress: dict[str, Any] | None, *, size: str = "lg", **kwargs: Any) -> Any:
    """Stacked sections: done (green), failed (red), cancelled (orange), running (blue)."""
    f = progress_fractions(progress)
    sections = []
    for key in ("done", "failed", "cancelled", "running"):
        if f[key] > 0:
            sections.append(
                dmc.ProgressSection(
                    value=f[key],
                    color=job_state_color(key),
                    animated=key == "running",
                    striped=key == "running",
                )
            )
    return dmc.ProgressRoot(sections, size=size, **kwargs)


def progress_text(progress: dict[str, Any] | None) -> str:
    p = progress or {}
    total = int(p.get("total") or 0)
    done = int(p.get("done") or 0)
    pct = progress_fractions(p)["overall"]
    parts = [f"{done} / {total} jobs done", f"{pct:.0f}%"]
    if p.get("failed"):
        parts.append(f"{p['failed']} failed")
    if p.get("running"):
        parts.append(f"{p['running']} running")
    return " · ".join(parts)


def tag_badges(tags: dict[str, Any] | None) -> list[Any]:
    return [
        dmc.Badge(f"{k}={v}" if v else k, variant="outline", color="gray", size="sm", tt="none")
        for k, v in sorted((tags or {}).items())
    ]


def rule_progress(rule_counts: dict[str, dict[str, Any]] | None) -> Any:
    """One row per rule: name, a stacked bar and the counts per state."""
    rows = []
    for rule, counts in sorted((rule_counts or {}).items()):
        total = int(counts.get("total") or 0)
        rows.append(
            dmc.Stack(
                [
                    dmc.Group(
                        [
                            dmc.Text(rule, className="sd-rule-name", fw=600),
                            dmc.Group(
                                [
                                    dmc.Text(
                                        f"{counts.get(s, 0)} {s}",
                                        size="xs",
                                        c=job_state_color(s) if counts.get(s) else "dimmed",
                                    )
                                    for s in ("pending", "running", "done", "failed", "cancelled")
                                    if counts.get(s) or s in ("done", "pending")
                                ]
                                + [dmc.Text(f"of {total}", size="xs", c="dimmed")],
                                gap=8,
                            ),
                        ],
                        justify="space-between",
                        wrap="nowrap",
                    ),
                    progress_bar(counts, size="md"),
                ],
                gap=4,
                id={"type": "rule-row", "rule": rule},
            )
        )
    if not rows:
        return dmc.Text("No jobs planned yet.", c="dimmed", size="sm")
    return dmc.Stack(rows, gap="sm")
