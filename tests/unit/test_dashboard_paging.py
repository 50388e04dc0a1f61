"""Offset windows over keyset pages (the job grid's infinite row model) and grid sort mapping."""

from __future__ import annotations

from dashboard.pages.run import sort_from_model
from dashboard.paging import OffsetCursor

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
    cursor = OffsetCursor()
    fetch = make_fetch(calls)
    for start in range(0, 400, 100):
        rows, total = cursor.window("k", start, start + 100, fetch)
        assert [r["jobid"] for r in rows] == [str(i) for i in range(start, start + 100)]
        assert total == 1234
    assert calls == [(100, 0), (100, 100), (100, 200), (100, 300)]


def test_a_far_jump_walks_forward_in_big_steps():
    calls: list = []
    rows, total = OffsetCursor().window("k", 1200, 1300, make_fetch(calls))
    assert [r["jobid"] for r in rows] == [str(i) for i in range(1200, 1234)]
    assert total == 1234
    assert calls == [(500, 0), (500, 500), (200, 1000), (100, 1200)]


def test_listings_do_not_share_tokens():
    calls: list = []
    cursor = OffsetCursor()
    cursor.window("a", 0, 100, make_fetch(calls))
    cursor.window("b", 100, 200, make_fetch(calls))
    assert calls == [(100, 0), (100, 0), (100, 100)]


def test_sort_model_maps_to_service_sorts():
    assert sort_from_model([]) == "jobid"
    assert sort_from_model([{"colId": "duration", "sort": "desc"}]) == "-duration"
    assert sort_from_model([{"colId": "started_at", "sort": "asc"}]) == "started_at"
    assert sort_from_model([{"colId": "rule", "sort": "asc"}]) == "jobid"
