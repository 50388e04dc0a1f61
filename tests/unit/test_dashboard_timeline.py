"""The job timeline: one lane per job running at the same time within a rule (interval
partitioning), rules in pipeline order, and live updates as patches of the same figure."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

from dash import Patch

from dashboard import theme, timeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ts(seconds: float) -> str:
    return datetime.fromtimestamp(T0.timestamp() + seconds, UTC).isoformat().replace("+00:00", "Z")


def job(jobid, rule, state, start, end=None, **extra):
    return {
        "jobid": str(jobid),
        "rule": rule,
        "state": state,
        "started_at": ts(start) if start is not None else None,
        "finished_at": ts(end) if end is not None else None,
        **extra,
    }


def spans_by_lane(jobs, lanes):
    out: dict = {}
    for j in jobs:
        if j["jobid"] in lanes:
            out.setdefault((j["rule"], lanes[j["jobid"]]), []).append(j)
    return out


def test_parallel_jobs_of_a_rule_get_a_lane_each():
    jobs = [
        job(1, "align", "done", 0, 10),
        job(2, "align", "done", 0, 4),
        job(3, "align", "done", 1, 3),
        job(4, "align", "done", 4, 8),  # starts as job 2 ends: takes its lane
        job(5, "align", "done", 11, 12),  # all free again: the first lane
        job(6, "merge", "done", 12, 13),
        job(7, "merge", "pending", None),
    ]
    lanes = timeline.assign_lanes(jobs)
    assert lanes == {"1": 0, "2": 1, "3": 2, "4": 1, "5": 0, "6": 0}
    # As many lanes as jobs ever ran at once, and no two jobs of a lane overlap.
    assert max(v for k, v in lanes.items() if k in "12345") + 1 == 3
    for (_rule, _lane), members in spans_by_lane(jobs, lanes).items():
        members.sort(key=lambda j: j["started_at"])
        for a, b in itertools.pairwise(members):
            assert a["finished_at"] <= b["started_at"]


def test_a_running_job_keeps_its_lane_busy():
    now = datetime.fromtimestamp(T0.timestamp() + 20, UTC)
    jobs = [job(1, "a", "running", 0), job(2, "a", "done", 5, 6)]
    assert timeline.assign_lanes(jobs, now=now) == {"1": 0, "2": 1}


def test_figure_stacks_rules_in_pipeline_order_with_their_lanes():
    jobs = [
        job(1, "count", "done", 5, 6),
        job(2, "make", "done", 0, 2, wildcards={"s": "a"}),
        job(3, "make", "failed", 0, 1),
        job(4, "count", "running", 6),
    ]
    now = datetime.fromtimestamp(T0.timestamp() + 9, UTC)
    fig, state = timeline.build(jobs, ["make", "count"], now=now)
    json.dumps(fig)  # a plain, serialisable figure
    bars = fig["data"][0]
    # Top to bottom: make, make · 2, count (Plotly lists categories bottom-up).
    assert fig["layout"]["yaxis"]["categoryarray"] == ["count", "make · 2", "make"]
    by_job = dict(zip(bars["customdata"], zip(bars["y"], bars["x"], strict=True), strict=True))
    assert by_job["2"] == ("make", 2000) and by_job["3"] == ("make · 2", 1000)
    assert by_job["4"] == ("count", 3000)  # still running: drawn up to now
    colours = dict(zip(bars["customdata"], bars["marker"]["color"], strict=True))
    assert colours["3"] == theme.MANTINE_HEX["red"]
    assert "s=a" in bars["hovertext"][bars["customdata"].index("2")]
    assert [t["name"] for t in fig["data"][1:]] == ["running", "done", "failed"]
    assert fig["layout"]["title"]["text"] == "4 jobs"
    assert state["running"] and set(state["points"]) == {"1", "2", "3", "4"}


def test_live_updates_patch_the_same_figure_the_build_draws():
    """Jobs arriving one update at a time end in the figure a single build draws."""
    first = [job(1, "make", "running", 0), job(2, "make", "running", 0)]
    later = [
        job(1, "make", "done", 0, 3),
        job(2, "make", "not_run", 0, 2),
        job(3, "make", "done", 3, 4),
    ]
    now = datetime.fromtimestamp(T0.timestamp() + 5, UTC)
    fig, state = timeline.build(first, ["make"], now=now)
    state = json.loads(json.dumps(state))  # through the dcc.Store
    timeline.apply_jobs(fig, state, later, now=now)
    whole, _ = timeline.build(later, ["make"], now=now)
    assert fig["data"][0]["y"] == whole["data"][0]["y"]
    assert fig["data"][0]["x"] == whole["data"][0]["x"]
    assert fig["data"][0]["marker"]["color"] == whole["data"][0]["marker"]["color"]
    assert {t["name"] for t in fig["data"][1:]} == {"running", "done", "not run"}
    assert not state["running"]


def test_a_live_update_is_a_patch_not_a_new_figure():
    _fig, state = timeline.build([job(1, "make", "running", 0)], ["make"])
    patch = Patch()
    timeline.apply_jobs(patch, state, [job(1, "make", "done", 0, 2), job(2, "make", "done", 1, 2)])
    ops = patch.to_plotly_json()["operations"]
    paths = {tuple(op["location"]) for op in ops}
    assert ("data", 0, "marker", "color", 0) in paths  # job 1 recoloured in place
    assert ("data", 0, "x") in paths  # job 2 appended (an Append on the array)
    assert ("layout", "yaxis", "categoryarray") in paths  # job 2 needed a second lane
    replaced = {tuple(op["location"]) for op in ops if op["operation"] == "Assign"}
    assert not replaced & {(), ("data",), ("data", 0), ("layout",)}  # nothing redrawn whole


def test_bars_beyond_the_cap_are_counted_not_drawn(monkeypatch):
    monkeypatch.setattr(timeline, "MAX_BARS", 2)
    fig, _state = timeline.build([job(i, "a", "done", i, i + 1) for i in range(5)])
    assert len(fig["data"][0]["x"]) == 2
    assert fig["layout"]["title"]["text"] == "2 jobs (first 2; 3 more not drawn)"


def test_the_legend_names_the_states_drawn_now():
    fig, state = timeline.build([job(1, "make", "running", 0)], ["make"])
    assert [(t["name"], t.get("visible", True)) for t in fig["data"][1:]] == [("running", True)]
    timeline.apply_jobs(fig, state, [job(1, "make", "done", 0, 2)])
    legend = [(t["name"], t.get("visible", True)) for t in fig["data"][1:]]
    assert legend == [("running", False), ("done", True)]  # nothing runs any more
    timeline.apply_jobs(fig, state, [job(2, "make", "running", 3)])
    assert fig["data"][1]["visible"] is True
