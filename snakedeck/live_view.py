"""The terminal view of a live run: a progress bar, per-rule counts, failures as they happen."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

STATE_STYLE = {
    "COMPLETE": "green",
    "EXECUTOR_ERROR": "red",
    "SYSTEM_ERROR": "red",
    "CANCELED": "yellow",
    "CANCELING": "yellow",
}


def rule_table(run: dict[str, Any]) -> Table:
    table = Table("rule", "pending", "running", "done", "failed", "cancelled", box=None)
    for rule, counts in sorted((run.get("rule_counts") or {}).items()):
        table.add_row(
            rule,
            str(counts.get("pending", 0)),
            str(counts.get("running", 0)),
            f"[green]{counts.get('done', 0)}[/]",
            f"[red]{counts.get('failed', 0)}[/]" if counts.get("failed") else "0",
            str(counts.get("cancelled", 0)),
        )
    return table


def describe_failure(event: dict[str, Any]) -> str | None:
    data = event.get("data") or {}
    if event.get("type") == "job_error":
        logs = ", ".join(data.get("log") or []) or "no log file"
        return f"job {data.get('jobid')} ({data.get('rule_name')}) failed; log: {logs}"
    if event.get("type") == "error":
        return f"error: {event.get('msg', '').strip()}"
    return None


def follow_run(client: Any, run_id: str, *, as_json: bool = False) -> dict[str, Any]:
    """Follow a run to its end. With ``as_json``, print one JSON event per line instead."""
    if as_json:
        final = client.follow(
            run_id, on_run=lambda run: None, on_event=lambda e: print(json.dumps(e), flush=True)
        )
        print(json.dumps({"run": final}), flush=True)
        return final

    console = Console(stderr=False)
    if not console.is_terminal:
        return _follow_plain(client, run_id)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task(run_id, total=None, state="QUEUED")
    latest: dict[str, Any] = {}

    with Live(Group(progress, Table()), console=console, refresh_per_second=8) as live:

        def on_run(run: dict[str, Any]) -> None:
            latest.update(run)
            p = run.get("progress") or {}
            state = run.get("state", "")
            progress.update(
                task,
                completed=p.get("done", 0),
                total=p.get("total") or None,
                state=f"[{STATE_STYLE.get(state, 'cyan')}]{state}[/]",
            )
            live.update(Group(progress, rule_table(run)))

        def on_event(event: dict[str, Any]) -> None:
            text = describe_failure(event)
            if text:
                console.print(f"[red]✗[/] {text}")

        final = client.follow(run_id, on_run=on_run, on_event=on_event)
        on_run(final)
    style = STATE_STYLE.get(final["state"], "cyan")
    console.print(f"run {run_id} ended [{style}]{final['state']}[/]")
    return final


def _follow_plain(client: Any, run_id: str) -> dict[str, Any]:
    """Line-per-change output for logs and CI, where a live bar would be noise."""
    last: tuple[Any, ...] = ()

    def on_run(run: dict[str, Any]) -> None:
        nonlocal last
        p = run.get("progress") or {}
        key = (run.get("state"), p.get("done"), p.get("total"))
        if key != last:
            last = key
            print(f"{run_id} {run.get('state')} {p.get('done', 0)}/{p.get('total', 0)}", flush=True)

    def on_event(event: dict[str, Any]) -> None:
        text = describe_failure(event)
        if text:
            print(text, file=sys.stderr, flush=True)

    final = client.follow(run_id, on_run=on_run, on_event=on_event)
    on_run(final)
    return final
