"""A small client of the gateway's REST API and live feed, used by the CLI (and usable from
notebooks and scripts)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import requests

from snakedeck.states import TERMINAL_RUN_STATES

log = logging.getLogger(__name__)


class ClientError(RuntimeError):
    """The gateway answered with an error (its problem-details ``detail`` is the message)."""

    def __init__(self, status: int, title: str, detail: str, errors: list[dict] | None = None):
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        lines = [f"{title} ({status}): {detail}" if detail else f"{title} ({status})"]
        lines += [f"  - {e.get('field', '?')}: {e.get('message', '')}" for e in self.errors]
        super().__init__("\n".join(lines))


class GatewayUnreachable(ClientError):
    pass


class Client:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # -- REST -----------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.session.request(
                method, f"{self.url}/api/v1{path}", timeout=self.timeout, **kwargs
            )
        except requests.ConnectionError:
            raise GatewayUnreachable(
                0,
                "Gateway unreachable",
                f"no snakedeck gateway answers at {self.url} (start one with "
                "`snakedeck standalone`, or pass --url / set SNAKEDECK_URL)",
            ) from None
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {}
            raise ClientError(
                resp.status_code,
                body.get("title") or resp.reason or "Error",
                body.get("detail") or resp.text[:500],
                body.get("errors"),
            )
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def workflows(self) -> list[dict[str, Any]]:
        return self.request("GET", "/workflows")["workflows"]

    def submit(
        self,
        workflow: str,
        config: dict[str, Any] | None = None,
        *,
        inputs: list[str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {"workflow": workflow, "config": config or {}, "tags": tags or {}}
        if inputs:
            body["inputs"] = inputs
        return self.request("POST", "/runs", json=body)

    def runs(self, **params: Any) -> dict[str, Any]:
        return self.request(
            "GET", "/runs", params={k: v for k, v in params.items() if v is not None}
        )

    def iter_runs(self, **params: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = self.runs(**params, page_token=token)
            yield from page["runs"]
            token = page.get("next_page_token")
            if not token:
                return

    def run(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/runs/{run_id}")

    def jobs(self, run_id: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", f"/runs/{run_id}/jobs", params=params)

    def cancel(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", f"/runs/{run_id}/cancel")

    def rerun(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", f"/runs/{run_id}/rerun")

    def events(self, run_id: str, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        body = self.request(
            "GET", f"/runs/{run_id}/events", params={"after_seq": after_seq, "limit": limit}
        )
        return body["events"]

    # -- live -----------------------------------------------------------------------------------
    def follow(
        self,
        run_id: str,
        on_run: Callable[[dict[str, Any]], None],
        on_event: Callable[[dict[str, Any]], None],
        *,
        poll_interval: float = 5.0,
    ) -> dict[str, Any]:
        """Stream a run over Socket.IO until it ends; return the final run document.

        A REST poll every ``poll_interval`` s backs the socket up, so a dropped connection
        delays the display but never hangs the command.
        """
        import socketio

        done = threading.Event()
        last_seq = 0
        lock = threading.Lock()
        sio = socketio.Client(reconnection=True, reconnection_delay=0.5)

        def handle_run(summary: dict[str, Any]) -> None:
            if summary.get("run_id") != run_id:
                return
            on_run(summary)
            if summary.get("state") in TERMINAL_RUN_STATES:
                done.set()

        def handle_event(event: dict[str, Any]) -> None:
            nonlocal last_seq
            if event.get("run_id") != run_id:
                return
            with lock:
                if event["seq"] <= last_seq:
                    return
                last_seq = event["seq"]
            on_event(event)

        sio.on("run", handle_run)
        sio.on("event", handle_event)

        @sio.event
        def connect() -> None:
            sio.emit("subscribe", {"run_id": run_id, "after_seq": last_seq})

        try:
            sio.connect(
                self.url,
                auth={"token": self.token} if self.token else None,
                transports=["websocket", "polling"],
                wait_timeout=10,
            )
        except socketio.exceptions.ConnectionError as exc:
            # The REST poll below still follows the run, only less promptly.
            log.warning("live feed unavailable (%s); polling %s instead", exc, self.url)
        try:
            while not done.wait(poll_interval):
                current = self.run(run_id)
                handle_run(current)
        finally:
            if sio.connected:
                sio.disconnect()
        return self.run(run_id)
