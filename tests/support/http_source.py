"""A local HTTP server standing in for a remote site a file is fetched from: fixed files,
redirects, a server that stalls, one that sends more than it should."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HttpSource:
    """``HttpSource({"/ref.fa": b"..."}).start()``; ``url("/ref.fa")``; ``stop()``.

    Built-in paths: ``/redirect/<n>`` (n redirects, then ``/ref.fa``-like ``/files/...``),
    ``/loop`` (redirects forever), ``/stall`` (headers, then nothing), ``/drip`` (a byte a
    second), ``/endless`` (no Content-Length, bytes until the client gives up),
    ``/huge`` (claims a huge Content-Length)."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})
        self.requests: list[str] = []
        self._stop = threading.Event()
        source = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                source.requests.append(self.path)
                source._serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def start(self) -> HttpSource:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path
        try:
            if path in self.files:
                body = self.files[path]
                h.send_response(200)
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
            elif path.startswith("/redirect/"):
                n = int(path.rsplit("/", 1)[1])
                target = f"/redirect/{n - 1}" if n > 1 else next(iter(self.files))
                self._redirect(h, target)
            elif path == "/loop":
                self._redirect(h, "/loop")
            elif path in ("/stall", "/drip", "/endless"):
                h.send_response(200)
                h.end_headers()
                while not self._stop.is_set():
                    if path == "/endless":
                        h.wfile.write(b"A" * 65536)
                    elif path == "/drip":
                        h.wfile.write(b"A")
                        h.wfile.flush()
                        time.sleep(0.5)
                    else:
                        time.sleep(0.2)
            elif path == "/huge":
                h.send_response(200)
                h.send_header("Content-Length", str(10**12))
                h.end_headers()
                h.wfile.write(b"A" * 1024)
            else:
                h.send_error(404)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _redirect(h: BaseHTTPRequestHandler, target: str) -> None:
        h.send_response(302)
        h.send_header("Location", target)
        h.send_header("Content-Length", "0")
        h.end_headers()
