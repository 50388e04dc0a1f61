"""Folding events into run and job documents.

Pure functions, shared by every store backend. Each fold is guarded by ``seq`` so that replays,
duplicates and out-of-order delivery always leave the same documents: a field set from an
event is only overwritten by an event with a higher seq.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from snakedeck.envelope import Envelope
from snakedeck.states import (
    JOB_STATE_BY_EVENT,
    JOB_STATES_ORDER,
    TERMINAL_RUN_STATES,
    JobState,
    RunState,
    settle_job_state,
)

Doc = dict[str, Any]

JOB_INFO_FIELDS = (
    "rule_msg",
    "local",
    "input",
    "output",
    "log",
    "benchmark",
    "wildcards",
    "reason",
    "resources",
    "priority",
    "threads",
    "is_checkpoint",
    "shellcmd",
)


ERROR_FILE_FIELDS = ("log", "input", "output", "shellcmd")


def job_key(run_id: str, jobid: str | int) -> str:
    return f"{run_id}:{jobid}"


def job_ids(event: Mapping[str, Any]) -> list[str]:
    """The Snakemake job ids an event is about (``job_started`` names several)."""
    data = event.get("data", {})
    kind = event.get("type")
    if kind == "job_started":
        return [str(j) for j in data.get("jobs") or []]
    if kind in ("job_info", "job_error"):
        return [str(data["jobid"])] if data.get("jobid") is not None else []
    if kind == "job_finished":
        jid = data.get("job_id", data.get("jobid"))
        return [str(jid)] if jid is not None else []
    return []


def new_run(run_id: str) -> Doc:
    return {
        "run_id": run_id,
        "state": RunState.QUEUED.value,
        "state_seq": 0,
        "last_seq": 0,
        "progress": {"done": 0, "total": 0, "failed": 0, "running": 0},
        "rule_counts": {},
        "rule_totals": {},
        "tags": {},
    }


def new_job(run_id: str, jobid: str) -> Doc:
    return {
        "run_id": run_id,
        "jobid": jobid,
        "jobid_num": int(jobid) if jobid.isdigit() else -1,
        "rule": None,
        "state": JobState.PENDING.value,
        "state_seq": 0,
        "info_seq": 0,
        "started_at": None,
        "finished_at": None,
        "duration": None,
    }


def _newer(doc: Doc, field: str, seq: int) -> bool:
    if seq > int(doc.get(field) or 0):
        doc[field] = seq
        return True
    return False


def fold_run(doc: Doc, event: Envelope) -> Doc:
    """Apply one event to a run document (in place, and returned)."""
    seq = int(event["seq"])
    data = event.get("data", {})
    kind = event["type"]
    doc["last_seq"] = max(int(doc.get("last_seq") or 0), seq)
    if kind == "run_state":
        state = data.get("state")
        if state in RunState.__members__ and _newer(doc, "state_seq", seq):
            doc["state"] = state
            doc["state_reason"] = data.get("reason", "")
            doc["exit_code"] = data.get("exit_code")
            doc["signal"] = data.get("signal")
        if data.get("workflow") and not doc.get("workflow"):
            doc["workflow"] = data["workflow"]  # hand-run Snakemake names its own workflow
        if state == RunState.INITIALIZING:
            doc.setdefault("initialized_at", event["ts"])
        elif state == RunState.RUNNING:
            doc["started_at"] = min(doc.get("started_at") or event["ts"], event["ts"])
        elif state in TERMINAL_RUN_STATES:
            closed = doc.get("closed_seq")
            doc["closed_seq"] = seq if closed is None else min(int(closed), seq)
            if doc["closed_seq"] == seq:
                doc["finished_at"] = event["ts"]
    elif kind == "run_info":
        stats = dict(data.get("stats") or {})
        total = stats.pop("total", None)
        if _newer(doc, "run_info_seq", seq):
            doc["rule_totals"] = {str(k): int(v) for k, v in stats.items()}
        # A later ``progress`` event may already have set a newer total: only a newer one wins.
        if total is not None and _newer(doc, "total_seq", seq):
            doc.setdefault("progress", {})["total"] = int(total)
    elif kind == "progress":
        if data.get("total") is not None and _newer(doc, "total_seq", seq):
            doc.setdefault("progress", {})["total"] = int(data["total"])
    elif kind == "workflow_started":
        doc["snakemake"] = {
            k: data.get(k) for k in ("snakefile", "workflow_id") if data.get(k) is not None
        }
        # min, not setdefault: the RUNNING run_state may arrive before or after this event.
        doc["started_at"] = min(doc.get("started_at") or event["ts"], event["ts"])
    elif kind == "rulegraph":
        if _newer(doc, "rulegraph_seq", seq):
            doc["rulegraph"] = data.get("rulegraph")
    elif kind == "error" and _newer(doc, "error_seq", seq):
        doc["error"] = event.get("msg", "")
    return doc


def fold_job(doc: Doc, event: Envelope, closed_seq: int | None) -> Doc:
    """Apply one job event to a job document (in place, and returned)."""
    seq = int(event["seq"])
    data = event.get("data", {})
    kind = event["type"]
    ts = event["ts"]
    if kind == "job_info" and _newer(doc, "info_seq", seq):
        doc["rule"] = data.get("rule_name")
        reported = doc.get("error") or {}
        for name in JOB_INFO_FIELDS:
            # job_error's files win (its log adds Snakemake's aux logs), in either order.
            if name in data and not (name in ERROR_FILE_FIELDS and reported.get(name)):
                doc[name] = data[name]
    if kind == "job_error":
        doc["rule"] = doc.get("rule") or data.get("rule_name")
        doc["error"] = {
            "msg": event.get("msg", ""),
            "rule_msg": data.get("rule_msg"),
            "aux": data.get("aux"),
            "conda_env": data.get("conda_env"),
            "container_img": data.get("container_img"),
        }
        for name in ERROR_FILE_FIELDS:
            if data.get(name):
                doc[name] = doc["error"][name] = data[name]
    if kind in ("job_info", "job_started"):
        doc["started_at"] = min(doc.get("started_at") or ts, ts)
    if kind in ("job_finished", "job_error"):
        doc["finished_at"] = max(doc.get("finished_at") or ts, ts)
    state = JOB_STATE_BY_EVENT.get(kind)
    if state is not None and _newer(doc, "state_seq", seq):
        doc["state"] = state.value
    settle_job(doc, closed_seq)
    doc["duration"] = _duration(doc.get("started_at"), doc.get("finished_at"))
    return doc


def settle_job(doc: Doc, closed_seq: int | None) -> Doc:
    """Close a job left open by its run's end (see :func:`settle_job_state`)."""
    doc["state"] = settle_job_state(
        JobState(doc["state"]), closed_seq, int(doc.get("state_seq") or 0)
    ).value
    return doc


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, round((b - a).total_seconds(), 3))


