"""A small client of the gateway's REST API and live feed, used by the CLI (and usable from
notebooks and scripts)."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import requests

from snakedeck.states import TERMINAL_RUN_STATES

log = logging.getLogger(__name__)

EVENTS_PAGE = 1000


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


def segment(value: object) -> str:
    """One path segment, quoted whole: an id such as ``../x`` must name a resource, never climb
    to another route. ``.`` and ``..`` are encoded too, since HTTP clients drop them as dot
    segments; the gateway decodes them back and answers for the id as given."""
    quoted = quote(str(value), safe="")
    if not quoted:
        raise ValueError("an empty path segment would name the collection, not one resource")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


class Client:
    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    # -- REST -----------------------------------------------------------------------------------
    def request(self, method: str, *segments: object, **kwargs: Any) -> Any:
        """``request("GET", "runs", run_id)``: the path is built here from quoted segments, so
        no caller can forget to quote one."""
        path = "/".join(segment(s) for s in segments)
        try:
            resp = self.session.request(
                method, f"{self.url}/api/v1/{path}", timeout=self.timeout, **kwargs
            )
        except requests.ConnectionError:
            raise GatewayUnreachable(
                0,
                "Gateway unreachable",
                f"no snakedeck gateway answers at {self.url} (start one with "
                "`snakedeck standalone`, or pass --url / set SNAKEDECK_URL)",
            ) from None
        _raise_for(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    def workflows(self) -> list[dict[str, Any]]:
        return self.request("GET", "workflows")["workflows"]

    def submit(
        self,
        workflow: str,
        config: dict[str, Any] | None = None,
        *,
        inputs: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        config_file: str | None = None,
    ) -> dict[str, Any]:
        """``inputs``: declared input name → registered file id; ``config_file``: a registered
        config file's id, with ``config`` merged on top of it."""
        body: dict[str, Any] = {"workflow": workflow, "config": config or {}, "tags": tags or {}}
        if inputs:
            body["inputs"] = inputs
        if config_file:
            body["config_file"] = config_file
        return self.request("POST", "runs", json=body)

    def _page(self, collection: str, params: dict[str, Any]) -> dict[str, Any]:
        """One page of a listing; ``None`` parameters are left out."""
        return self.request(
            "GET", collection, params={k: v for k, v in params.items() if v is not None}
        )

    def _every(self, collection: str, key: str, params: dict[str, Any]) -> Iterator[Any]:
        """Every item of a listing, following its opaque page tokens."""
        token = None
        while True:
            page = self._page(collection, {**params, "page_token": token})
            yield from page[key]
            token = page.get("next_page_token")
            if not token:
                return

    def runs(self, **params: Any) -> dict[str, Any]:
        return self._page("runs", params)

    def iter_runs(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._every("runs", "runs", params)

    def run(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", "runs", run_id)

    def jobs(self, run_id: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", "runs", run_id, "jobs", params=params)

    def cancel(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", "runs", run_id, "cancel")

    def rerun(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", "runs", run_id, "rerun")

    def events(
        self, run_id: str, after_seq: int = 0, limit: int = EVENTS_PAGE
    ) -> list[dict[str, Any]]:
        body = self.request(
            "GET", "runs", run_id, "events", params={"after_seq": after_seq, "limit": limit}
        )
        return body["events"]

    # -- the audit trail ------------------------------------------------------------------------
    def audit(self, **params: Any) -> dict[str, Any]:
        """``{entries, next_page_token, total}``, newest first (an admin token)."""
        return self._page("audit", params)

    def iter_audit(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._every("audit", "entries", params)

    # -- dead letters ---------------------------------------------------------------------------
    def dead_letters(self, limit: int = 100) -> dict[str, Any]:
        """``{dead_letters: [...], total}``: the oldest ``limit``, none removed."""
        return self.request("GET", "dead-letters", params={"limit": limit})

    def replay_dead_letters(self, limit: int | None = None) -> int:
        body = {} if limit is None else {"limit": limit}
        return self.request("POST", "dead-letters", "replay", json=body)["replayed"]

    def purge_dead_letters(self) -> int:
        return self.request("DELETE", "dead-letters")["purged"]

    # -- registered files ---------------------------------------------------------------------
    def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        kind: str | None = None,
        tags: dict[str, str] | None = None,
        workflow: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Register a local file (streamed; the server keeps the file name only as a label)."""
        body = MultipartFile(path, _file_fields(kind, tags, workflow), progress)
        return self.request("POST", "files", data=body, headers={"Content-Type": body.content_type})

    def add_url(
        self,
        url: str,
        *,
        name: str | None = None,
        kind: str | None = None,
        tags: dict[str, str] | None = None,
        workflow: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, "tags": tags or {}}
        for key, value in (("name", name), ("kind", kind), ("workflow", workflow)):
            if value:
                body[key] = value
        return self.request("POST", "files", json=body)

    def files(self, **params: Any) -> dict[str, Any]:
        return self._page("files", params)

    def iter_files(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self._every("files", "files", params)

    def file(self, file_id: str) -> dict[str, Any]:
        return self.request("GET", "files", file_id)

    def download(self, file_id: str, sink: IO[bytes]) -> int:
        """Write the file's content into ``sink``; the number of bytes written."""
        try:
            resp = self.session.get(
                f"{self.url}/api/v1/files/{segment(file_id)}/content",
                stream=True,
                timeout=self.timeout,
            )
        except requests.ConnectionError:
            return self.request("GET", "files")  # raises GatewayUnreachable
        with resp:
            _raise_for(resp)
            written = 0
            for chunk in resp.iter_content(256 * 1024):
                sink.write(chunk)
                written += len(chunk)
        return written

    def delete_file(self, file_id: str) -> None:
        self.request("DELETE", "files", file_id)

    # -- run artefacts: logs, outputs, resume ---------------------------------------------------
    def job(self, run_id: str, jobid: str) -> dict[str, Any]:
        return self.request("GET", "runs", run_id, "jobs", jobid)

    def run_log(
        self,
        run_id: str,
        *,
        stream: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        tail: int | None = None,
    ) -> dict[str, Any]:
        """A piece of the run's log (``stream``: a job log) from ``offset``, or its last
        ``tail`` bytes: ``{text, offset, next_offset, size, state, …}``."""
        params: dict[str, Any] = {"offset": offset}
        for key, value in (("stream", stream), ("limit", limit), ("tail", tail)):
            if value is not None:
                params[key] = value
        return self.request("GET", "runs", run_id, "log", params=params)

    def job_log(self, run_id: str, jobid: str, attempt: int | None = None) -> dict[str, Any]:
        params = {} if attempt is None else {"attempt": attempt}
        return self.request("GET", "runs", run_id, "jobs", jobid, "log", params=params)

    def outputs(self, run_id: str) -> dict[str, Any]:
        return self.request("GET", "runs", run_id, "outputs")

    def download_output(self, run_id: str, path: str, sink: IO[bytes]) -> int:
        """Write one stored result into ``sink``; the number of bytes written. ``path`` is
        sent as the server listed it (each of its parts quoted)."""
        parts = [segment(p) for p in path.split("/")]
        url = f"{self.url}/api/v1/runs/{segment(run_id)}/outputs/{'/'.join(parts)}"
        return self._stream_to(url, sink)

    def resume(self, run_id: str) -> dict[str, Any]:
        return self.request("POST", "runs", run_id, "resume")

    def _stream_to(self, url: str, sink: IO[bytes]) -> int:
        try:
            resp = self.session.get(url, stream=True, timeout=self.timeout)
        except requests.ConnectionError:
            return self.request("GET", "workflows")  # raises GatewayUnreachable
        with resp:
            _raise_for(resp)
            written = 0
            for chunk in resp.iter_content(256 * 1024):
                sink.write(chunk)
                written += len(chunk)
        return written

    # -- live -----------------------------------------------------------------------------------
    def follow(
        self,
        run_id: str,
        on_run: Callable[[dict[str, Any]], None],
        on_event: Callable[[dict[str, Any]], None],
        *,
        poll_interval: float = 5.0,
        on_log: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Stream a run over Socket.IO until it ends; return the final run document.

        ``on_event`` sees each event once, in seq order; ``on_run`` each new run summary. The
        callbacks run one at a time, and whatever they raise is raised here, in the caller's
        thread (never logged as a traceback by the socket's thread). A REST poll every
        ``poll_interval`` s backs the socket up and fetches the events it has not delivered, so
        a dropped or refused connection delays the display but never hangs or loses a line.
        """
        import socketio

        done = threading.Event()
        lock = threading.RLock()
        last_seq = 0
        closed = False
        raised: list[BaseException] = []

        def deliver_run(summary: dict[str, Any]) -> None:
            if summary.get("run_id") != run_id:
                return
            on_run(summary)
            if summary.get("state") in TERMINAL_RUN_STATES:
                done.set()

        def deliver_event(event: dict[str, Any]) -> None:
            nonlocal last_seq
            seq = event.get("seq")
            if event.get("run_id") != run_id or not isinstance(seq, int) or seq <= last_seq:
                return
            last_seq = seq
            on_event(event)

        def from_socket(deliver: Callable[[dict[str, Any]], None]) -> Callable[[Any], None]:
            def handle(data: Any) -> None:
                with lock:
                    if closed or raised or not isinstance(data, dict):
                        return
                    try:
                        deliver(data)
                    except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
                        raised.append(exc)
                        done.set()

            return handle

        def catch_up() -> None:
            """Deliver, from the REST API, the events after the last one delivered."""
            while True:
                with lock:
                    after = last_seq
                batch = self.events(run_id, after_seq=after, limit=EVENTS_PAGE)
                with lock:
                    for event in batch:
                        deliver_event(event)
                if len(batch) < EVENTS_PAGE:
                    return

        sio = socketio.Client(reconnection=True, reconnection_delay=0.5)
        sio.on("run", from_socket(deliver_run))
        sio.on("event", from_socket(deliver_event))
        if on_log is not None:
            sio.on("log", from_socket(lambda chunk: on_log(chunk)))

        @sio.event
        def connect() -> None:
            sio.emit("subscribe", {"run_id": run_id, "after_seq": last_seq})

        try:
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
            while not done.wait(poll_interval):
                catch_up()
                current = self.run(run_id)
                with lock:
                    deliver_run(current)
        finally:
            with lock:
                closed = True
            if sio.connected:
                sio.disconnect()
        if raised:
            raise raised[0]
        catch_up()  # the socket may have ended before the run's last events reached us
        return self.run(run_id)


# -- registered files ---------------------------------------------------------------------------
class MultipartFile:
    """A ``multipart/form-data`` body around one local file, read as it is sent (never whole
    in memory), with a known length so the upload is not chunked. ``progress(n)`` is called
    with the bytes of the file sent so far."""

    BLOCK = 256 * 1024

    def __init__(
        self,
        path: str | os.PathLike[str],
        fields: list[tuple[str, str]],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.boundary = f"snakedeck-{uuid.uuid4().hex}"
        self.progress = progress
        head = b"".join(
            f"--{self.boundary}\r\nContent-Disposition: form-data; "
            f'name="{_quoted(name)}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{_quoted(self.path.name)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.file_size = self.path.stat().st_size
        self._parts: Iterator[bytes] = self._generate()
        self._buffer = b""

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self.file_size + len(self._tail)

    def _generate(self) -> Iterator[bytes]:
        yield self._head
        sent = 0
        with self.path.open("rb") as f:
            while block := f.read(self.BLOCK):
                sent += len(block)
                yield block
                if self.progress is not None:
                    self.progress(sent)
        yield self._tail

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._parts)
            except StopIteration:
                break
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self.BLOCK):
            yield chunk


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "").replace("\n", "")


def _file_fields(
    kind: str | None, tags: dict[str, str] | None, workflow: str | None
) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    if kind:
        fields.append(("kind", kind))
    for key, value in (tags or {}).items():
        fields.append(("tags", f"{key}={value}"))
    if workflow:
        fields.append(("workflow", workflow))
    return fields


def _raise_for(resp: requests.Response) -> None:
    """A :class:`ClientError` with the gateway's problem document, for any error answer."""
    if resp.status_code < 400:
        return
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    raise ClientError(
        resp.status_code,
        body.get("title") or resp.reason or "Error",
        body.get("detail") or resp.text[:500],
        body.get("errors"),
    )
