"""The REST v1 calls the end-to-end tests make of a gateway, over real HTTP: one place for the
path prefix, the timeout and what "the run has ended" means (the states of snakedeck.states)."""

from __future__ import annotations

from typing import Any, Final

import requests

from snakedeck.states import TERMINAL_RUN_STATES
from tests.support.waiting import wait_for

TERMINAL: Final = frozenset(state.value for state in TERMINAL_RUN_STATES)
"""The terminal run states as the API writes them."""


def api(url: str, method: str, path: str, **kw: Any) -> requests.Response:
    """``method`` on ``{url}/api/v1{path}``."""
    return requests.request(method, f"{url}/api/v1{path}", timeout=60, **kw)


def finished(url: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
    """The run once it has ended (fails the test after ``timeout`` seconds)."""
    wait_for(
        lambda: api(url, "GET", f"/runs/{run_id}").json()["state"] in TERMINAL,
        timeout,
        f"run {run_id} to end",
    )
    return api(url, "GET", f"/runs/{run_id}").json()
