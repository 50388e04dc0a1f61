"""Offset-based windows (what AG Grid's infinite row model asks for) over the service's keyset
pages (what the store serves).

The grid asks for rows ``[start, end)``; the service hands out opaque ``page_token`` s. A small
cache remembers the token that starts each offset already reached, so scrolling down costs one
service call per block, and a jump far down walks forward in pages of up to ``MAX_STEP`` rows.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

MAX_STEP = 500
TTL_SECONDS = 30.0
MAX_ENTRIES = 5000

Fetch = Callable[[int, str | None], dict[str, Any]]
"""``fetch(page_size, page_token)`` → ``{"jobs"|"items": [...], "next_page_token", "total"}``."""


class OffsetCursor:
    def __init__(self, *, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._tokens: OrderedDict[tuple[Any, int], tuple[float, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def _put(self, key: Any, offset: int, token: str | None) -> None:
        with self._lock:
            self._tokens[(key, offset)] = (time.monotonic(), token)
            self._tokens.move_to_end((key, offset))
            while len(self._tokens) > self.max_entries:
                self._tokens.popitem(last=False)

    def _nearest(self, key: Any, start: int) -> tuple[int, str | None]:
        now = time.monotonic()
        best = (0, None)
        with self._lock:
            for (k, offset), (at, token) in self._tokens.items():
                if k == key and best[0] < offset <= start and now - at <= self.ttl:
                    best = (offset, token)
        return best

    def window(
        self, key: Any, start: int, end: int, fetch: Fetch, items: str = "jobs"
    ) -> tuple[list[dict[str, Any]], int]:
        """Rows ``[start, end)`` and the total count, for the listing identified by ``key``."""
        offset, token = self._nearest(key, start)
        total = 0
        while offset < start:
            step = min(MAX_STEP, start - offset)
            page = fetch(step, token)
            total = int(page.get("total") or 0)
            got = len(page[items])
            token = page.get("next_page_token")
            offset += got
            if token is None or got == 0:
                return [], total
            self._put(key, offset, token)
        size = max(1, end - start)
        page = fetch(size, token)
        rows = list(page[items])
        total = int(page.get("total") or 0)
        if page.get("next_page_token"):
            self._put(key, start + len(rows), page["next_page_token"])
        return rows, total
