"""Folding events into run and job documents.

Pure functions, shared by every store backend. Each fold is guarded by ``seq`` so that replays,
duplicates and out-of-order delivery always leave the same documents: a field set from an
event is only overwritten by an event with a higher seq.

Run lifecycle events are checked against :mod:`snakedeck.states` as they are folded: a state
that cannot follow the current one of its attempt (a second terminal state, a step back) is
not applied but recorded in the run's ``anomalies``, as is a lifecycle event from an owner
whose claim on the run was fenced off (see :mod:`snakedeck.store.claims`).

**Attempts.** A resumed run runs again in its own work directory, appending to the same event
stream (seqs go on). Each ``run_state`` names its ``attempt`` (1 if it does not); the run
keeps one record per attempt in ``attempts`` and shows its current (highest) attempt at the
top level (``state``, ``closed_seq``, ``finished_at``…). Jobs are settled by the latest end of
any attempt (``settled_seq``): a job left open before it becomes ``cancelled``/``not_run``,
and a job that a later attempt runs again opens again, because its new events come after
that end. Whatever order the events of several attempts arrive in, the documents come out
the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from snakedeck import cluster
from snakedeck.documents import JobDoc, JobError, Progress, RunAttempt, RunDoc
from snakedeck.envelope import MAX_SEQ, Envelope
from snakedeck.states import (
    JOB_STATE_BY_EVENT,
    JOB_STATES_ORDER,
    TERMINAL_RUN_STATES,
    JobState,
    RunState,
    can_reach,
    settle_job_state,
)

log = logging.getLogger(__name__)

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
UNKNOWN_RULE: Final = "?"
"""The counts key of jobs whose rule is not known yet (no rule name can be "?")."""
MAX_ANOMALIES: Final = 20
MAX_ATTEMPTS: Final = 1000
SERIES_POINTS: Final = 500
"""Most points a run's resource series keeps (the bucket width doubles beyond it)."""
SERIES_WIDTH: Final = 5
"""Seconds per point of a run's resource series, before any doubling."""
JOB_EVENT_TYPES: Final = frozenset(
    {"job_started", "job_info", "job_error", "job_finished", "job_failure", "job_resources",
     "job_cluster"}
)  # fmt: skip
FAILURE_FIELDS: Final = (
    "exit_code", "signal", "message", "text", "text_shared", "truncated", "logs", "attempt",
)  # fmt: skip
RESOURCE_FIELDS: Final = ("cpu_seconds", "peak_rss_bytes", "wall_seconds", "processes", "basis")


def job_key(run_id: str, jobid: str | int) -> str:
    return f"{run_id}:{jobid}"


def job_ids(event: Mapping[str, Any]) -> list[str]:
    """The Snakemake job ids an event is about (``job_started`` names several)."""
    data = event.get("data", {})
    kind = event.get("type")
    if kind == "job_started":
        jobs = data.get("jobs")
        return [str(j) for j in jobs] if isinstance(jobs, list) else []
    if kind in ("job_info", "job_error", "job_failure", "job_resources", "job_cluster"):
        return [str(data["jobid"])] if _is_jobid(data.get("jobid")) else []
    if kind == "job_finished":
        jid = data.get("job_id", data.get("jobid"))
        return [str(jid)] if _is_jobid(jid) else []
    return []


def _is_jobid(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and 0 < len(value) <= 32
    )


def registers_run(event: Mapping[str, Any]) -> bool:
    """Whether an event may create its run: a hand-run Snakemake's first lifecycle event (runs
    submitted through snakedeck exist before any of their events)."""
    data = event.get("data") or {}
    return event.get("type") == "run_state" and data.get("hand_run") is True


def new_run(run_id: str) -> RunDoc:
    return {
        "run_id": run_id,
        "state": RunState.QUEUED.value,
        "state_seq": 0,
        "last_seq": 0,
        "progress": {"done": 0, "total": 0, "failed": 0, "running": 0},
        "rule_counts": {},
        "rule_totals": {},
        "counts": {},
        "tags": {},
        "attempt": 1,
        "attempts": [],
    }


def new_job(run_id: str, jobid: str) -> JobDoc:
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


def _newer(doc: Mapping[str, Any], field: str, seq: int) -> bool:
    if seq > int(doc.get(field) or 0):
        doc[field] = seq  # type: ignore[index]
        return True
    return False


