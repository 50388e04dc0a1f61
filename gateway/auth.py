"""API tokens (SNAKEDECK_API_TOKENS).

When tokens are configured, every write (POST/PUT/PATCH/DELETE) and every live-feed connection
needs one. Reads of the REST API stay open: run listings, logs and events carry no secrets the
dashboard viewer may not see, and an open read side lets monitoring and the dashboard work without
distributing tokens. With no tokens configured (the default, bound to 127.0.0.1) nothing is checked.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from flask import Request, Response

from gateway.problems import problem

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class TokenCheck:
    """Compares presented tokens against the configured ones in constant time."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = tuple(t for t in tokens if t)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def accepts(self, token: str | None) -> bool:
        if not self.enabled:
            return True
        if not token:
            return False
        presented = token.encode()
        # Compare against every token (no early exit) so timing does not reveal which matched.
        return any([hmac.compare_digest(presented, t.encode()) for t in self.tokens])

    # -- HTTP -----------------------------------------------------------------------------------
    @staticmethod
    def bearer(req: Request) -> str | None:
        header = req.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None

    def check_write(self, req: Request) -> Response | None:
        """A problem response when a write lacks a valid token, else ``None``."""
        if not self.enabled or req.method not in WRITE_METHODS:
            return None
        return self._refusal(self.bearer(req))

    def check_socket(self, req: Request) -> Response | None:
        """Plain WebSockets pass the token as ``?token=`` (browsers cannot set headers)."""
        if not self.enabled:
            return None
        return self._refusal(req.args.get("token") or self.bearer(req))

    def socketio_token(self, auth: object) -> str | None:
        if isinstance(auth, Mapping):
            token = auth.get("token")
            return token if isinstance(token, str) else None
        return None

    def _refusal(self, token: str | None) -> Response | None:
        if self.accepts(token):
            return None
        detail = (
            "this server requires an API token: send 'Authorization: Bearer <token>'"
            if not token
            else "the API token is not valid"
        )
        return problem(
            401,
            "Unauthorized",
            detail,
            slug="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="snakedeck"'},
        )
