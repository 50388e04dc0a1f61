"""Polling for a condition in tests that watch real processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(pred: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Return ``pred()``'s first truthy value; fail the test naming ``what`` if none comes.

    The timeout only bounds a hung test: nothing here asserts on speed.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)
