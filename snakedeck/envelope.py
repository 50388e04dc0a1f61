"""The event envelope v1: the one shape of an event in the spool, on the bus, in the store and
on the live feed.

``{"v":1,"run_id","seq","type","ts","source","level","msg","data":{...}}``

Stdlib only: the Snakemake logger plugin imports this module at every Snakemake start.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypedDict

from snakedeck import json_limits

VERSION: Final = 1

SNAKEMAKE_TYPES: Final = frozenset(
    {
        "workflow_started",
        "run_info",
        "job_info",
        "job_started",
        "job_finished",
        "job_error",
        "shellcmd",
        "progress",
        "error",
        "log",
        "rulegraph",
        "resources_info",
        "group_info",
        "group_error",
        "debug_dag",
    }
)
RUNNER_TYPES: Final = frozenset({"run_state", "job_failure", "job_resources", "run_resources"})
"""What the runner itself writes into a run's spool: the run's lifecycle (``run_state``), why a
job failed as Snakemake's output tells it (``job_failure``: jobid, exit_code, signal, message,
text), what a job used (``job_resources``: jobid, cpu_seconds, peak_rss_bytes, wall_seconds),
and samples of the whole run's CPU and memory (``run_resources``: t, cpu_percent, rss_bytes)."""
CLUSTER_TYPES: Final = frozenset({"job_cluster"})
"""A job's cluster job (``job_cluster``: jobid, cluster_job_id, scheduler, partition, node,
cluster_state, cluster_reason; see :mod:`snakedeck.cluster`), written by the logger plugin from
the executor's submission line and by the runner from the scheduler's own answers."""
EVENT_TYPES: Final = SNAKEMAKE_TYPES | RUNNER_TYPES | CLUSTER_TYPES
SOURCES: Final = frozenset({"snakemake", "runner"})
LEVELS: Final = frozenset({"debug", "info", "warning", "error", "critical"})

MAX_RUN_ID_LEN: Final = 64
MAX_ENVELOPE_BYTES: Final = 8 * 1024 * 1024
"""A rule graph or run_info of a very large workflow stays far below this."""
MAX_SEQ: Final = 2**53
"""Seqs must survive a round trip through JavaScript clients."""
ENVELOPE_LIMITS: Final = json_limits.Limits(max_depth=32, max_string=MAX_ENVELOPE_BYTES)


class EnvelopeError(ValueError):
    """A message is not a valid v1 envelope; the text names the offending field."""


class Envelope(TypedDict):
    """One event, everywhere alike (``seq`` is ``None`` only in the spool, before forwarding)."""

    v: int
    run_id: str
    seq: int | None
    type: str
    ts: str
    source: str
    level: str
    msg: str
    data: dict[str, Any]


def now_iso() -> str:
    return iso_from_epoch(datetime.now(UTC).timestamp())


