"""Tests that change this machine's network and tests that drive Chromium never overlap.

Chromium aborts every page load in flight when the machine's network changes
(``net::ERR_NETWORK_CHANGED``, then "DashRenderer is not defined"), and the many-hosts tests
add and remove a bridge, veth links and namespaces. Under pytest-xdist the two ran at once
in CI. A browser test holds a shared lock while it runs; a network change an exclusive one.
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = Path(tempfile.gettempdir()) / "snakedeck-tests-network.lock"


@contextlib.contextmanager
def _held(mode: int) -> Iterator[None]:
    with LOCK_FILE.open("a") as f:
        fcntl.flock(f, mode)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def steady_network() -> contextlib.AbstractContextManager[None]:
    """While a browser test runs: no network change may start."""
    return _held(fcntl.LOCK_SH)


def changing_network() -> contextlib.AbstractContextManager[None]:
    """While namespaces, links or a bridge are made, cut or removed: no browser test runs."""
    return _held(fcntl.LOCK_EX)
