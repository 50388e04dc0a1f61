"""Timestamps and durations as the dashboard writes them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from snakedeck.states import is_terminal


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


def run_duration(run: Mapping[str, Any], now: datetime | None = None) -> float | None:
    """Seconds from start (or submission) to finish, or to ``now`` for a run still going."""
    start = parse_ts(run.get("started_at")) or parse_ts(run.get("submitted_at"))
    if start is None:
        return None
    end = parse_ts(run.get("finished_at"))
    if end is None:
        if is_terminal(run.get("state")):
            return None
        end = now or datetime.now(UTC)
    return max(0.0, (end - start).total_seconds())


def format_when(value: Any) -> str:
    """A timestamp as ``2026-11-25 08:46:15 UTC`` (browsers differ in time zones; UTC is
    unambiguous in a shared link or a bug report)."""
    dt = parse_ts(value)
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "—"


def wildcards_text(value: Any) -> str:
    """``sample=s1, lane=2`` from a job's wildcards (a mapping, or Snakemake's plain list)."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return ""


def format_size(size: Any) -> str:
    """``812 B``, ``4.2 kB``, ``13.0 MB``, ``1.2 GB`` (powers of 1000, as file managers show)."""
    if not isinstance(size, int | float) or size < 0:
        return "—"
    if size < 1000:
        return f"{int(size)} B"
    for unit in ("kB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            return f"{size:.1f} {unit}"
    return "—"  # unreachable: the loop ends at TB
