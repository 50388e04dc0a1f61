"""The job drawer, opened from the table or from the failed-jobs alert: why a failed job
failed first (failure.py), then its declared logs (from the store, through the service), its
resources requested beside measured (resources.py), then its facts, command and attempts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, html

from dashboard.components import job_badge
from dashboard.context import Ctx
from dashboard.formatting import format_duration, format_when, wildcards_text
from dashboard.pages.run import failure, ids, resources
from dashboard.theme import job_state_label
from snakedeck.service import ServiceError


def drawer() -> Any:
    # Mantine names the drawer's own title element "<id>-title": ours has another id.
    return dmc.Drawer(
        id=ids.DRAWER,
        position="right",
        size="xl",
        padding="md",
        title=html.Span(id=ids.DRAWER_HEADING),
        children=html.Div(id=ids.DETAIL),
    )


def _kv(label: str, value: Any) -> Any:
    return dmc.Group(
        [dmc.Text(label, size="sm", c="dimmed", w=110), html.Div(value, style={"flex": 1})],
        align="flex-start",
        wrap="nowrap",
        gap="sm",
    )


def _text(value: Any) -> Any:
    return dmc.Text(str(value) if value not in (None, "", {}, []) else "—", size="sm")


def _files(value: Any) -> Any:
    if isinstance(value, dict):
        value = [f"{k}: {v}" for k, v in value.items()]
    if isinstance(value, str):
        value = [value]
    if not value:
        return dmc.Text("—", size="sm")
    return dmc.Stack([dmc.Code(str(v)) for v in value], gap=2)


def _resources(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return json.dumps(value) if value else ""


def cluster_text(job: Mapping[str, Any]) -> str:
    """``slurm job 17 · partition debug · node vm · COMPLETED (reason)`` of a cluster job."""
    parts = [f"{job.get('scheduler') or 'cluster'} job {job.get('cluster_job_id')}"]
    if job.get("partition"):
        parts.append(f"partition {job['partition']}")
    if job.get("node"):
        parts.append(f"node {job['node']}")
    if job.get("cluster_state"):
        reason = f" ({job['cluster_reason']})" if job.get("cluster_reason") else ""
        parts.append(f"{job['cluster_state']}{reason}")
    return " · ".join(parts)


def facts(job: Mapping[str, Any]) -> list[Any]:
    """State, wildcards, time, threads, resources, reason, files and error, one row each."""
    time = (
        f"{format_when(job.get('started_at'))} → {format_when(job.get('finished_at'))}"
        f" ({format_duration(job.get('duration'))})"
    )
    rows = [
        _kv("State", job_badge(job.get("state"))),
        _kv("Wildcards", _text(wildcards_text(job.get("wildcards")))),
        _kv("Time", _text(time)),
        _kv("Threads", _text(job.get("threads"))),
        _kv("Resources", _text(_resources(job.get("resources")))),
        _kv("Reason", _text(job.get("reason"))),
        _kv("Inputs", _files(job.get("input"))),
        _kv("Outputs", _files(job.get("output"))),
    ]
    if job.get("cluster_job_id"):
        rows.insert(5, _kv("Cluster", _text(cluster_text(job))))
    error = job.get("error") or {}
    if error and not job.get("failure"):  # the failure block says it better
        message = str(error.get("msg") or error.get("rule_msg") or "failed")
        rows.append(_kv("Error", dmc.Text(message, size="sm", c="red")))
    return rows


def log_blocks(logs: list[dict[str, Any]]) -> list[Any]:
    """The tail of each of the job's log files (or why there is none to show)."""
    if not logs:
        return [dmc.Text("This job declares no log file.", size="sm", c="dimmed")]
    blocks: list[Any] = []
    for entry in logs:
        note = ""
        if entry.get("truncated"):
            note = f" (last {len(entry.get('content') or '')} bytes of {entry.get('size')})"
        blocks.append(dmc.Text(f"{entry.get('path')}{note}", size="xs", ff="monospace"))
        if entry.get("error"):
            blocks.append(dmc.Text(entry["error"], size="sm", c="red"))
        elif not entry.get("exists"):
            blocks.append(dmc.Text("not written (yet)", size="sm", c="dimmed"))
        else:
            blocks.append(
                html.Pre(entry.get("content") or "(empty)", className="sd-log job-log-content")
            )
    return blocks


def job_attempts(job: Mapping[str, Any]) -> list[Any]:
    """One line per earlier attempt of a retried job (nothing for a job tried once)."""
    records = [a for a in job.get("attempts") or [] if isinstance(a, Mapping)]
    if len(records) < 2:
        return []
    lines = [
        dmc.Text(
            f"attempt {a.get('attempt')}: {job_state_label(a.get('state'))}, "
            f"{format_when(a.get('started_at'))} → {format_when(a.get('finished_at'))}"
            + (f": {str(a['error']).splitlines()[0][:200]}" if a.get("error") else ""),
            size="sm",
        )
        for a in records
    ]
    return [dmc.Text("Attempts", fw=600, mt="sm"), *lines]


def job_detail(job: Mapping[str, Any], logs: list[dict[str, Any]]) -> Any:
    shell = job.get("shellcmd")
    return dmc.Stack(
        [
            failure.block(job),
            dmc.Text("Log", fw=600),
            *log_blocks(logs),
            dmc.Text("Resources", fw=600, mt="sm"),
            resources.table(job),
            dmc.Stack(facts(job), gap="xs", mt="sm"),
            dmc.Text("Shell command", fw=600, mt="sm"),
            html.Pre(str(shell).strip(), className="sd-log", id=ids.SHELL)
            if shell
            else dmc.Text("No shell command (a run: or script: block).", size="sm", c="dimmed"),
            *job_attempts(job),
        ],
        gap="xs",
    )


def heading(jobid: str, rule: str | None) -> Any:
    return dmc.Group(
        [dmc.Text(f"job {jobid}", fw=700), dmc.Text(rule or "", ff="monospace")], gap="sm"
    )


def register(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output(ids.DRAWER, "opened"),
        Output(ids.DRAWER_HEADING, "children"),
        Output(ids.DETAIL, "children"),
        Input(ids.GRID, "cellClicked"),
        Input({"type": ids.FAILED_JOB, "jobid": dash.ALL}, "n_clicks"),
        State(ids.RUN_ID, "data"),
        prevent_initial_call=True,
    )
    def open_job(cell: dict[str, Any] | None, clicks: list[Any], run_id: str) -> tuple:
        trigger = dash.ctx.triggered_id
        if isinstance(trigger, dict):
            if not any(clicks or []):
                raise dash.exceptions.PreventUpdate  # the alert re-rendered, nobody clicked
            jobid = trigger["jobid"]
        else:
            jobid = (cell or {}).get("rowId")
        if jobid is None:
            raise dash.exceptions.PreventUpdate
        try:
            job = ctx.service.get_job(run_id, str(jobid))
            logs = ctx.service.job_log(run_id, str(jobid))["logs"]
        except ServiceError as exc:
            return True, heading(str(jobid), None), dmc.Alert(exc.detail, color="red")
        return True, heading(str(jobid), job.get("rule")), job_detail(job, logs)
