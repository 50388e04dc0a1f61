"""What the CLI shows of runs: progress in words, per-rule counts in pipeline order, failures
first (why a job failed, as the runner found it in Snakemake's output) as they happen, an
estimate of the time left, and a summary of a run that has already ended.

Text that comes from a run (error messages, rule names, log paths) is never read as rich
markup: a ``[/x]`` in a Snakemake message must print as it is, not raise.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table
from rich.text import Text

from snakedeck.states import JobState, RunState, is_terminal

STATE_STYLE = {
    "COMPLETE": "green",
    "EXECUTOR_ERROR": "red",
    "SYSTEM_ERROR": "red",
    "CANCELED": "yellow",
    "CANCELING": "yellow",
}
CANCEL_STATES = frozenset({RunState.CANCELING.value, RunState.CANCELED.value})
FINISHED_JOB_STATES = (JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.NOT_RUN)
"""Jobs that will not change any more: what the progress bar counts as completed."""
FAILED_JOBS_SHOWN = 20
FAILURE_LINES = 20
"""Lines of a failed job's text shown in a summary (``snakedeck logs RUN --job J``: all)."""
LOG_TAIL_LINES = 8


# -- progress -----------------------------------------------------------------------------------
def progress_text(progress: Mapping[str, Any] | None) -> str:
    """``3/8 done, 1 failed, 4 not run``: each outcome apart, the ones at zero left out."""
    p = progress or {}
    parts = [f"{int(p.get('done') or 0)}/{int(p.get('total') or 0)} done"]
    for state in (JobState.FAILED, JobState.CANCELLED, JobState.NOT_RUN, JobState.RUNNING):
        count = int(p.get(state.value) or 0)
        if count:
            parts.append(f"{count} {state.value.replace('_', ' ')}")
    return ", ".join(parts)


def finished_jobs(progress: Mapping[str, Any] | None) -> int:
    p = progress or {}
    return sum(int(p.get(state.value) or 0) for state in FINISHED_JOB_STATES)


def ordered_rules(run: Mapping[str, Any]) -> list[str]:
    """The run's rules in pipeline order (its ``rule_order``), any others after them."""
    counts = run.get("rule_counts") or {}
    order = [rule for rule in run.get("rule_order") or [] if rule in counts]
    return order + [rule for rule in counts if rule not in order]


RULE_COLUMNS: tuple[tuple[JobState, str], ...] = (
    (JobState.PENDING, ""),
    (JobState.RUNNING, "cyan"),
    (JobState.DONE, "green"),
    (JobState.FAILED, "red"),
    (JobState.CANCELLED, "yellow"),
    (JobState.NOT_RUN, "yellow"),
)


def rule_table(run: Mapping[str, Any]) -> Table:
    headers = [Column(state.value.replace("_", " "), justify="right") for state, _ in RULE_COLUMNS]
    table = Table("rule", *headers, box=None)
    counts = run.get("rule_counts") or {}
    for rule in ordered_rules(run):
        cells: list[Text] = []
        for state, style in RULE_COLUMNS:
            count = int(counts[rule].get(state.value) or 0)
            cells.append(Text(str(count), style=style if count else "dim"))
        table.add_row(Text(rule), *cells)
    return table


# -- the runs list ------------------------------------------------------------------------------
def _minute(stamp: str) -> str:
    """``2026-12-01T22:26:40.123Z`` as ``2026-12-01 22:26``: short, with a space to wrap at."""
    return f"{stamp[:10]} {stamp[11:16]}" if len(stamp) >= 16 else stamp


RUN_COLUMNS: tuple[tuple[str, bool], ...] = (
    ("run", True),
    ("state", True),
    ("progress", False),
    ("workflow", False),
    ("submitted", False),
    ("tags", False),
)
"""(header, printed whole) in order of importance: a narrow terminal drops columns from the end.
Run ids and states never wrap or shorten, so an id can always be copied in one piece."""