def iso_from_epoch(seconds: float) -> str:
    """ISO 8601 UTC with millisecond precision, e.g. ``2026-11-25T08:46:15.601Z``."""
    dt = datetime.fromtimestamp(seconds, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def make(
    run_id: str,
    type_: str,
    *,
    data: Mapping[str, Any] | None = None,
    msg: str = "",
    level: str = "info",
    source: str = "snakemake",
    ts: str | None = None,
    seq: int | None = None,
) -> Envelope:
    """Build an envelope; ``seq`` stays ``None`` until the forwarder numbers it."""
    return {
        "v": VERSION,
        "run_id": run_id,
        "seq": seq,
        "type": type_,
        "ts": ts or now_iso(),
        "source": source,
        "level": level,
        "msg": msg,
        "data": to_plain(dict(data or {})),
    }


def run_state(
    run_id: str,
    state: str,
    *,
    exit_code: int | None = None,
    signal: int | None = None,
    reason: str = "",
    attempt: int | None = None,
) -> Envelope:
    """A ``run_state`` event: the runner's (or a hand-run plugin's) word on the run's lifecycle,
    for its ``attempt`` (1 when not given: the first; a resume runs the next one)."""
    data: dict[str, Any] = {"state": state}
    if attempt is not None:
        data["attempt"] = attempt
    if exit_code is not None:
        data["exit_code"] = exit_code
    if signal is not None:
        data["signal"] = signal
    if reason:
        data["reason"] = reason
    level = "error" if state in ("EXECUTOR_ERROR", "SYSTEM_ERROR") else "info"
    return make(run_id, "run_state", data=data, msg=reason or state, level=level, source="runner")


def runner_event(
    run_id: str, type_: str, data: Mapping[str, Any], *, msg: str = "", level: str = "info"
) -> Envelope:
    """An event of the runner's own (one of :data:`RUNNER_TYPES` other than ``run_state``)."""
    if type_ not in RUNNER_TYPES | CLUSTER_TYPES:
        raise ValueError(f"{type_!r} is not a runner event type")
    return make(run_id, type_, data=data, msg=msg, level=level, source="runner")


def routing_key(event: Mapping[str, Any]) -> str:
    return f"run.{event['run_id']}.{event['type']}"


def message_id(event: Mapping[str, Any]) -> str:
    return f"{event['run_id']}:{event['seq']}"


def dumps(event: Mapping[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(raw: bytes | str, *, require_seq: bool = True) -> Envelope:
    """Parse and validate one envelope, raising :class:`EnvelopeError` naming what is wrong.

    Whatever the input (deep nesting, huge numbers, megabytes of data, invalid Unicode), the
    only exception is :class:`EnvelopeError`: a poison message is refused, never a crash."""
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"larger than {MAX_ENVELOPE_BYTES} bytes ({len(raw)})")
    try:
        event = json_limits.parse(raw, ENVELOPE_LIMITS)
    except json_limits.JsonLimitError as exc:
        raise EnvelopeError(str(exc)) from None
    except ValueError as exc:
        raise EnvelopeError(str(exc)) from None
    validate(event, require_seq=require_seq)
    return event


def validate(event: object, *, require_seq: bool = True) -> None:
    if not isinstance(event, dict):
        raise EnvelopeError("envelope must be a JSON object")
    if event.get("v") != VERSION:
        raise EnvelopeError(f"unsupported envelope version {event.get('v')!r}")
    run_id = event.get("run_id")
    if not isinstance(run_id, str) or not is_valid_run_id(run_id):
        raise EnvelopeError(f"run_id {run_id!r} is not a valid run id")
    seq = event.get("seq")
    if require_seq and (
        not isinstance(seq, int) or isinstance(seq, bool) or not 1 <= seq <= MAX_SEQ
    ):
        raise EnvelopeError(f"seq must be a positive integer up to 2^53, got {seq!r}")
    if event.get("type") not in EVENT_TYPES:
        raise EnvelopeError(f"unknown event type {event.get('type')!r}")
    if not isinstance(event.get("ts"), str):
        raise EnvelopeError("ts must be an ISO 8601 string")
    if event.get("source") not in SOURCES:
        raise EnvelopeError(f"unknown source {event.get('source')!r}")
    if event.get("level") not in LEVELS:
        raise EnvelopeError(f"unknown level {event.get('level')!r}")
    if not isinstance(event.get("msg"), str):
        raise EnvelopeError("msg must be a string")
    if not isinstance(event.get("data"), dict):
        raise EnvelopeError("data must be a JSON object")


def is_valid_run_id(run_id: str) -> bool:
    """Run ids appear in routing keys, file names and URLs: keep them to a safe alphabet."""
    return (
        0 < len(run_id) <= MAX_RUN_ID_LEN
        and run_id[0].isalnum()
        and all(c.isalnum() or c in "-_" for c in run_id)
    )


def to_plain(value: Any, _depth: int = 0) -> Any:
    """Turn Snakemake's live objects (Resources, Wildcards, Namedlist, enums, sets) into JSON."""
    if _depth > 20:
        return repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_plain(v, _depth + 1) for k, v in value.items()}
    # Snakemake's Namedlist subclasses (Resources, Wildcards, InputFiles) keep names beside items.
    # Only when the names cover every item: unnamed items (input: "a", x="b") would be lost.
    items = getattr(value, "_names", None)
    if isinstance(items, dict) and not items and not len(value):
        return {} if type(value).__name__ == "Wildcards" else []
    if isinstance(items, dict) and items and hasattr(value, "items") and _names_cover(value):
        try:
            return {str(k): to_plain(v, _depth + 1) for k, v in value.items()}
        except Exception:  # noqa: BLE001 - fall through to the plain sequence form
            pass
    if isinstance(value, (list, tuple, set, frozenset)):
        seq = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_plain(v, _depth + 1) for v in seq]
    enum_value = getattr(value, "value", None)
    if enum_value is not None and type(value).__module__ != "builtins":
        return to_plain(enum_value, _depth + 1)
    return str(value)


def _names_cover(value: Any) -> bool:
    """Whether a Snakemake Namedlist's names cover each of its items."""
    try:
        covered: set[int] = set()
        for start, end in value._names.values():
            covered.update(range(start, start + 1 if end is None else end))
        return covered >= set(range(len(value)))
    except (TypeError, ValueError, AttributeError):
        return False
