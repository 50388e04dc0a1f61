"""Which hosts the gateway answers to and which web origins may use it: the defences against
DNS rebinding, cross-site writes (CSRF) and cross-site reading of the live feeds, plus CORS for
the origins an operator allows.

* ``Host`` must be one of ``SNAKEDECK_ALLOWED_HOSTS`` (default: the bound address and the
  localhost names, plus this machine's names when bound to every interface). A page on
  ``evil.example`` that rebinds its name to 127.0.0.1 sends ``Host: evil.example``: refused.
  Checked in a WSGI middleware, so it covers everything mounted (Socket.IO included).
* Writes (and both socket kinds) from a browser must come from the gateway's own origin (the
  ``Host`` the request was sent to, already checked above) or one of
  ``SNAKEDECK_ALLOWED_ORIGINS``: ``Origin`` decides, else ``Sec-Fetch-Site``; a request with
  neither is not from a browser and is let through (tokens still apply).
* Writes carry JSON (or, for ``POST /api/v1/files``, ``multipart/form-data``), never the
  form encodings a cross-site ``<form>`` can send without a preflight.
* CORS: a configured origin gets ``Access-Control-Allow-Origin`` on the REST API and its
  preflights answered; tokens travel in ``Authorization``, never cookies, so no credentials
  mode is offered.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final
from urllib.parse import urlsplit

from flask import Flask, Request, Response, request

from gateway.problems import problem

LOCAL_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})
WILDCARD_BINDS: Final = frozenset({"0.0.0.0", "::", ""})
SOCKET_PATHS: Final = ("/socket.io", "/ws/")
WES_PATHS: Final = ("/ga4gh/wes/",)
"""Where a refusal is GA4GH WES's ``ErrorResponse``, not a problem document."""
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_TYPES: Final = ("application/json",)
MULTIPART: Final = "multipart/form-data"
UPLOAD_PATHS: Final = frozenset({"/api/v1/files", "/ga4gh/wes/v1/runs"})
"""Where a write may be ``multipart/form-data`` (the streamed file upload, WES's RunWorkflow)."""
CORS_METHODS: Final = "GET, POST, DELETE, OPTIONS"
CORS_HEADERS: Final = "Authorization, Content-Type, X-Snakedeck-User"
CORS_EXPOSED: Final = "Location, Retry-After, ETag, Content-Disposition"


def host_name(host: str) -> str:
    """``Host`` without its port, lower case; IPv6 brackets removed."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def default_hosts(bound: str) -> frozenset[str]:
    names = set(LOCAL_NAMES)
    if bound in WILDCARD_BINDS:
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()}
        with contextlib.suppress(OSError):
            names |= {str(info[4][0]) for info in socket.getaddrinfo(hostname, None)}
    else:
        names.add(host_name(bound))
    return frozenset(n for n in names if n)


class OriginPolicy:
    """The allowed hosts and origins, and the checks built on them."""

    def __init__(
        self, allowed_origins: Iterable[str], allowed_hosts: Iterable[str], bound_host: str
    ) -> None:
        self.origins = frozenset(o.strip().rstrip("/").lower() for o in allowed_origins if o)
        hosts = [h.strip().lower() for h in allowed_hosts if h.strip()]
        self.any_host = "*" in hosts
        self.hosts = frozenset(host_name(h) for h in hosts) or default_hosts(bound_host)

    def host_allowed(self, host: str | None) -> bool:
        return self.any_host or (bool(host) and host_name(host or "") in self.hosts)

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """The gateway's own origin (the ``Host`` it was sent to) or a configured one."""
        origin = origin.strip().lower()
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host.lower()

    def cross_site(self, headers: Any) -> str | None:
        """Why a browser request must be refused as cross-site, or ``None``."""
        origin = headers.get("Origin")
        host = headers.get("Host")
        if origin:
            if self.origin_allowed(origin, host):
                return None
            shown = origin if len(origin) <= 100 else origin[:100] + "…"
            return (
                f"origin {shown!r} may not do this: only the gateway's own origin and "
                "SNAKEDECK_ALLOWED_ORIGINS may"
            )
        site = (headers.get("Sec-Fetch-Site") or "").lower()
        if site and site not in ("same-origin", "none"):
            return f"a {site} request without an Origin may not do this"
        return None

    def cors_origin(self, headers: Any) -> str | None:
        """The origin to name in ``Access-Control-Allow-Origin``: a configured other one."""
        origin = (headers.get("Origin") or "").strip()
        return origin if origin.lower() in self.origins else None

    def socketio_allows(self, origin: str | None, environ: dict[str, Any]) -> bool:
        """For engineio's ``cors_allowed_origins``: the same rule as for writes."""
        return origin is None or self.origin_allowed(origin, environ.get("HTTP_HOST"))


