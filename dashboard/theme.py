"""State colors and small formatting helpers shared by every dashboard page.

Mantine color names (for badges and progress sections) adapt to the light and dark schemes by
themselves; the hex values are Mantine's shade 6 of the same colors, mid-tones that stay readable
on both a white and a near-black background (used where Mantine's theme does not reach: Plotly
figures and the Cytoscape graph).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

RUN_STATE_COLOR: Final = {
    "QUEUED": "gray",
    "INITIALIZING": "cyan",
    "RUNNING": "blue",
    "COMPLETE": "green",
    "EXECUTOR_ERROR": "red",
    "SYSTEM_ERROR": "grape",
    "CANCELING": "orange",
    "CANCELED": "yellow",
    "UNKNOWN": "gray",
}

JOB_STATE_COLOR: Final = {
    "pending": "gray",
    "running": "blue",
    "done": "green",
    "failed": "red",
    "cancelled": "orange",
}

MANTINE_HEX: Final = {
    "gray": "#868e96",
    "cyan": "#15aabf",
    "blue": "#228be6",
    "green": "#40c057",
    "red": "#fa5252",
    "grape": "#be4bdb",
    "orange": "#fd7e14",
    "yellow": "#fab005",
}

JOB_STATES: Final = ("pending", "running", "done", "failed", "cancelled")
RUN_STATES: Final = tuple(RUN_STATE_COLOR)


def run_state_color(state: str | None) -> str:
    return RUN_STATE_COLOR.get(str(state or "UNKNOWN"), "gray")


def job_state_color(state: str | None) -> str:
    return JOB_STATE_COLOR.get(str(state or "pending"), "gray")


def job_state_hex(state: str | None) -> str:
    return MANTINE_HEX[job_state_color(state)]


def parse_ts(value: Any) -> datetime | None:
    """An envelope timestamp (ISO 8601, ``Z`` suffix) as an aware datetime, or ``None``."""
    if not value or not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def format_duration(seconds: float | None) -> str:
    """``842 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``; ``—`` when unknown."""
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def run_duration(run: dict[str, Any], now: datetime | None = None) -> float | None:
    """Seconds from start (or submission) to finish, or to ``now`` for a run still going."""
    start = parse_ts(run.get("started_at")) or parse_ts(run.get("submitted_at"))
    if start is None:
        return None
    end = parse_ts(run.get("finished_at"))
    if end is None:
        if run.get("state") in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"):
            return None
        end = now or datetime.now(UTC)
    return max(0.0, (end - start).total_seconds())


def format_when(value: Any) -> str:
    """A timestamp as ``2026-11-25 08:46:15 UTC`` (browsers differ in time zones; UTC is
    unambiguous in a shared link or a bug report)."""
    dt = parse_ts(value)
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "—"


def progress_fractions(progress: dict[str, Any] | None) -> dict[str, float]:
    """Percent of all jobs per state (done, failed, running, cancelled) and the overall done %.

    ``overall`` counts finished jobs (done + failed + cancelled): a run that ended has nothing
    left to progress, even if some of it failed."""
    p = progress or {}
    total = int(p.get("total") or 0)
    if total <= 0:
        return {"done": 0.0, "failed": 0.0, "running": 0.0, "cancelled": 0.0, "overall": 0.0}
    out = {
        k: 100.0 * int(p.get(k) or 0) / total for k in ("done", "failed", "running", "cancelled")
    }
    out["overall"] = min(100.0, out["done"] + out["failed"] + out["cancelled"])
    return out


def rule_state(counts: dict[str, Any] | None) -> str:
    """The one state that best describes a rule's jobs, for coloring a graph node."""
    c = counts or {}
    total = int(c.get("total") or 0)
    if int(c.get("failed") or 0):
        return "failed"
    if int(c.get("running") or 0):
        return "running"
    if total and int(c.get("done") or 0) >= total:
        return "done"
    if int(c.get("cancelled") or 0):
        return "cancelled"
    return "pending"


TERMINAL_RUN_STATES: Final = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"})


def is_terminal(state: str | None) -> bool:
    return state in TERMINAL_RUN_STATES
