"""The job timeline: one bar per job on a time axis, one lane per job running at the same time.

Jobs of one rule that overlap in time get lanes of their own (interval partitioning: each job
takes the lowest lane whose last job had ended when it started, so a rule gets as many lanes as
it ever had jobs running at once). Rules are stacked in pipeline order.

The figure is a plain Plotly dict with a single bar trace (per-bar colours), so a live update is
a handful of :class:`dash.Patch` operations instead of a new figure: :func:`apply_jobs` writes
either into a figure dict (the first build, and the tests) or into a ``Patch`` (live updates),
reading only from the :class:`TimelineState` kept beside the figure in a ``dcc.Store``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypedDict

from dashboard.formatting import parse_ts, wildcards_text
from dashboard.theme import job_state_hex, job_state_label
from snakedeck.states import JOB_STATES_ORDER, JobState

NEUTRAL: Final = "#868e96"  # readable axis/text colour on both a light and a dark background
GRID: Final = "rgba(134,142,150,0.25)"
LANE_PX: Final = 24
MAX_BARS: Final = 3000

Lane = list[Any]
"""``[end, jobid]``: when the lane's last job ended (epoch seconds; ``None`` while it runs)."""


class TimelineState(TypedDict):
    """What the figure holds, as JSON: enough to patch it without reading it back."""

    points: dict[str, int]
    """Bar index of each job drawn."""
    lanes: dict[str, list[Lane]]
    """Per rule, its lanes in order."""
    running: dict[str, float]
    """Jobs drawn as running: their start (epoch seconds); their bars grow to now."""
    order: list[str]
    """Rules top to bottom (pipeline order, then rules met later)."""
    legend: list[str]
    """Job states with a legend entry, in the order their traces were added."""
    states: dict[str, str]
    """The state each drawn job is drawn in (a legend entry shows while any job has it)."""
    left_out: int
    """Jobs not drawn (beyond :data:`MAX_BARS`)."""


def new_state(rule_order: Iterable[str] = ()) -> TimelineState:
    return {
        "points": {},
        "lanes": {},
        "running": {},
        "order": list(dict.fromkeys(rule_order)),
        "legend": [],
        "states": {},
        "left_out": 0,
    }


def place(lanes: list[Lane], jobid: str, start: float, end: float | None) -> int:
    """Put a job in the lowest lane free at ``start``; a new lane when every lane is busy."""
    for i, (busy_until, _job) in enumerate(lanes):
        if busy_until is not None and busy_until <= start:
            lanes[i] = [end, jobid]
            return i
    lanes.append([end, jobid])
    return len(lanes) - 1


def assign_lanes(jobs: Iterable[Mapping[str, Any]], now: datetime | None = None) -> dict[str, int]:
    """The lane of every started job within its rule (interval partitioning by start time)."""
    lanes: dict[str, list[Lane]] = {}
    out: dict[str, int] = {}
    for job in sorted(_started(jobs), key=lambda j: _span(j, now)[0]):
        start, end = _span(job, now)
        rule_lanes = lanes.setdefault(str(job.get("rule") or "?"), [])
        out[str(job["jobid"])] = place(rule_lanes, str(job["jobid"]), start, end)
    return out


def lane_label(rule: str, lane: int) -> str:
    return rule if lane == 0 else f"{rule} · {lane + 1}"


def empty_figure() -> dict[str, Any]:
    """The figure before any job: one empty bar trace and the layout every update keeps."""
    bars = {
        "type": "bar",
        "orientation": "h",
        "name": "jobs",
        "showlegend": False,
        "y": [],
        "base": [],
        "x": [],
        "customdata": [],
        "hovertext": [],
        "hoverinfo": "text",
        "marker": {"color": [], "line": {"width": 0}},
        "opacity": 0.9,
    }
    layout = {
        "barmode": "overlay",
        "bargap": 0.25,
        "title": {"text": "0 jobs", "font": {"size": 13, "color": NEUTRAL}},
        "height": 260,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 30},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": NEUTRAL},
        "legend": {"orientation": "h", "y": 1.02, "x": 0, "xanchor": "left", "yanchor": "bottom"},
        "xaxis": {"type": "date", "gridcolor": GRID},
        "yaxis": {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": [],
            "automargin": True,
            "gridcolor": GRID,
        },
    }
    return {"data": [bars], "layout": layout}


def build(
    jobs: Iterable[Mapping[str, Any]],
    rule_order: Iterable[str] = (),
    *,
    now: datetime | None = None,
    left_out: int = 0,
) -> tuple[dict[str, Any], TimelineState]:
    """The whole figure from a list of jobs (those never started are left out)."""
    figure = empty_figure()
    state = new_state(rule_order)
    state["left_out"] = left_out
    started = sorted(_started(jobs), key=lambda j: _span(j, now)[0])
    apply_jobs(figure, state, started, now=now)
    return figure, state