def _anomaly(doc: RunDoc, seq: int, text: str) -> None:
    found = doc.setdefault("anomalies", [])  # type: ignore[typeddict-item]
    if any(a.get("seq") == seq for a in found):
        return  # the same event folded again
    log.error("run %s, event %d: %s", doc.get("run_id"), seq, text)
    if len(found) < MAX_ANOMALIES:
        found.append({"seq": seq, "problem": text})
        found.sort(key=lambda a: a["seq"])


# -- runs --------------------------------------------------------------------------------------
def fold_run(doc: RunDoc, event: Envelope) -> RunDoc:
    """Apply one event to a run document (in place, and returned)."""
    seq = int(event["seq"] or 0)
    data = event.get("data", {})
    kind = event["type"]
    doc["last_seq"] = max(int(doc.get("last_seq") or 0), seq)
    if kind == "run_state":
        _fold_run_state(doc, event, seq, data)
    elif kind == "run_info":
        stats = dict(data.get("stats") or {})
        total = stats.pop("total", None)
        if _newer(doc, "run_info_seq", seq):
            doc["rule_totals"] = {str(k): _int(v) for k, v in stats.items()}
        # A later ``progress`` event may already have set a newer total: only a newer one wins.
        if total is not None and _newer(doc, "total_seq", seq):
            doc.setdefault("progress", {})["total"] = _int(total)
    elif kind == "progress":
        if data.get("total") is not None and _newer(doc, "total_seq", seq):
            doc.setdefault("progress", {})["total"] = _int(data["total"])
    elif kind == "workflow_started":
        doc["snakemake"] = {
            k: data.get(k) for k in ("snakefile", "workflow_id") if data.get(k) is not None
        }
        # min, not setdefault: the RUNNING run_state may arrive before or after this event.
        doc["started_at"] = min(doc.get("started_at") or event["ts"], event["ts"])
    elif kind == "rulegraph":
        if _newer(doc, "rulegraph_seq", seq):
            doc["rulegraph"] = data.get("rulegraph")
            doc["rule_order"] = pipeline_order(data.get("rulegraph"))
    elif kind == "error" and _newer(doc, "error_seq", seq):
        doc["error"] = event.get("msg", "")
    elif kind == "resources_info":
        cores = data.get("cores")
        if isinstance(cores, int) and cores > 0 and _newer(doc, "cores_seq", seq):
            doc["cores"] = cores
    elif kind == "run_resources":
        fold_series(doc, data)
    return doc


