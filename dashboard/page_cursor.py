"""Newer/Older paging over the service's keyset pages, for the plain tables (runs, files).

The service hands out an opaque ``next_page_token`` per page; a :class:`Cursor` (kept in a
``dcc.Store`` of the page, so per browser tab) remembers the token that starts each page already
visited, so "← Newer" goes back without the service having to page backwards.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Cursor(TypedDict):
    tokens: list[str | None]
    """The page token of every page visited so far (the first page's is ``None``)."""
    index: int
    """Which of them is shown."""


def first() -> Cursor:
    return {"tokens": [None], "index": 0}


def valid(cursor: Any) -> Cursor:
    if isinstance(cursor, dict) and isinstance(cursor.get("tokens"), list) and cursor["tokens"]:
        index = cursor.get("index")
        if isinstance(index, int) and 0 <= index < len(cursor["tokens"]):
            return {"tokens": list(cursor["tokens"]), "index": index}
    return first()


def token(cursor: Any) -> str | None:
    """The page token of the page to show."""
    c = valid(cursor)
    return c["tokens"][c["index"]]


def moved(cursor: Any, step: str, next_token: str | None) -> Cursor | None:
    """The cursor after ``step`` (``"prev"``, ``"next"``, or anything else: a filter changed,
    back to the first page); ``None`` when there is nowhere to go."""
    c = valid(cursor)
    if step == "prev":
        return {**c, "index": c["index"] - 1} if c["index"] > 0 else None
    if step == "next":
        if not next_token:
            return None
        return {"tokens": [*c["tokens"][: c["index"] + 1], next_token], "index": c["index"] + 1}
    return first()


def count_text(cursor: Any, page_size: int, shown: int, total: int, noun: str) -> str:
    """``26-50 of 73 runs``; ``0 runs`` for an empty page."""
    if not shown:
        return f"0 {noun}"
    start = valid(cursor)["index"] * page_size
    return f"{start + 1}-{start + shown} of {total} {noun}"