def apply_jobs(
    target: Any,
    state: TimelineState,
    jobs: Iterable[Mapping[str, Any]],
    *,
    now: datetime | None = None,
    rule_order: Iterable[str] | None = None,
) -> TimelineState:
    """Draw new jobs and redraw changed ones into ``target`` (a figure dict or a ``Patch``);
    bars of jobs still running grow to ``now``. Updates and returns ``state``."""
    now = now or datetime.now(UTC)
    bars = target["data"][0]
    lanes_before = sum(len(v) for v in state["lanes"].values())
    shown_before = _shown_states(state)
    reorder = False
    if rule_order is not None and list(rule_order) != state["order"]:
        state["order"] = list(dict.fromkeys(rule_order))
        reorder = True
    for job in _started(jobs):
        jobid = str(job["jobid"])
        if jobid in state["points"]:
            _redraw(bars, state, job, now)
        elif len(state["points"]) < MAX_BARS:
            _add(bars, state, job, now)
        else:
            state["left_out"] += 1
    _legend(target, state, shown_before)
    stamp = now.timestamp()
    for jobid, start in state["running"].items():
        bars["x"][state["points"][jobid]] = _millis(start, stamp)
    lanes_now = sum(len(v) for v in state["lanes"].values())
    if lanes_now != lanes_before or reorder:
        target["layout"]["yaxis"]["categoryarray"] = categories(state)
        target["layout"]["height"] = max(260, 70 + LANE_PX * lanes_now)
    target["layout"]["title"]["text"] = title(state)
    return state


def categories(state: TimelineState) -> list[str]:
    """Lane labels bottom to top (Plotly's order), so the first rule is the top lane."""
    order = [r for r in state["order"] if r in state["lanes"]]
    order += [r for r in state["lanes"] if r not in order]
    labels = [lane_label(rule, i) for rule in order for i in range(len(state["lanes"][rule]))]
    return list(reversed(labels))


def title(state: TimelineState) -> str:
    drawn = len(state["points"])
    more = state["left_out"]
    return f"{drawn} jobs" + (f" (first {drawn}; {more} more not drawn)" if more else "")


def _add(bars: Any, state: TimelineState, job: Mapping[str, Any], now: datetime) -> None:
    jobid = str(job["jobid"])
    rule = str(job.get("rule") or "?")
    start, end = _span(job, now)
    lane = place(state["lanes"].setdefault(rule, []), jobid, start, _lane_end(job, end))
    state["points"][jobid] = len(state["points"])
    bars["y"].append(lane_label(rule, lane))
    bars["base"].append(_iso(start))
    bars["x"].append(_millis(start, end))
    bars["customdata"].append(jobid)
    bars["hovertext"].append(_hover(job, start, end))
    bars["marker"]["color"].append(job_state_hex(job.get("state")))
    _track_running(state, job, jobid, start)
    state["states"][jobid] = str(job.get("state") or JobState.PENDING)


def _redraw(bars: Any, state: TimelineState, job: Mapping[str, Any], now: datetime) -> None:
    jobid = str(job["jobid"])
    i = state["points"][jobid]
    start, end = _span(job, now)
    bars["base"][i] = _iso(start)
    bars["x"][i] = _millis(start, end)
    bars["hovertext"][i] = _hover(job, start, end)
    bars["marker"]["color"][i] = job_state_hex(job.get("state"))
    for lane in state["lanes"].get(str(job.get("rule") or "?"), []):
        if lane[1] == jobid:
            lane[0] = _lane_end(job, end)
    _track_running(state, job, jobid, start)
    state["states"][jobid] = str(job.get("state") or JobState.PENDING)


def _track_running(state: TimelineState, job: Mapping[str, Any], jobid: str, start: float) -> None:
    if job.get("state") == JobState.RUNNING:
        state["running"][jobid] = start
    else:
        state["running"].pop(jobid, None)


def _shown_states(state: TimelineState) -> set[str]:
    return set(state["states"].values())


def _legend(target: Any, state: TimelineState, before: set[str]) -> None:
    """A legend entry per state some bar is drawn in (legend-only traces, since the bars
    share one trace): added the first time a state is drawn, hidden while no bar has it."""
    now = _shown_states(state)
    for job_state in sorted(now - set(state["legend"]), key=_state_rank):
        state["legend"].append(job_state)
        target["data"].append(
            {
                "type": "bar",
                "orientation": "h",
                "name": job_state_label(job_state),
                "x": [None],
                "y": [None],
                "marker": {"color": job_state_hex(job_state)},
                "hoverinfo": "skip",
                "showlegend": True,
            }
        )
        before = before | {job_state}  # just added, visible
    for i, job_state in enumerate(state["legend"]):
        if (job_state in now) != (job_state in before):
            target["data"][i + 1]["visible"] = job_state in now


def _state_rank(job_state: str) -> int:
    order = [s.value for s in JOB_STATES_ORDER]
    return order.index(job_state) if job_state in order else len(order)


def _started(jobs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [j for j in jobs if parse_ts(j.get("started_at")) is not None and "jobid" in j]


def _span(job: Mapping[str, Any], now: datetime | None) -> tuple[float, float]:
    """``(start, end)`` in epoch seconds; a running job ends now, a job with no end ends as it
    starts (a bar of its own minimum width)."""
    start = parse_ts(job.get("started_at"))
    assert start is not None
    end = parse_ts(job.get("finished_at"))
    if end is None:
        end = (now or datetime.now(UTC)) if job.get("state") == JobState.RUNNING else start
    return start.timestamp(), max(start, end).timestamp()


def _lane_end(job: Mapping[str, Any], end: float) -> float | None:
    return None if job.get("state") == JobState.RUNNING else end


def _millis(start: float, end: float) -> float:
    return max((end - start) * 1000.0, 1.0)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def _hover(job: Mapping[str, Any], start: float, end: float) -> str:
    wc = wildcards_text(job.get("wildcards"))
    rule = job.get("rule") or "?"
    return (
        f"job {job.get('jobid')} · {rule}{' · ' + wc if wc else ''}<br>"
        f"{job_state_label(job.get('state'))}, {end - start:.1f} s"
    )