def _run_cells(run: Mapping[str, Any]) -> dict[str, str]:
    return {
        "run": str(run["run_id"]),
        "state": str(run.get("state") or ""),
        "progress": progress_text(run.get("progress")),
        "workflow": str(run.get("workflow") or ""),
        "submitted": _minute(str(run.get("submitted_at") or "")),
        "tags": ", ".join(f"{k}={v}" for k, v in (run.get("tags") or {}).items()),
    }


def _narrowest(text: str, whole: bool) -> int:
    words = text.split() or [""]
    return len(text) if whole else max(len(word) for word in words)


def print_runs(console: Console, runs: Sequence[Mapping[str, Any]]) -> None:
    """The runs as a table that fits the terminal without cutting an id or a word."""
    view = runs_table(runs, console.width)
    console.print(view, soft_wrap=isinstance(view, Text))  # lines: the terminal wraps them


def runs_table(runs: Sequence[Mapping[str, Any]], width: int) -> Table | Text:
    """A table that fits ``width`` (dropping the least important columns), or, narrower than
    an id and a state, one ``RUN_ID STATE`` line per run."""
    rows = [_run_cells(run) for run in runs]
    columns = list(RUN_COLUMNS)

    def needed(cols: list[tuple[str, bool]]) -> int:
        widths = [
            max([_narrowest(name, True)] + [_narrowest(row[name], whole) for row in rows])
            for name, whole in cols
        ]
        # A space of padding each side of a cell, a separator between cells, an edge each side.
        return sum(widths) + 3 * len(cols) + 1

    while len(columns) > 2 and needed(columns) > width:
        columns.pop()
    if needed(columns) > width:  # not even id and state fit side by side: one line per run
        return Text("\n".join(f"{row['run']} {row['state']}" for row in rows))
    table = Table(
        *(
            Column(name, no_wrap=whole, overflow="fold", min_width=len(name) if whole else None)
            for name, whole in columns
        ),
        box=box.SIMPLE_HEAD,
    )
    for row in rows:
        table.add_row(*(Text(row[name]) for name, _ in columns))
    return table


# -- dead letters -------------------------------------------------------------------------------
def print_dead_letters(console: Console, page: Mapping[str, Any]) -> None:
    """Each dead letter with where it came from and why it was filed, then how many wait."""
    letters = page.get("dead_letters") or []
    total = int(page.get("total") or 0)
    if not letters:
        console.print("no dead letters")
        return
    table = Table(
        Column("dead at", no_wrap=True),
        Column("from", no_wrap=True),
        Column("routing key", overflow="fold"),
        Column("message id", overflow="fold"),
        Column("reason", overflow="fold", ratio=1),
        box=box.SIMPLE_HEAD,
    )
    for letter in letters:
        table.add_row(
            Text(str(letter.get("dead_at") or "")[:19].replace("T", " ")),
            Text(str(letter.get("queue") or "")),
            Text(str(letter.get("routing_key") or "")),
            Text(str(letter.get("message_id") or "")),
            Text(str(letter.get("reason") or "")),
        )
    console.print(table)
    shown = f"{len(letters)} of {total}" if total > len(letters) else str(total)
    console.print(f"{shown} dead letter{'s' if total != 1 else ''}")


# -- failures -----------------------------------------------------------------------------------
def log_paths(value: Any) -> list[str]:
    """A job's ``log``: one path, a list of them, or (named logs) a mapping of them."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list):
        return [path for item in value for path in log_paths(item)]
    return []


def describe_failed_job(jobid: Any, rule: Any, log: Any) -> str:
    logs = ", ".join(log_paths(log)) or "no log file"
    return f"job {jobid} ({rule or 'unknown rule'}) failed; log: {logs}"


def duration_text(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def eta_text(eta: Mapping[str, Any] | None) -> str:
    """``~3m 20s left (estimate)`` for a run's ``eta``, or ``""``."""
    if not eta or eta.get("seconds_remaining") is None:
        return ""
    return f"~{duration_text(float(eta['seconds_remaining']))} left (estimate)"