def summarize(doc: Doc, counts: Mapping[str | None, Mapping[str, int]]) -> Doc:
    """Set ``progress`` and ``rule_counts`` from per-rule job-state counts.

    Counts come from the jobs themselves (not from increments), so they are right however often
    an event is replayed. Jobs Snakemake planned but never started count as ``pending``.
    """
    totals: dict[str, int] = dict(doc.get("rule_totals") or {})
    # A job whose job_info has not arrived yet has no rule: it counts in progress only.
    no_rule = counts.get(None) or {}
    unnamed = {s.value: int(no_rule.get(s.value, 0)) for s in JOB_STATES_ORDER}
    named = {rule: c for rule, c in counts.items() if rule is not None}
    rule_counts: dict[str, dict[str, int]] = {}
    for rule in sorted(set(totals) | set(named)):
        by_state = {s.value: int(named.get(rule, {}).get(s.value, 0)) for s in JOB_STATES_ORDER}
        seen = sum(by_state.values())
        total = max(totals.get(rule, 0), seen)
        by_state[JobState.PENDING.value] += total - seen
        by_state["total"] = total
        rule_counts[rule] = by_state
    progress = dict(doc.get("progress") or {})
    planned = sum(rc["total"] for rc in rule_counts.values())
    progress["total"] = max(int(progress.get("total") or 0), planned)
    for state in (JobState.DONE, JobState.FAILED, JobState.RUNNING, JobState.CANCELLED):
        progress[state.value] = unnamed[state.value] + sum(
            rc[state.value] for rc in rule_counts.values()
        )
    doc["rule_counts"] = rule_counts
    doc["progress"] = progress
    return doc


def run_summary(doc: Mapping[str, Any]) -> Doc:
    """The compact form of a run pushed to live subscribers and shown in lists."""
    keys = (
        "run_id",
        "workflow",
        "workflow_version",
        "state",
        "state_reason",
        "progress",
        "rule_counts",
        "tags",
        "user",
        "submitted_at",
        "started_at",
        "finished_at",
        "last_seq",
        "exit_code",
        "rerun_of",
    )
    return {k: doc.get(k) for k in keys if k in doc}


def job_summary(doc: Mapping[str, Any]) -> Doc:
    keys = (
        "run_id",
        "jobid",
        "rule",
        "state",
        "wildcards",
        "started_at",
        "finished_at",
        "duration",
        "threads",
    )
    return {k: doc.get(k) for k in keys if k in doc}


def group_by_run(events: Iterable[Envelope]) -> dict[str, list[Envelope]]:
    grouped: dict[str, list[Envelope]] = {}
    for event in sorted(events, key=lambda e: (e["run_id"], e["seq"])):
        grouped.setdefault(event["run_id"], []).append(event)
    return grouped