class HostGuard:
    """WSGI middleware: a ``Host`` not allowed, and a socket from a foreign origin, are refused
    before anything else runs (Socket.IO's handler sits outside Flask)."""

    def __init__(self, app: Callable[..., Any], policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        host = environ.get("HTTP_HOST")
        path = environ.get("PATH_INFO", "")
        if not self.policy.host_allowed(host):
            shown = (host or "")[:100]
            return _wsgi_problem(
                start_response,
                400,
                "Host not allowed",
                f"this gateway does not answer to the host {shown!r} (SNAKEDECK_ALLOWED_HOSTS)",
                wes=path.startswith(WES_PATHS),
            )
        if path.startswith(SOCKET_PATHS):
            headers = {
                "Origin": environ.get("HTTP_ORIGIN"),
                "Host": host,
                "Sec-Fetch-Site": environ.get("HTTP_SEC_FETCH_SITE"),
            }
            reason = self.policy.cross_site(headers)
            if reason is not None:
                return _wsgi_problem(start_response, 403, "Forbidden", reason, slug="cross-site")
        return self.app(environ, start_response)


def _wsgi_problem(
    start_response: Callable[..., Any],
    status: int,
    title: str,
    detail: str,
    slug: str = "",
    *,
    wes: bool = False,
) -> Iterator[bytes]:
    """A problem document; on the WES paths the spec's ``ErrorResponse`` instead."""
    doc: dict[str, Any] = {
        "type": "https://snakedeck.dev/problems/" + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if wes:
        doc = {"msg": detail, "status_code": status}
    body = json.dumps(doc).encode()
    start_response(
        f"{status} {title}",
        [
            ("Content-Type", "application/json" if wes else "application/problem+json"),
            ("Content-Length", str(len(body))),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return iter([body])


def check_write(policy: OriginPolicy, req: Request) -> Response | None:
    """Before every write: from an allowed origin, and JSON (or the upload's multipart)."""
    if req.method in SAFE_METHODS or req.path.startswith("/socket.io"):
        return None
    reason = policy.cross_site(req.headers)
    if reason is not None:
        return problem(403, "Forbidden", reason, slug="cross-site")
    if req.headers.get("Content-Type") is None and not req.content_length:
        return None  # no body at all (a cancel, a rerun)
    mimetype = req.mimetype
    if mimetype in JSON_TYPES or (mimetype == MULTIPART and req.path in UPLOAD_PATHS):
        return None
    wanted = "application/json" + (" or multipart/form-data" if req.path in UPLOAD_PATHS else "")
    return problem(
        415,
        "Unsupported media type",
        f"a write sends {wanted} (got {mimetype or 'a body without a type'})",
        slug="unsupported-media-type",
    )


def preflight(policy: OriginPolicy, req: Request) -> Response | None:
    """Answer a CORS preflight of the REST API."""
    if req.method != "OPTIONS" or "Access-Control-Request-Method" not in req.headers:
        return None
    if not req.path.startswith("/api/"):
        return None
    origin = policy.cors_origin(req.headers)
    if origin is None:
        return problem(
            403,
            "Forbidden",
            "this origin is not one of SNAKEDECK_ALLOWED_ORIGINS",
            slug="cross-site",
        )
    resp = Response(status=204)
    resp.headers.update(
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }
    )
    return resp


def add_cors(policy: OriginPolicy, resp: Response) -> Response:
    if request.path.startswith("/api/"):
        origin = policy.cors_origin(request.headers)
        if origin is not None:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED
        resp.vary.add("Origin")
    return resp


def init_app(app: Flask, policy: OriginPolicy) -> None:
    """Check every write and answer preflights (register before any other hook)."""
    app.extensions["snakedeck.origins"] = policy
    app.before_request(lambda: preflight(policy, request))
    app.before_request(lambda: check_write(policy, request))
    app.after_request(lambda resp: add_cors(policy, resp))


def guard_hosts(app: Flask, policy: OriginPolicy) -> None:
    """Wrap the app, Socket.IO's middleware included, in :class:`HostGuard` (call last)."""
    app.wsgi_app = HostGuard(app.wsgi_app, policy)  # type: ignore[method-assign]
