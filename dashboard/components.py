"""Small Mantine building blocks used by several pages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dash_mantine_components as dmc

from dashboard import progress
from dashboard.theme import job_state_color, job_state_label, run_state_color, run_state_label
from snakedeck.states import JobState


def state_badge(state: str | None, **kwargs: Any) -> dmc.Badge:
    return dmc.Badge(
        run_state_label(state),
        color=run_state_color(state),
        variant="light",
        **{"size": "md", **kwargs},
    )


def job_badge(state: str | None) -> dmc.Badge:
    return dmc.Badge(job_state_label(state), color=job_state_color(state), variant="light")


def progress_bar(counts: progress.Counts | None, *, size: str = "lg", **kwargs: Any) -> Any:
    """Stacked sections, one per outcome (done, failed, cancelled, not run), then running."""
    f = progress.fractions(counts)
    sections = [
        dmc.ProgressSection(
            value=f[state],
            color=job_state_color(state),
            animated=state == JobState.RUNNING,
            striped=state == JobState.RUNNING,
            **{"data-state": state.value},
        )
        for state in (*progress.BAR_STATES, JobState.RUNNING)
        if f[state] > 0
    ]
    return dmc.ProgressRoot(sections, size=size, **kwargs)


def progress_words(counts: progress.Counts | None, *, size: str = "sm", **kwargs: Any) -> Any:
    """``4 of 14 jobs done (28%) · 1 failed · 9 not run``, each outcome in its state's colour."""
    pieces: list[Any] = [dmc.Text(progress.done_text(counts), span=True, inherit=True)]
    for state, text in progress.outcome_parts(counts):
        pieces.append(dmc.Text(" · ", span=True, inherit=True, c="dimmed"))
        pieces.append(
            dmc.Text(
                text,
                span=True,
                inherit=True,
                c=job_state_color(state) if state != JobState.PENDING else "dimmed",
                className=f"sd-count-{state.value}",
            )
        )
    return dmc.Text(pieces, size=size, **kwargs)


def tag_badges(tags: Mapping[str, Any] | None) -> list[Any]:
    return [
        dmc.Badge(f"{k}={v}" if v else k, variant="outline", color="gray", size="sm", tt="none")
        for k, v in sorted((tags or {}).items())
    ]


def rule_row(rule: str, counts: progress.Counts) -> Any:
    """One rule: its name, ``2 of 3 done · 1 failed`` and a stacked bar."""
    parts: list[Any] = [
        dmc.Text(
            f"{progress.count(counts, JobState.DONE)} of {progress.total(counts)} done",
            size="xs",
            c=job_state_color(JobState.DONE) if progress.count(counts, JobState.DONE) else "dimmed",
        )
    ]
    parts += [
        dmc.Text(text, size="xs", c=job_state_color(state))
        for state, text in progress.outcome_parts(counts)
    ]
    return dmc.Stack(
        [
            dmc.Group(
                [
                    dmc.Text(rule, className="sd-rule-name", fw=600),
                    dmc.Group(parts, gap=8, justify="flex-end"),
                ],
                justify="space-between",
                wrap="nowrap",
                align="flex-start",
            ),
            progress_bar(counts, size="md"),
        ],
        gap=4,
        id={"type": "rule-row", "rule": rule},
        className="sd-rule-row",
    )


def rule_progress(rules: Iterable[str], rule_counts: Mapping[str, progress.Counts] | None) -> Any:
    """One row per rule, in the order given (pipeline order)."""
    rows = [rule_row(rule, (rule_counts or {}).get(rule) or {}) for rule in rules]
    if not rows:
        return dmc.Text("No jobs planned yet.", c="dimmed", size="sm")
    return dmc.Stack(rows, gap="sm")
