"""The one retry policy: exponential back-off with named limits.

Every loop that waits for the broker or the store to come back (forwarder, consumers, bus
reconnects, drains) holds a :class:`Backoff` instead of its own arithmetic, so every wait in the
system grows and caps the same way and can be read off the one place that sets it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Final

FIRST_DELAY: Final = 0.1
"""Seconds before the first retry: short, since most outages are a dropped connection."""
MAX_DELAY: Final = 5.0
"""The longest wait between two tries: a recovered service is noticed within this."""
FACTOR: Final = 2.0


@dataclass
class Backoff:
    """``delay()`` grows from ``first`` by ``factor`` up to ``cap``; ``reset()`` after a success."""

    first: float = FIRST_DELAY
    cap: float = MAX_DELAY
    factor: float = FACTOR
    failures: int = field(default=0, init=False)
    """Consecutive failures since the last reset (metrics and logs read it)."""

    def delay(self) -> float:
        """The wait before the next try, counting this call as one more failure."""
        self.failures += 1
        return min(self.cap, self.first * self.factor ** (self.failures - 1))

    def reset(self) -> None:
        self.failures = 0

    def wait(self, stop: threading.Event | None = None, *, deadline: float | None = None) -> float:
        """Sleep for the next delay (cut short by ``stop`` or a monotonic ``deadline``); returns
        the seconds it meant to wait."""
        delay = self.delay()
        pause = delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic()))
        if stop is not None:
            stop.wait(pause)
        else:
            time.sleep(pause)
        return delay
