"""What every page's callbacks share: the service, the settings, the token check, and the one
way a callback that changes something is registered (:func:`write_callback`).

Kept apart from :mod:`dashboard.app` so pages can name the type without importing the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dash
import flask
from dash import State

from snakedeck.auth import Authenticator, AuthError, AuthUnavailable, Principal, Role
from snakedeck.service import Service
from snakedeck.settings import Settings

TOKEN_NEEDED = (
    "This server requires an API token for this: click “Token” at the top right and paste yours."
)
ROLE_TOO_LOW = "Your API token may only read here; starting, cancelling or rerunning needs more."


@dataclass(frozen=True)
class Ctx:
    """The service, settings and authenticator every page's callbacks need."""

    service: Service
    settings: Settings
    auth: Authenticator

    def authorized(self, token: str | None, role: Role = Role.SUBMIT) -> bool:
        return self.auth.accepts(token or request_token(token), role)

    def principal(self, token: str | None, label: str | None = None) -> Principal | None:
        """Who a write callback acts for: the token saved in this browser, else the one the
        browser signed in with (the gateway's prompt); ``None`` when neither is valid."""
        try:
            found = self.auth.authenticate(request_token(token), label=label)
        except (AuthError, AuthUnavailable):
            return None
        return found.at(flask.request.remote_addr if flask.has_request_context() else None)

    @property
    def token_required(self) -> bool:
        return self.auth.enabled

    def refusal(self, token: str | None, role: Role = Role.SUBMIT) -> str | None:
        """Why ``token`` may not do a ``role`` write, or ``None`` when it may."""
        found = self.principal(token)
        if found is None:
            return TOKEN_NEEDED
        return None if found.may(role) else ROLE_TOO_LOW


def request_token(stored: str | None) -> str | None:
    """``stored`` (the dashboard's token field), else the password of the ``Basic`` sign-in
    the browser sends with each request once the gateway asked for it."""
    if stored:
        return stored
    if not flask.has_request_context():
        return None
    auth = flask.request.authorization
    if auth is not None and auth.type == "basic" and auth.password:
        return auth.password
    return None


WriteFn = Callable[..., Any]
"""``fn(by, *values)``: a write callback's body, called with the caller's
:class:`~snakedeck.auth.Principal` first, then the callback's own Input and State values in
order."""


def clicked() -> bool:
    """Whether a real input change fired this callback (a button mounting sends ``None``)."""
    return any(t.get("value") for t in dash.ctx.triggered or [])


def write_callback(
    app: dash.Dash,
    ctx: Ctx,
    *dependencies: Any,
    denied: Callable[..., Any],
    role: Role = Role.SUBMIT,
    **options: Any,
) -> Callable[[WriteFn], WriteFn]:
    """Register a callback that starts, cancels or reruns something: the token is checked here,
    once, for every such callback.

    ``dependencies`` are the callback's Outputs, Inputs and States as for ``app.callback``; the
    stored token and user are appended as States. A call not caused by a click is ignored;
    without the right token the callback answers ``denied(message, *values)`` (its own Input
    and State values, e.g. to size a wildcard output) and the body never runs.
    """

    def register(fn: WriteFn) -> WriteFn:
        def callback(*values: Any) -> Any:
            *own, token, user = values
            if not clicked():
                raise dash.exceptions.PreventUpdate
            message = ctx.refusal(token, role)
            by = ctx.principal(token, user)
            if message is not None or by is None:
                return denied(message or TOKEN_NEEDED, *own)
            return fn(by, *own)

        callback.__name__ = fn.__name__
        callback.__doc__ = fn.__doc__
        app.callback(
            *dependencies,
            State("token", "data"),
            State("user", "data"),
            prevent_initial_call=True,
            **options,
        )(callback)
        return fn

    return register