def fold_series(doc: RunDoc, data: Mapping[str, Any]) -> None:
    """Add one sample (``t`` epoch seconds, ``cpu_percent``, ``rss_bytes``) to the run's
    series: per bucket the peak of each, so a sample folded twice changes nothing, and the
    width doubles while more than :data:`SERIES_POINTS` buckets would be needed. Max is
    order-free and re-bucketing by a doubled width merges whole buckets, so the series is the
    same whatever order the samples arrive in."""
    t, cpu, rss = data.get("t"), data.get("cpu_percent"), data.get("rss_bytes")
    if not all(_is_number(v) and v >= 0 for v in (t, cpu, rss)):
        return
    series = doc.get("resource_series") or {"width": SERIES_WIDTH, "points": []}
    width = int(series.get("width") or SERIES_WIDTH)
    buckets: dict[int, list[float]] = {}

    def add(key: int, cpu_value: float, rss_value: float) -> None:
        point = buckets.setdefault(key, [key, 0.0, 0])
        point[1] = max(point[1], round(float(cpu_value), 1))
        point[2] = max(point[2], int(rss_value))

    for key, cpu_value, rss_value in series.get("points") or []:
        add(int(key), cpu_value, rss_value)
    add(int(t) // width * width, cpu, rss)  # type: ignore[call-overload,operator]
    while len(buckets) > SERIES_POINTS:
        width *= 2
        old, buckets = buckets, {}
        for key, cpu_value, rss_value in old.values():
            add(int(key) // width * width, cpu_value, rss_value)
    doc["resource_series"] = {"width": width, "points": [buckets[k] for k in sorted(buckets)]}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _attempt_number(data: Mapping[str, Any]) -> int:
    value = data.get("attempt")
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ATTEMPTS:
        return value
    return 1


def attempt_records(doc: RunDoc) -> list[RunAttempt]:
    """The run's attempts, oldest first. A document written before attempts were kept gets
    its first one from its top-level fields."""
    records = doc.get("attempts")
    if records is None:
        records = []
        if doc.get("state_seq") or doc.get("closed_seq") is not None:
            records.append(
                {
                    "attempt": 1,
                    "state": str(doc.get("state") or RunState.QUEUED.value),
                    "state_seq": int(doc.get("state_seq") or 0),
                    "closed_seq": doc.get("closed_seq"),
                    "reason": str(doc.get("state_reason") or ""),
                    "started_at": doc.get("initialized_at"),
                    "finished_at": doc.get("finished_at"),
                    "exit_code": doc.get("exit_code"),
                    "signal": doc.get("signal"),
                    "runner": doc.get("runner"),
                }
            )
        doc["attempts"] = records
    return records


def _record(doc: RunDoc, attempt: int) -> RunAttempt:
    records = attempt_records(doc)
    for rec in records:
        if rec.get("attempt") == attempt:
            return rec
    rec: RunAttempt = {
        "attempt": attempt, "state": RunState.QUEUED.value, "state_seq": 0, "closed_seq": None,
        "reason": "", "started_at": None, "finished_at": None,
    }  # fmt: skip
    records.append(rec)
    records.sort(key=lambda r: int(r.get("attempt") or 0))
    return rec


def derive_run_state(doc: RunDoc) -> RunDoc:
    """The top-level lifecycle fields from the current (highest) attempt, and
    ``settled_seq`` from the latest end of any attempt."""
    records = attempt_records(doc)
    if not records:
        return doc
    current = records[-1]
    doc["attempt"] = int(current.get("attempt") or 1)
    doc["state"] = str(current.get("state") or RunState.QUEUED.value)
    doc["state_seq"] = int(current.get("state_seq") or 0)
    doc["state_reason"] = str(current.get("reason") or "")
    doc["exit_code"] = current.get("exit_code")
    doc["signal"] = current.get("signal")
    doc["closed_seq"] = current.get("closed_seq")
    doc["finished_at"] = current.get("finished_at")
    ends = [int(r["closed_seq"]) for r in records if r.get("closed_seq") is not None]
    doc["settled_seq"] = max(ends) if ends else None
    runners = [r for r in records if r.get("runner")]
    if runners:
        doc["runner"] = runners[-1]["runner"]
        doc["host"] = runners[-1].get("host")  # type: ignore[typeddict-item]
    return doc


def settled_seq(run: Mapping[str, Any]) -> int | None:
    """The seq before which a job left open is settled (see the module docstring)."""
    ends = [int(v) for v in (run.get("settled_seq"), run.get("closed_seq")) if v is not None]
    return max(ends) if ends else None


def _fold_run_state(doc: RunDoc, event: Envelope, seq: int, data: Mapping[str, Any]) -> None:
    state = data.get("state")
    if data.get("hand_run") is True:
        doc["hand_run"] = True
        if data.get("workflow") and not doc.get("workflow"):
            doc["workflow"] = str(data["workflow"])  # hand-run Snakemake names its own
    if state not in RunState.__members__:
        _anomaly(doc, seq, f"run_state names no state ({state!r})")
        return
    new = RunState(state)
    if doc.get("declared_by"):
        _anomaly(
            doc, seq, f"{new} after the run was declared {doc['state']} ({doc['declared_by']})"
        )
        return
    epoch = data.get("epoch")
    fence = int(doc.get("fence") or 0)  # type: ignore[call-overload]
    if isinstance(epoch, int) and epoch < fence:
        _anomaly(doc, seq, f"{new} from an owner whose claim was fenced off (epoch {epoch})")
        return
    attempt = _attempt_number(data)
    rec = _record(doc, attempt)
    where = f" of attempt {attempt}" if attempt > 1 else ""
    closed = rec.get("closed_seq")
    if new in TERMINAL_RUN_STATES:
        if closed is not None and closed != seq:
            later = max(int(closed), seq)
            _anomaly(doc, later, f"a second terminal state{where}; the first one stands")
            if seq > int(closed):
                derive_run_state(doc)
                return
        _apply_state(rec, new, seq, data)
        rec["closed_seq"] = seq
        rec["finished_at"] = event["ts"]
        derive_run_state(doc)
        return
    if closed is not None and seq > int(closed):
        _anomaly(doc, seq, f"{new} after the run{where} had ended")
        return
    if seq > int(rec.get("state_seq") or 0):
        current = RunState(rec.get("state") or RunState.QUEUED)
        if current != new and not can_reach(current, new):
            _anomaly(doc, seq, f"a run cannot go from {current} to {new}{where}")
            return
        _apply_state(rec, new, seq, data)
    if new == RunState.INITIALIZING:
        rec["started_at"] = min(rec.get("started_at") or event["ts"], event["ts"])
        doc["initialized_at"] = min(doc.get("initialized_at") or event["ts"], event["ts"])
        for key in ("runner", "host"):
            if isinstance(data.get(key), str):
                rec[key] = data[key]  # type: ignore[literal-required]
    elif new == RunState.RUNNING:
        doc["started_at"] = min(doc.get("started_at") or event["ts"], event["ts"])
    derive_run_state(doc)


def _apply_state(rec: RunAttempt, new: RunState, seq: int, data: Mapping[str, Any]) -> None:
    rec["state"] = new.value
    rec["state_seq"] = seq
    rec["reason"] = str(data.get("reason") or "")
    rec["exit_code"] = data.get("exit_code")
    rec["signal"] = data.get("signal")


def declare_end(
    doc: RunDoc, state: RunState, reason: str, *, by: str, fence: int, at: str
) -> RunDoc:
    """End a run from outside its event stream (the reaper, for a runner that was lost).

    The run is closed "at the end of time", so every job still open settles, and the owner's
    later events (fenced by the epoch, and by ``declared_by``) cannot move its state."""
    rec = _record(doc, int(doc.get("attempt") or 1))
    rec.update(state=state.value, reason=reason, closed_seq=MAX_SEQ, finished_at=at)
    derive_run_state(doc)
    doc["declared_by"] = by  # type: ignore[typeddict-unknown-key]
    doc["fence"] = max(fence, int(doc.get("fence") or 0))  # type: ignore[typeddict-unknown-key,call-overload]
    return doc


ATTEMPT_FIELDS: Final = (
    "attempt", "attempts", "state", "state_seq", "state_reason", "exit_code", "signal",
    "closed_seq", "finished_at", "settled_seq", "cancel_requested", "cancel_requested_at",
    "cancel_requested_by",
)  # fmt: skip
"""What starting (or failing) an attempt outside the event stream changes on a run."""


def start_attempt(doc: RunDoc, *, at: str, by: str | None) -> RunAttempt:
    """Begin the run's next attempt at QUEUED (a resume; :func:`states.check_resume` says
    whether the run may be resumed). The cancel of an earlier attempt does not carry over."""
    attempt = int(doc.get("attempt") or 1) + 1
    attempt_records(doc)
    rec = _record(doc, attempt)
    rec.update(requested_at=at, requested_by=by, reason=f"resume requested (attempt {attempt})")
    derive_run_state(doc)
    for key in ("cancel_requested", "cancel_requested_at", "cancel_requested_by"):
        doc.pop(key, None)  # type: ignore[misc]
    return rec


def fail_attempt(doc: RunDoc, reason: str, *, at: str) -> RunDoc:
    """End the current attempt as SYSTEM_ERROR before any of its events (it could not be
    handed to its runner). It closes at the run's last seq: nothing of it ran."""
    rec = _record(doc, int(doc.get("attempt") or 1))
    if rec.get("closed_seq") is None:
        closed = max(int(doc.get("last_seq") or 0), settled_seq(doc) or 0)
        rec.update(
            state=RunState.SYSTEM_ERROR.value, reason=reason, closed_seq=closed, finished_at=at
        )
    return derive_run_state(doc)


def pipeline_order(rulegraph: Any) -> list[str]:
    """Rule names in the order data flows through them (a topological order of the rule
    graph, ties by name), so displays list rules as the pipeline runs them."""
    if not isinstance(rulegraph, Mapping):
        return []
    nodes = rulegraph.get("nodes")
    if not isinstance(nodes, list):
        return []
    names = [str(n.get("rule")) if isinstance(n, Mapping) else "" for n in nodes]
    feeds: dict[int, set[int]] = {i: set() for i in range(len(names))}
    waiting = dict.fromkeys(range(len(names)), 0)
    for link in rulegraph.get("links") or []:
        if not isinstance(link, Mapping):
            continue
        src, dst = link.get("source"), link.get("target")
        known = isinstance(src, int) and isinstance(dst, int) and src in feeds and dst in feeds
        if known and dst not in feeds[src]:  # type: ignore[index]
            feeds[src].add(dst)  # type: ignore[index]
            waiting[dst] += 1  # type: ignore[index]
    ready = sorted((i for i, n in waiting.items() if n == 0), key=lambda i: names[i])
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in sorted(feeds[i], key=lambda j: names[j]):
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
        ready.sort(key=lambda k: names[k])
    order += [i for i in range(len(names)) if i not in order]  # a cycle: keep the rest
    seen: list[str] = []
    for i in order:
        if names[i] and names[i] not in seen:
            seen.append(names[i])
    return seen


# -- jobs --------------------------------------------------------------------------------------
def fold_job(doc: JobDoc, event: Envelope, closed_seq: int | None) -> JobDoc:
    """Apply one job event to a job document (in place, and returned).

    Snakemake retries a failed job under the same jobid: each attempt starts with a
    ``job_info`` and ends with a ``job_error`` or ``job_finished``. The document keeps the
    seqs of those marks (``_attempt_marks``), so the attempts, and the final state, times and
    error of the last one, come out the same in whatever order the events arrive."""
    seq = int(event["seq"] or 0)
    data = event.get("data", {})
    kind = event["type"]
    ts = event["ts"]
    if kind == "job_info" and _newer(doc, "info_seq", seq):
        doc["rule"] = data.get("rule_name")
        reported = doc.get("error") or {}
        for name in JOB_INFO_FIELDS:
            # job_error's files win (its log adds Snakemake's aux logs), in either order.
            if name in data and not (name in ERROR_FILE_FIELDS and reported.get(name)):
                doc[name] = data[name]  # type: ignore[literal-required]
    if kind == "job_error":
        doc["rule"] = doc.get("rule") or data.get("rule_name")
        error: JobError = {
            "msg": event.get("msg", ""),
            "rule_msg": data.get("rule_msg"),
            "aux": data.get("aux"),
            "conda_env": data.get("conda_env"),
            "container_img": data.get("container_img"),
        }
        for name in ERROR_FILE_FIELDS:
            if data.get(name):
                doc[name] = error[name] = data[name]  # type: ignore[literal-required]
        if _newer(doc, "error_seq", seq):
            doc["last_error"] = error  # type: ignore[typeddict-unknown-key]
    if kind == "job_failure" and _newer(doc, "failure_seq", seq):
        doc["_failure"] = {k: data[k] for k in FAILURE_FIELDS if k in data}  # type: ignore[typeddict-unknown-key]
    if kind == "job_cluster":
        # Each field from the newest event that has it: the submission line names the id,
        # the scheduler's answers add partition, node and state later (in any order).
        seqs: dict[str, int] = doc.setdefault("_cluster_seqs", {})  # type: ignore[typeddict-item]
        for name, value in cluster.cluster_fields(data).items():
            if seq > seqs.get(name, 0):
                seqs[name] = seq
                doc[name] = value  # type: ignore[literal-required]
    if kind == "job_resources" and _newer(doc, "resources_seq", seq):
        doc["resources_used"] = {k: data[k] for k in RESOURCE_FIELDS if k in data}  # type: ignore[typeddict-item]
    if kind in ("job_started", "job_info", "job_finished", "job_error"):
        _mark_attempt(doc, seq, kind, ts, event.get("msg", ""))
    state = JOB_STATE_BY_EVENT.get(kind)
    if state is not None and _newer(doc, "state_seq", seq):
        doc["state"] = state.value
    settle_job(doc, closed_seq)
    _derive_attempts(doc)
    return doc


def _mark_attempt(doc: JobDoc, seq: int, kind: str, ts: str, msg: str) -> None:
    marks: list[list[Any]] = doc.setdefault("_attempt_marks", [])  # type: ignore[typeddict-item]
    if not any(m[0] == seq for m in marks):
        marks.append([seq, kind, ts, msg[:2000]])
        marks.sort(key=lambda m: m[0])


def _derive_attempts(doc: JobDoc) -> None:
    """``attempts`` (one per ``job_info``, with the end that follows it), ``attempt``, and the
    job's times and error as its last attempt has them."""
    marks = doc.get("_attempt_marks") or []  # type: ignore[typeddict-item]
    attempts: list[dict[str, Any]] = []
    scheduled: str | None = None  # a job_started between attempts: when the next one began
    for _seq, kind, ts, msg in marks:
        open_attempt = bool(attempts) and attempts[-1]["finished_at"] is None
        if kind == "job_started":
            if not open_attempt:
                scheduled = scheduled or ts
            elif attempts[-1]["started_at"] is None or ts < attempts[-1]["started_at"]:
                attempts[-1]["started_at"] = ts
        elif kind == "job_info":
            attempts.append({"attempt": len(attempts) + 1, "started_at": scheduled or ts,
                             "finished_at": None, "state": JobState.RUNNING.value})  # fmt: skip
            scheduled = None
        elif attempts and attempts[-1]["finished_at"] is None:
            failed = kind == "job_error"
            attempts[-1]["finished_at"] = ts
            attempts[-1]["state"] = (JobState.FAILED if failed else JobState.DONE).value
            if failed:
                attempts[-1]["error"] = msg
        elif not attempts:  # its end arrived before its start: an attempt of unknown start
            failed = kind == "job_error"
            attempts.append({"attempt": 1, "started_at": scheduled, "finished_at": ts,
                             "state": (JobState.FAILED if failed else JobState.DONE).value,
                             **({"error": msg} if failed else {})})  # fmt: skip
    if not attempts and scheduled:  # started, no job_info yet
        attempts.append({"attempt": 1, "started_at": scheduled, "finished_at": None,
                         "state": JobState.RUNNING.value})  # fmt: skip
    last = attempts[-1] if attempts else {}
    doc["attempt"] = len(attempts) or 1  # type: ignore[typeddict-unknown-key]
    doc["attempts"] = attempts  # type: ignore[typeddict-unknown-key]
    doc["started_at"] = last.get("started_at")
    doc["finished_at"] = last.get("finished_at")
    if doc["state"] == JobState.FAILED.value and doc.get("last_error"):  # type: ignore[typeddict-item]
        doc["error"] = doc["last_error"]  # type: ignore[typeddict-item]
    elif doc["state"] == JobState.DONE.value:
        doc.pop("error", None)
    failure = doc.get("_failure")  # type: ignore[typeddict-item]
    # The failure text of the attempt that failed last, while the job stands failed (an
    # attempt that ran after it, a retry or a resume, has its own outcome).
    if failure and doc["state"] == JobState.FAILED.value and _failure_is_current(doc):
        doc["failure"] = failure
    else:
        doc.pop("failure", None)
    doc["duration"] = _duration(doc.get("started_at"), doc.get("finished_at"))


def _failure_is_current(doc: JobDoc) -> bool:
    """Whether the stored failure comes after the start of the job's last attempt."""
    marks = doc.get("_attempt_marks") or []  # type: ignore[typeddict-item]
    starts = [m[0] for m in marks if m[1] == "job_info"]
    return not starts or int(doc.get("failure_seq") or 0) > max(starts)  # type: ignore[call-overload]


def settle_job(doc: JobDoc, closed_seq: int | None) -> JobDoc:
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
    except (ValueError, TypeError):
        return None
    return max(0.0, round((b - a).total_seconds(), 3))


def _int(value: Any) -> int:
    try:
        return max(0, int(value))
    except (TypeError, ValueError, OverflowError):
        return 0


# -- counts and progress -----------------------------------------------------------------------
class Counts:
    """A run's per-rule job counts, moved by each job's change instead of recounted."""

    def __init__(self, run: RunDoc) -> None:
        self.run = run
        self.by_rule: dict[str, dict[str, int]] = {
            rule: dict(states) for rule, states in (run.get("counts") or {}).items()
        }

    def move(self, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> None:
        """Account for one job going from ``before`` (``None``: new) to ``after``."""
        if before is not None:
            key = (before.get("rule") or UNKNOWN_RULE, str(before.get("state")))
            if key == (after.get("rule") or UNKNOWN_RULE, str(after.get("state"))):
                return
            self._add(*key, -1)
        self._add(after.get("rule") or UNKNOWN_RULE, str(after.get("state")), +1)

    def reset(self, counted: Mapping[str | None, Mapping[str, int]]) -> None:
        """Take counts recomputed from the job documents themselves."""
        self.by_rule = {}
        for rule, states in counted.items():
            for state, n in states.items():
                self._add(rule or UNKNOWN_RULE, state, int(n))

    def _add(self, rule: str, state: str, n: int) -> None:
        states = self.by_rule.setdefault(rule, {})
        states[state] = states.get(state, 0) + n
        if states[state] == 0:
            del states[state]
        if not states:
            del self.by_rule[rule]

    def store(self) -> None:
        self.run["counts"] = self.by_rule


def summarize(doc: RunDoc) -> RunDoc:
    """Set ``progress`` and ``rule_counts`` from the run's per-rule job counts.

    Jobs Snakemake planned but never started count as ``pending`` while the run is active and
    as ``not_run`` once it has ended, so an ended run leaves nothing pending."""
    ended = doc.get("closed_seq") is not None
    counts = doc.get("counts") or {}
    totals: dict[str, int] = dict(doc.get("rule_totals") or {})
    unnamed = {s.value: int((counts.get(UNKNOWN_RULE) or {}).get(s.value, 0)) for s in JobState}
    named = {rule: c for rule, c in counts.items() if rule != UNKNOWN_RULE}
    rule_counts: dict[str, dict[str, int]] = {}
    order = [r for r in doc.get("rule_order") or [] if r in totals or r in named]
    rules = order + sorted((set(totals) | set(named)) - set(order))
    for rule in rules:
        by_state = {s.value: int(named.get(rule, {}).get(s.value, 0)) for s in JOB_STATES_ORDER}
        seen = sum(by_state.values())
        total = max(totals.get(rule, 0), seen)
        unstarted = JobState.NOT_RUN if ended else JobState.PENDING
        by_state[unstarted.value] += total - seen
        by_state["total"] = total
        rule_counts[rule] = by_state
    # Progress counts job documents (named or not) and calls the rest of the plan unstarted;
    # per-rule remainders are not summed, since an unnamed job is one of some rule's remainder.
    progress: Progress = {}
    for state in JOB_STATES_ORDER:
        progress[state.value] = unnamed[state.value] + sum(  # type: ignore[literal-required]
            int(named.get(rule, {}).get(state.value, 0)) for rule in named
        )
    documented = sum(int(progress.get(s.value, 0)) for s in JOB_STATES_ORDER)  # type: ignore[misc]
    planned = sum(rc["total"] for rc in rule_counts.values())
    total = max(int((doc.get("progress") or {}).get("total") or 0), planned, documented)
    unstarted = JobState.NOT_RUN if ended else JobState.PENDING
    progress[unstarted.value] += total - documented  # type: ignore[literal-required]
    progress["total"] = total
    doc["rule_counts"] = rule_counts
    doc["progress"] = progress
    return doc


# -- what lists and live feeds show ------------------------------------------------------------
RUN_SUMMARY_KEYS: Final = (
    "run_id",
    "workflow",
    "workflow_version",
    "state",
    "state_reason",
    "progress",
    "rule_counts",
    "rule_order",
    "tags",
    "user",
    "submitted_at",
    "started_at",
    "finished_at",
    "last_seq",
    "exit_code",
    "rerun_of",
    "hand_run",
    "cancel_requested",
    "cancel_requested_by",
    "attempt",
    "runner",
)
JOB_SUMMARY_KEYS: Final = (
    "run_id",
    "jobid",
    "rule",
    "state",
    "wildcards",
    "started_at",
    "finished_at",
    "duration",
    "threads",
    "attempt",
    "resources_used",
    "cluster_job_id",
    "partition",
    "node",
)


def run_summary(doc: Mapping[str, Any]) -> RunDoc:
    """The compact form of a run pushed to live subscribers and shown in lists."""
    return {k: doc.get(k) for k in RUN_SUMMARY_KEYS if k in doc}  # type: ignore[return-value]


def job_summary(doc: Mapping[str, Any]) -> JobDoc:
    return {k: doc.get(k) for k in JOB_SUMMARY_KEYS if k in doc}  # type: ignore[return-value]


def group_by_run(events: Iterable[Envelope]) -> dict[str, list[Envelope]]:
    grouped: dict[str, list[Envelope]] = {}
    for event in sorted(events, key=lambda e: (e["run_id"], e["seq"] or 0)):
        grouped.setdefault(event["run_id"], []).append(event)
    return grouped
