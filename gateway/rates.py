"""Rate limits per token: submissions and file registrations, counted in a moving window.

Counted in memory, so the limits hold **per gateway process** (several gateways behind a load
balancer each allow the full rate). Keyed by the principal's name: every holder of one token
shares its budget. Beyond the limit: 429 with ``Retry-After``, a problem document like any
other refusal. Built on ``limits``, the library behind Flask-Limiter, used directly so the 429
is the gateway's own problem document.
"""

from __future__ import annotations

import math
import time
from typing import Final

from limits import RateLimitItem, parse, storage, strategies

from snakedeck.auth import Principal
from snakedeck.service import ServiceError

OFF: Final = "off"


class TooManyRequests(ServiceError):
    status, title, slug = 429, "Too many requests", "too-many-requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RateLimits:
    def __init__(self, rules: dict[str, str]) -> None:
        """``rules``: kind (``submit``, ``upload``) → ``N/minute`` etc., or ``off``."""
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._items: dict[str, tuple[str, RateLimitItem]] = {
            kind: (text, parse(text)) for kind, text in rules.items() if text.strip() != OFF
        }

    def hit(self, kind: str, principal: Principal) -> None:
        """Count one ``kind`` request of ``principal``; :class:`TooManyRequests` past the limit."""
        found = self._items.get(kind)
        if found is None:
            return
        text, item = found
        key = principal.name
        if self._limiter.hit(item, kind, key):
            return
        stats = self._limiter.get_window_stats(item, kind, key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(
            f"token {principal.name!r} may {kind} at most {text.strip()} (on this gateway); "
            f"retry in {wait} s",
            wait,
        )
