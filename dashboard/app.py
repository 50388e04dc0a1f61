"""The Dash app, mounted at ``/dashboard/`` on the gateway's Flask server.

:func:`init_dashboard` is what the gateway's ``create_app`` calls. Every callback goes through
the one :class:`~snakedeck.service.Service` the REST API uses; nothing here re-implements a rule.

Pages (each with its own URL): ``/dashboard/`` runs list, ``/dashboard/launch`` launch form,
``/dashboard/files`` registered files, ``/dashboard/runs/<run_id>`` one run. A single
``dash_extensions`` WebSocket in the shell is pointed at the page's live feed;
``assets/snakedeck.js`` buffers its messages and hands them to the page at most a few times a
second, so a burst of events never floods the server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html
from dash_extensions import WebSocket
from flask import Flask
from werkzeug.exceptions import BadRequest

from dashboard import uploads
from dashboard.context import Ctx
from snakedeck.auth import Authenticator, Role
from snakedeck.service import Service
from snakedeck.settings import Settings

PREFIX = "/dashboard/"
ASSETS = Path(__file__).parent / "assets"


class CheckedDash(dash.Dash):
    """Dash, with a callback request that names no callback of this app, or is not shaped like
    one, answered 400 instead of the 500 of the ``KeyError`` Dash meets reading it."""

    def _initialize_context(self, body: Any) -> Any:
        return _checked(super()._initialize_context, body)

    def _prepare_callback(self, g: Any, body: Any) -> Any:
        return _checked(super()._prepare_callback, g, body)


def _checked(step: Callable[..., Any], *args: Any) -> Any:
    try:
        return step(*args)
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        raise BadRequest(f"not a callback request of this dashboard ({exc})") from None


def init_dashboard(
    server: Flask, service: Service, settings: Settings, authenticator: Authenticator
) -> dash.Dash:
    """Mount the dashboard on ``server`` at ``/dashboard/`` and return the Dash app."""
    from dashboard.pages import files, launch, run, runs

    app = CheckedDash(
        __name__,
        server=server,
        url_base_pathname=PREFIX,
        assets_folder=str(ASSETS),
        title="snakedeck",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    ctx = Ctx(service=service, settings=settings, auth=authenticator)
    app.layout = shell(ctx)
    _register_shell(app, ctx)
    runs.register(app, ctx)
    launch.register(app, ctx)
    files.register(app, ctx)
    run.register(app, ctx)
    uploads.allow_upload_bodies(server, PREFIX, settings)
    server.extensions["snakedeck.dashboard"] = app
    return app


def href(path: str = "") -> str:
    return PREFIX + path.lstrip("/")


def header() -> Any:
    """Brand, navigation, the live-feed badge, the token button and the dark switch."""
    nav = dmc.Group(
        [
            dcc.Link(
                dmc.Title("snakedeck", order=3, c="teal"),
                href=href(),
                style={"textDecoration": "none"},
            ),
            dmc.Anchor("Runs", href=href(), id="nav-runs", underline="never"),
            dmc.Anchor("Launch", href=href("launch"), id="nav-launch", underline="never"),
            dmc.Anchor("Files", href=href("files"), id="nav-files", underline="never"),
        ],
        gap="lg",
    )
    tools = dmc.Group(
        [
            # Hidden until the page follows a live feed (assets/snakedeck.js sets it).
            dmc.Tooltip(
                dmc.Badge(
                    "live",
                    id="conn-badge",
                    color="gray",
                    variant="dot",
                    size="lg",
                    style={"display": "none"},
                ),
                id="conn-tip",
                label="Live updates from the server",
                multiline=True,
                w=260,
            ),
            dmc.Button("Token", id="token-open", variant="subtle", size="compact-sm", color="gray"),
            dmc.Switch(
                id="dark-switch",
                label="Dark",
                size="sm",
                persistence=True,
                persistence_type="local",
            ),
        ],
        gap="md",
    )
    return dmc.Group([nav, tools], justify="space-between", h="100%", px="md")


def token_modal(ctx: Ctx) -> Any:
    return dmc.Modal(
        id="token-modal",
        title="API token",
        children=dmc.Stack(
            [
                dmc.Text(
                    "This server requires an API token to start, cancel or rerun runs and to "
                    "follow them live. It is kept in this browser only."
                    if ctx.token_required
                    else "This server does not require a token. Your name is recorded with the "
                    "runs you start.",
                    size="sm",
                ),
                dmc.PasswordInput(id="token-input", label="Token", placeholder="paste the token"),
                dmc.TextInput(id="user-input", label="Your name (optional)", placeholder="ana"),
                dmc.Text(id="token-status", size="sm"),
                dmc.Group(
                    [
                        dmc.Button("Forget", id="token-clear", variant="default"),
                        dmc.Button("Save", id="token-save"),
                    ],
                    justify="flex-end",
                ),
            ]
        ),
    )


def shell(ctx: Ctx) -> Any:
    return dmc.MantineProvider(
        id="mantine",
        forceColorScheme="light",
        theme={"primaryColor": "teal", "defaultRadius": "md"},
        children=[
            dcc.Location(id="url", refresh="callback-nav"),
            dcc.Store(id="token", storage_type="local"),
            dcc.Store(id="user", storage_type="local"),
            dcc.Store(id="token-required", data=ctx.token_required),
            dcc.Store(id="token-sink"),
            dcc.Store(id="feed-path"),
            WebSocket(id="ws"),
            token_modal(ctx),
            dmc.AppShell(
                [
                    dmc.AppShellHeader(header()),
                    dmc.AppShellMain(
                        dmc.Container(html.Div(id="page"), size="xl", px="md", pb="xl")
                    ),
                ],
                header={"height": 56},
                padding="md",
            ),
        ],
    )


def _register_shell(app: dash.Dash, ctx: Ctx) -> None:
    _register_routing(app, ctx)
    _register_feed(app)
    _register_token(app, ctx)


def not_found(pathname: str | None) -> Any:
    return dmc.Alert(
        [dmc.Text(f"There is no page at {pathname}."), dcc.Link("Back to runs", href=href())],
        title="Not found",
        color="yellow",
    )


def _register_routing(app: dash.Dash, ctx: Ctx) -> None:
    from dashboard.pages import files, launch, run, runs

    @app.callback(
        Output("page", "children"),
        Output("feed-path", "data"),
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def route(pathname: str | None, search: str | None) -> tuple[Any, Any]:
        path = (pathname or PREFIX)[len(PREFIX) - 1 :] if pathname else "/"
        parts = [p for p in path.split("/") if p]
        if not parts:
            return runs.layout(ctx), {"path": "/ws/runs", "kind": "runs"}
        if parts == ["launch"]:
            return launch.layout(ctx, search or ""), None
        if parts == ["files"]:
            return files.layout(ctx), None
        if len(parts) == 2 and parts[0] == "runs":
            return run.layout(ctx, parts[1])
        return not_found(pathname), None


def _register_feed(app: dash.Dash) -> None:
    # The WebSocket follows the page: a clientside callback builds the absolute ws:// URL with
    # the stored token, and snakedeck.js reconnects (with after_seq catch-up) on its own.
    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "feed"),
        Output("ws", "url"),
        Input("feed-path", "data"),
        State("token", "data"),
        State("token-required", "data"),
    )
    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "onState"),
        Output("conn-badge", "children"),
        Output("conn-badge", "color"),
        Output("conn-badge", "style"),
        Output("conn-tip", "label"),
        Input("ws", "state"),
        State("token-required", "data"),
    )
    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "theme"),
        Output("mantine", "forceColorScheme"),
        Input("dark-switch", "checked"),
    )

    @app.callback(
        Output("feed-path", "data", allow_duplicate=True),
        Input("token", "data"),
        State("feed-path", "data"),
        prevent_initial_call=True,
    )
    def reconnect_with_new_token(_token: Any, feed: Any) -> Any:
        """A new token: connect again with it."""
        if not feed:
            raise dash.exceptions.PreventUpdate
        return {**feed, "nonce": (feed.get("nonce") or 0) + 1}

    # A page without a feed still says whether the server wants a token this browser lacks.
    app.clientside_callback(
        dash.ClientsideFunction("snakedeck", "tokenChanged"),
        Output("token-sink", "data"),
        Input("token", "data"),
        State("token-required", "data"),
        prevent_initial_call=True,
    )


def _register_token(app: dash.Dash, ctx: Ctx) -> None:
    @app.callback(
        Output("token-modal", "opened"),
        Output("token-input", "value"),
        Output("user-input", "value"),
        Input("token-open", "n_clicks"),
        State("token", "data"),
        State("user", "data"),
        prevent_initial_call=True,
    )
    def open_token(clicks: Any, token: str | None, user: str | None) -> tuple[bool, str, str]:
        if not clicks:
            raise dash.exceptions.PreventUpdate
        return True, token or "", user or ""

    @app.callback(
        Output("token", "data"),
        Output("user", "data"),
        Output("token-status", "children"),
        Output("token-status", "c"),
        Output("token-modal", "opened", allow_duplicate=True),
        Input("token-save", "n_clicks"),
        Input("token-clear", "n_clicks"),
        State("token-input", "value"),
        State("user-input", "value"),
        prevent_initial_call=True,
    )
    def save_token(save: Any, clear: Any, token: str | None, user: str | None) -> tuple:
        if not (save or clear):
            raise dash.exceptions.PreventUpdate
        if dash.ctx.triggered_id == "token-clear":
            return None, None, "Forgotten.", "dimmed", False
        token = (token or "").strip() or None
        user = (user or "").strip()[:128] or None
        if ctx.token_required and not ctx.authorized(token, Role.READ):
            return dash.no_update, dash.no_update, "This token is not valid here.", "red", True
        return token, user, "Saved.", "teal", False