def failure_lines(failure: Mapping[str, Any], *, lines: int = FAILURE_LINES) -> list[str]:
    """The failure's text (its last ``lines`` lines) and the tails of the job's logs."""
    out: list[str] = []
    text = [line for line in str(failure.get("text") or "").splitlines() if line.strip()]
    if text:
        if len(text) > lines:
            out.append(f"  … {len(text) - lines} more line(s) before")
        out += [f"  {line}" for line in text[-lines:]]
        if failure.get("text_shared"):
            out.append("  (other jobs ran meanwhile: some of these lines may be theirs)")
    for entry in failure.get("logs") or []:
        tail = [line for line in str(entry.get("tail") or "").splitlines() if line.strip()]
        if tail:
            out.append(f"  log {entry.get('path')}:")
            out += [f"    {line}" for line in tail[-LOG_TAIL_LINES:]]
    return out


def describe_job_failure(
    jobid: Any, rule: Any, failure: Mapping[str, Any], *, lines: int = FAILURE_LINES
) -> str:
    """``job 5 (plot_quals) failed: ModuleNotFoundError: …`` and the text below it."""
    head = f"job {jobid} ({rule or 'unknown rule'}) failed: {failure.get('message') or ''}"
    return "\n".join([head.rstrip(": "), *failure_lines(failure, lines=lines)])


def describe_failure(event: Mapping[str, Any]) -> str | None:
    """One readable line (or a few) for an event that reports a failure, else ``None``.

    A failed job's ``job_error`` names the job, its rule and its log files. Snakemake's ``error``
    text is cut to its first lines: for a job, the job_error that follows and the log say more.
    """
    data = event.get("data") or {}
    if event.get("type") == "job_failure":
        return describe_job_failure(data.get("jobid"), data.get("rule"), data)
    if event.get("type") == "job_error":
        return describe_failed_job(data.get("jobid"), data.get("rule_name"), data.get("log"))
    if event.get("type") == "error":
        lines = [line.strip() for line in str(event.get("msg") or "").splitlines() if line.strip()]
        keep = 2 if data.get("exception") == "RuleException" else 5
        text = " ".join(lines[:keep]) or "Snakemake reported an error"
        if len(lines) > keep:
            text += f" (+{len(lines) - keep} more lines)"
        return f"error: {text}"
    return None


class FailureFeed:
    """Which events of a run to show as failures, in seq order.

    Once a cancel is under way, the errors Snakemake reports for the jobs it is killing
    (``CalledProcessError … died with SIGTERM``) are the cancel's echo, not failures."""

    def __init__(self, run: Mapping[str, Any]) -> None:
        self.cancelling = bool(run.get("cancel_requested")) or run.get("state") in CANCEL_STATES
        self.hand_run = bool(run.get("hand_run"))

    def describe(self, event: Mapping[str, Any]) -> str | None:
        if (
            event.get("type") == "run_state"
            and (event.get("data") or {}).get("state") in CANCEL_STATES
        ):
            self.cancelling = True
        if self.cancelling and event.get("type") in ("error", "job_failure"):
            return None
        if not self.hand_run and event.get("type") in ("job_error", "error"):
            # The runner follows each with the job's failure: why, from Snakemake's output.
            return None
        return describe_failure(event)


# -- one run ------------------------------------------------------------------------------------
def styled_state(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, "cyan"))


