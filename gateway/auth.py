"""Tokens over HTTP: where a request carries its token, who it makes the caller, and the 401 it
gets without a good one.

What each role may do is decided in :mod:`snakedeck.auth` and :class:`snakedeck.service.Service`;
this module reads the token from a request (``Authorization: Bearer``; ``Basic`` with the token
as password, which is what a browser sends after the dashboard's login prompt; ``?token=`` for
plain WebSockets, which browsers cannot give headers), turns it into a
:class:`~snakedeck.auth.Principal` (kept in ``g.snakedeck_principal`` for the views), and turns a
refusal into a problem document.

Which paths need a token when tokens are configured: the REST API, GA4GH WES, ``/metrics``,
the dashboard and both live feeds. The probes (``/healthz``, ``/readyz``) and the API documents
stay open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from flask import Flask, Request, Response, g, request

from gateway.problems import problem
from snakedeck.auth import Authenticator, AuthError, AuthUnavailable, Principal

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
USER_HEADER: Final = "X-Snakedeck-User"
"""A display name; it names the caller only when no token is configured (then everyone is an
administrator and the name is a label, never an identity)."""
PROTECTED: Final = ("/api/", "/ga4gh/", "/metrics", "/dashboard/", "/dashboard", "/ws/")
"""Path prefixes that need a token (a ``read`` one at least) when tokens are configured."""
DASHBOARD: Final = "/dashboard"


def bearer(req: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or the password of ``Basic``."""
    header = req.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic":
        auth = req.authorization
        if auth is not None and auth.password:
            return auth.password
    return None


def socketio_token(auth: object) -> str | None:
    """The token a Socket.IO client sent in its ``auth`` payload."""
    if isinstance(auth, Mapping):
        token = auth.get("token")
        return token if isinstance(token, str) else None
    return None


def client_address(req: Request) -> str | None:
    return req.remote_addr


class HttpAuth:
    """The gateway's token checks, for every protected path and both live feeds."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    @property
    def enabled(self) -> bool:
        return self.authenticator.enabled

    def principal(self, req: Request, token: str | None = None) -> Principal:
        """Who the request is from; raises :class:`AuthError` (401) or :class:`AuthUnavailable`
        (503). A read without a token is anonymous when reads are public; a write never is."""
        token = token if token is not None else bearer(req)
        label = req.headers.get(USER_HEADER)
        if req.method in WRITE_METHODS and not req.path.startswith(DASHBOARD):
            found = self.authenticator.authenticate(token, label=label)
        else:
            found = self.authenticator.reader(token, label=label)
        return found.at(client_address(req))

    def guard(self, req: Request) -> Response | None:
        """Before any protected path: a problem when the caller is not let in, else ``None``
        (with the principal kept in ``g.snakedeck_principal``)."""
        if not req.path.startswith(PROTECTED) or req.method == "OPTIONS":
            return None
        token = bearer(req)
        if req.path.startswith("/ws/"):
            token = req.args.get("token") or token
        try:
            g.snakedeck_principal = self.principal(req, token)
        except AuthError as exc:
            return unauthorized(str(exc), browser=req.path.startswith(DASHBOARD))
        except AuthUnavailable as exc:
            return problem(503, "Service unavailable", str(exc), slug="unavailable")
        return None

    def socket_principal(self, token: str | None, source: str | None) -> Principal:
        """Who a Socket.IO connection is from (raises :class:`AuthError`)."""
        try:
            return self.authenticator.reader(token).at(source)
        except AuthUnavailable as exc:
            raise AuthError(str(exc)) from None


def unauthorized(detail: str, *, browser: bool = False) -> Response:
    """401; on the dashboard the challenge also names Basic, so a browser asks for the token
    (any user name, the token as password) and sends it with every request after."""
    challenge = 'Bearer realm="snakedeck"'
    if browser:
        challenge += ', Basic realm="snakedeck", charset="UTF-8"'
        detail += " (in the browser's sign-in prompt: any user name, the token as password)"
    return problem(
        401, "Unauthorized", detail, slug="unauthorized", headers={"WWW-Authenticate": challenge}
    )


def init_app(app: Flask, auth: HttpAuth) -> None:
    app.before_request(lambda: auth.guard(request))
