"""Why a job failed, as the drawer shows it first: the exit code (or signal) where Snakemake
gives one, the one-line message, and the text Snakemake printed for the job (its stderr, a
traceback), even when the rule declares no log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash_mantine_components as dmc
from dash import html

from dashboard.pages.run import ids


def summary_line(failure: Mapping[str, Any]) -> str:
    """``exit code 3`` / ``killed by signal 9`` / ``no exit code``, for the block's title."""
    if failure.get("exit_code") is not None:
        return f"exit code {failure['exit_code']}"
    if failure.get("signal") is not None:
        return f"killed by signal {failure['signal']}"
    return "no exit code (the job raised inside Snakemake)"


def block(job: Mapping[str, Any]) -> Any:
    """The failure of the job's last attempt, or nothing for a job that did not fail."""
    failure = job.get("failure")
    if not isinstance(failure, Mapping) or not failure:
        return None
    notes = []
    if failure.get("text_shared"):
        notes.append("Other jobs ran meanwhile: some of these lines may be theirs.")
    if failure.get("truncated"):
        notes.append("Cut to its last part; the whole run log is on the Log tab.")
    text = str(failure.get("text") or "").rstrip()
    return dmc.Alert(
        dmc.Stack(
            [
                dmc.Text(str(failure.get("message") or "failed"), fw=600, size="sm"),
                html.Pre(text, className="sd-log sd-failure-text")
                if text
                else dmc.Text("Snakemake printed nothing for this job.", size="sm", c="dimmed"),
                *[dmc.Text(n, size="xs", c="dimmed") for n in notes],
            ],
            gap=6,
        ),
        title=f"Why it failed: {summary_line(failure)}",
        color="red",
        variant="light",
        id=ids.FAILURE,
    )