def run_header(run: Mapping[str, Any]) -> Group:
    """Id, workflow, state, reason and progress: the head of ``status`` and of a summary."""
    head = Text.assemble((str(run["run_id"]), "bold"), " ", str(run.get("workflow") or ""), "  ")
    head.append_text(styled_state(str(run.get("state") or "")))
    lines: list[RenderableType] = [head, Text(f"progress {progress_text(run.get('progress'))}")]
    if run.get("state_reason"):
        lines.append(Text(f"reason: {run['state_reason']}"))
    attempts = run.get("attempts") or []
    if len(attempts) > 1:
        lines.append(Text("attempts: " + "; ".join(
            f"{a.get('attempt')} {a.get('state')}" for a in attempts
        )))  # fmt: skip
    eta = run.get("eta")
    if eta and not is_terminal(run.get("state")):
        lines.append(Text(f"{eta_text(eta)}: {eta.get('basis', '')}"))
    return Group(*lines)


def failed_jobs(console: Console, client: Any, run: Mapping[str, Any]) -> None:
    """Each failed job with why it failed, first of all (and where to read more)."""
    if not int((run.get("progress") or {}).get(JobState.FAILED.value) or 0):
        return
    page = client.jobs(str(run["run_id"]), state="failed", page_size=FAILED_JOBS_SHOWN)
    for job in page.get("jobs") or []:
        failure = job.get("failure")
        if failure:
            text = describe_job_failure(job.get("jobid"), job.get("rule"), failure)
        else:
            text = describe_failed_job(job.get("jobid"), job.get("rule"), job.get("log"))
        console.print(Text.assemble(("✗ ", "red"), text))
        console.print(
            Text(f"  all of it: snakedeck logs {run['run_id']} --job {job.get('jobid')}", "dim")
        )
    more = int(page.get("total") or 0) - len(page.get("jobs") or [])
    if more > 0:
        console.print(f"… and {more} more failed jobs")


def print_status(console: Console, client: Any, run: Mapping[str, Any]) -> None:
    """``status``: the run, why its failed jobs failed (first), then per-rule counts."""
    console.print(run_header(run))
    failed_jobs(console, client, run)
    console.print(rule_table(run))


def print_summary(console: Console, client: Any, run: Mapping[str, Any]) -> None:
    """An ended run: why its failed jobs failed (first), then what it did per rule."""
    print_status(console, client, run)
    console.print(Text.assemble(f"run {run['run_id']} ended ", styled_state(str(run["state"]))))


class LogPrinter:
    """Prints a run's log once, in order: what is stored first, then the live chunks, reading
    the store again for any piece the socket skipped."""

    def __init__(self, client: Any, run_id: str, write: Any) -> None:
        self.client = client
        self.run_id = run_id
        self.write = write
        self.offset = 0

    def catch_up(self) -> None:
        while True:
            piece = self.client.run_log(self.run_id, offset=self.offset)
            if piece.get("text"):
                self.write(piece["text"])
            self.offset = int(piece["next_offset"])
            if self.offset >= int(piece.get("size") or 0):
                return

    def on_log(self, chunk: Mapping[str, Any]) -> None:
        if chunk.get("stream") != "snakemake":
            return
        offset = int(chunk.get("offset") or 0)
        if offset > self.offset:
            self.catch_up()
        if offset == self.offset:
            text = str(chunk.get("text") or "")
            self.write(text)
            self.offset = int(chunk.get("next_offset") or offset + len(text.encode()))


def follow_run(
    client: Any, run_id: str, *, as_json: bool = False, show_log: bool = False
) -> dict[str, Any]:
    """Follow a run to its end and return its final document. A run that has already ended is
    summarised instead. With ``as_json``, print one JSON event per line, then the run. With
    ``show_log``, Snakemake's log is printed as it grows."""
    run = client.run(run_id)  # a missing run: the gateway's 404, before any live view starts
    if is_terminal(run.get("state")):
        if as_json:
            print(json.dumps({"run": run}), flush=True)
        else:
            print_summary(Console(), client, run)
        return run
    if as_json:
        final = client.follow(
            run_id, on_run=lambda run: None, on_event=lambda e: print(json.dumps(e), flush=True)
        )
        print(json.dumps({"run": final}), flush=True)
        return final
    console = Console()
    printer = None
    if show_log:
        if console.is_terminal:
            printer = LogPrinter(client, run_id, lambda t: console.print(Text(t.rstrip("\n"))))
        else:
            printer = LogPrinter(client, run_id, lambda t: print(t, end="", flush=True))
        printer.catch_up()
    if not console.is_terminal:
        final = _follow_plain(client, run, printer)
    else:
        final = _follow_live(console, client, run, printer)
    if printer is not None:
        printer.catch_up()
    return final


