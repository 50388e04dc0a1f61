"""Security headers on every answer the Flask app gives: no MIME sniffing, no referrer leaving
the site, no framing by other sites, and a Content-Security-Policy per kind of page.

* The dashboard (Dash): scripts only from the gateway, plus the exact inline scripts Dash
  writes into its page (their hashes come from ``Dash.csp_hashes()``, so no
  ``'unsafe-inline'`` script is allowed); styles may be inline (Mantine and AG Grid set them).
* The API docs (flasgger's Swagger UI): its page configures itself with an inline script.
* Everything else is data (JSON, files, metrics): nothing may run or load.

The base headers go on every answer from :class:`SecurityHeaders`, the outermost WSGI layer,
so answers Flask never sees (Socket.IO's polling transport, a refused ``Host``) get them too,
with the data policy; Flask's own answers get their page's policy in an ``after_request``
hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from flask import Flask, Response, request

BASE: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
DATA_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
DOCS_CSP: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
    "object-src 'none'"
)


def dashboard_csp(script_hashes: list[str]) -> str:
    scripts = " ".join(["'self'", *script_hashes])
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
        "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'; object-src 'none'"
    )


def init_app(app: Flask) -> None:
    hashes: dict[str, str] = {}

    def dashboard_policy() -> str:
        if "csp" not in hashes:
            dash_app: Any = app.extensions.get("snakedeck.dashboard")
            found = list(dash_app.csp_hashes()) if dash_app is not None else []
            hashes["csp"] = dashboard_csp(found)
        return hashes["csp"]

    @app.after_request
    def _page_policy(resp: Response) -> Response:  # BASE: SecurityHeaders, on every answer
        path = request.path
        if path.startswith("/dashboard"):
            csp = dashboard_policy()
        elif path.startswith(("/apidocs", "/flasgger_static")):
            csp = DOCS_CSP
        else:
            csp = DATA_CSP
        resp.headers.setdefault("Content-Security-Policy", csp)
        return resp


class SecurityHeaders:
    """WSGI middleware: the base headers and the data policy on every answer that has none
    (Flask's own answers already carry theirs, per page)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            have = {name.lower() for name, _ in headers}
            extra = [(k, v) for k, v in BASE.items() if k.lower() not in have]
            if "content-security-policy" not in have:
                extra.append(("Content-Security-Policy", DATA_CSP))
            return start_response(status, [*headers, *extra], exc_info)

        return self.app(environ, start)


def wrap(app: Flask) -> None:
    """Put :class:`SecurityHeaders` around everything (call after every other WSGI layer)."""
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
