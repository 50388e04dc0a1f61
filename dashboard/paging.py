"""Offset-based windows (what AG Grid's infinite row model asks for) over the service's keyset
pages (what the store serves), with the paging state kept by each browser tab.

The grid asks for rows ``[start, end)``; the service hands out opaque ``next_page_token`` s.
:class:`PageMarks` remembers the token that starts each offset already reached, so scrolling
down costs one service call per block, and a jump far down walks forward in pages of up to
:data:`MAX_STEP` rows. The marks are plain JSON kept in a ``dcc.Store`` of the page: nothing is
shared between users, tabs or server processes, and a new listing (another filter or sort)
starts from fresh marks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final, TypedDict

MAX_STEP: Final = 500
TTL_SECONDS: Final = 30.0
"""A mark older than this is not trusted: jobs of a live run come and go, offsets shift."""
MAX_MARKS: Final = 200

Fetch = Callable[[int, str | None], dict[str, Any]]
"""``fetch(page_size, page_token)`` → ``{"jobs"|"items": [...], "next_page_token", "total"}``."""


class PageMarks(TypedDict):
    listing: str
    """Which listing the marks belong to (filters and sort, as one string)."""
    marks: dict[str, list[Any]]
    """``{offset: [page_token, when]}`` (offsets as strings: JSON object keys)."""


def fresh(listing: str) -> PageMarks:
    return {"listing": listing, "marks": {}}


def _valid(state: Any, listing: str) -> PageMarks:
    if isinstance(state, dict) and state.get("listing") == listing:
        marks = state.get("marks")
        if isinstance(marks, dict):
            return {"listing": listing, "marks": dict(marks)}
    return fresh(listing)


def _nearest(state: PageMarks, start: int, now: float) -> tuple[int, str | None]:
    best: tuple[int, str | None] = (0, None)
    for key, (token, at) in state["marks"].items():
        offset = int(key)
        if best[0] < offset <= start and now - float(at) <= TTL_SECONDS:
            best = (offset, token)
    return best


def _mark(state: PageMarks, offset: int, token: str, now: float) -> None:
    state["marks"][str(offset)] = [token, now]
    if len(state["marks"]) > MAX_MARKS:
        oldest = sorted(state["marks"], key=lambda k: state["marks"][k][1])
        for key in oldest[: len(state["marks"]) - MAX_MARKS]:
            del state["marks"][key]


def window(
    state: Any,
    listing: str,
    start: int,
    end: int,
    fetch: Fetch,
    *,
    items: str = "jobs",
    now: float | None = None,
) -> tuple[list[dict[str, Any]], int, PageMarks]:
    """Rows ``[start, end)``, the listing's total count, and the tab's updated marks."""
    now = time.time() if now is None else now
    marks = _valid(state, listing)
    offset, token = _nearest(marks, start, now)
    total = 0
    while offset < start:
        page = fetch(min(MAX_STEP, start - offset), token)
        total = int(page.get("total") or 0)
        got = len(page[items])
        token = page.get("next_page_token")
        offset += got
        if token is None or got == 0:
            return [], total, marks
        _mark(marks, offset, token, now)
    page = fetch(max(1, end - start), token)
    rows = list(page[items])
    if page.get("next_page_token"):
        _mark(marks, start + len(rows), page["next_page_token"], now)
    return rows, int(page.get("total") or 0), marks