def bar_fields(run: Mapping[str, Any], eta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The live bar of a run: it fills with finished jobs, whatever their outcome (a cancelled
    run's bar ends full), and its label says how many of them are done, and the time left."""
    p = run.get("progress") or {}
    state = str(run.get("state") or "")
    left = eta_text(eta) if eta and state == RunState.RUNNING.value else ""
    return {
        "completed": finished_jobs(p),
        "total": int(p.get("total") or 0) or None,
        "label": escape(progress_text(p) + (f", {left}" if left else "")),
        "state": f"[{STATE_STYLE.get(state, 'cyan')}]{escape(state)}[/]",
    }


class EtaKeeper:
    """The last estimate seen: live summaries carry none, the REST polls bring it."""

    def __init__(self) -> None:
        self.eta: Mapping[str, Any] | None = None
        self.at = 0.0

    def see(self, run: Mapping[str, Any]) -> Mapping[str, Any] | None:
        import time

        if "eta" in run:
            self.eta, self.at = run.get("eta"), time.monotonic()
        elif self.eta is not None and self.eta.get("seconds_remaining") is not None:
            elapsed = time.monotonic() - self.at
            left = max(0.0, float(self.eta["seconds_remaining"]) - elapsed)
            return {**self.eta, "seconds_remaining": left}
        return self.eta


def _follow_live(
    console: Console, client: Any, run: Mapping[str, Any], printer: LogPrinter | None = None
) -> dict[str, Any]:
    run_id = str(run["run_id"])
    failures = FailureFeed(run)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[label]}"),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task(escape(run_id), total=None, label="", state="")
    etas = EtaKeeper()

    def show(run: Mapping[str, Any]) -> Group:
        progress.update(task, **bar_fields(run, etas.see(run)))
        return Group(progress, rule_table(run))

    with Live(show(run), console=console, refresh_per_second=8) as live:

        def on_event(event: dict[str, Any]) -> None:
            text = failures.describe(event)
            if text:
                console.print(Text.assemble(("✗ ", "red"), text))

        final = client.follow(
            run_id,
            on_run=lambda r: live.update(show(r)),
            on_event=on_event,
            on_log=printer.on_log if printer is not None else None,
        )
        live.update(show(final))
    console.print(Text.assemble(f"run {run_id} ended ", styled_state(str(final["state"]))))
    return final


def _follow_plain(
    client: Any, run: Mapping[str, Any], printer: LogPrinter | None = None
) -> dict[str, Any]:
    """Line-per-change output for logs and CI, where a live bar would be noise."""
    run_id = str(run["run_id"])
    failures = FailureFeed(run)
    last = ""
    etas = EtaKeeper()

    def on_run(run: Mapping[str, Any]) -> None:
        nonlocal last
        line = f"{run_id} {run.get('state')} {progress_text(run.get('progress'))}"
        eta = etas.see(run) if run.get("state") == RunState.RUNNING.value else None
        if eta and "eta" in run:
            line += f", {eta_text(eta)}"
        if line != last:
            last = line
            print(line, flush=True)

    def on_event(event: dict[str, Any]) -> None:
        text = failures.describe(event)
        if text:
            print(text, file=sys.stderr, flush=True)

    on_run(run)
    final = client.follow(
        run_id,
        on_run=on_run,
        on_event=on_event,
        on_log=printer.on_log if printer is not None else None,
    )
    on_run(final)
    return final
