"""Offset windows over keyset pages (the job grid's infinite row model), with the paging marks
kept per browser tab, and grid sort mapping."""

from __future__ import annotations

import json

from dashboard import paging
from dashboard.pages.run import sort_from_model

ROWS = [{"jobid": str(i)} for i in range(1234)]


def make_fetch(calls: list):
    def fetch(size: int, token: str | None) -> dict:
        start = int(token or 0)
        calls.append((size, start))
        items = ROWS[start : start + size]
        nxt = str(start + size) if start + size < len(ROWS) else None
        return {"jobs": items, "next_page_token": nxt, "total": len(ROWS)}

    return fetch


def test_sequential_blocks_cost_one_call_each():
    calls: list = []
    fetch = make_fetch(calls)
    marks = None
    for start in range(0, 400, 100):
        rows, total, marks = paging.window(marks, "k", start, start + 100, fetch, now=1.0)
        assert [r["jobid"] for r in rows] == [str(i) for i in range(start, start + 100)]
        assert total == 1234
        marks = json.loads(json.dumps(marks))  # what a dcc.Store hands back
    assert calls == [(100, 0), (100, 100), (100, 200), (100, 300)]


def test_a_far_jump_walks_forward_in_big_steps():
    calls: list = []
    rows, total, _ = paging.window(None, "k", 1200, 1300, make_fetch(calls))
    assert [r["jobid"] for r in rows] == [str(i) for i in range(1200, 1234)]
    assert total == 1234
    assert calls == [(500, 0), (500, 500), (200, 1000), (100, 1200)]


def test_marks_belong_to_one_listing():
    calls: list = []
    _, _, marks = paging.window(None, "a", 0, 100, make_fetch(calls), now=1.0)
    paging.window(marks, "b", 100, 200, make_fetch(calls), now=1.0)
    assert calls == [(100, 0), (100, 0), (100, 100)]


def test_two_tabs_do_not_share_marks():
    """Each tab passes its own marks: one tab's scrolling saves the other nothing, and
    changes nothing for it either."""
    calls: list = []
    _, _, first_tab = paging.window(None, "k", 0, 100, make_fetch(calls), now=1.0)
    paging.window(None, "k", 100, 200, make_fetch(calls), now=1.0)  # the second tab
    assert calls == [(100, 0), (100, 0), (100, 100)]
    calls.clear()
    paging.window(first_tab, "k", 100, 200, make_fetch(calls), now=2.0)
    assert calls == [(100, 100)]


def test_old_marks_are_not_trusted():
    calls: list = []
    _, _, marks = paging.window(None, "k", 0, 100, make_fetch(calls), now=1.0)
    calls.clear()
    paging.window(marks, "k", 100, 200, make_fetch(calls), now=1.0 + paging.TTL_SECONDS + 1)
    assert calls == [(100, 0), (100, 100)]  # walked again from the top


def test_marks_stay_bounded():
    marks = paging.fresh("k")
    for i in range(paging.MAX_MARKS + 50):
        paging._mark(marks, i + 1, str(i + 1), now=float(i))
    assert len(marks["marks"]) == paging.MAX_MARKS
    assert "1" not in marks["marks"] and str(paging.MAX_MARKS + 50) in marks["marks"]


def test_sort_model_maps_to_service_sorts():
    assert sort_from_model([]) == "jobid"
    assert sort_from_model([{"colId": "duration", "sort": "desc"}]) == "-duration"
    assert sort_from_model([{"colId": "started_at", "sort": "asc"}]) == "started_at"
    assert sort_from_model([{"colId": "rule", "sort": "asc"}]) == "jobid"
