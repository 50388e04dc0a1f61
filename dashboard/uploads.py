"""Files uploaded from the browser (the Files page, and the launch form's pickers).

``dcc.Upload`` reads the whole file in the browser and hands the callback a base64 data URL: the
file is held in memory twice over, in the browser and in the server's callback. So the dashboard
takes files up to :func:`upload_limit`: ``SNAKEDECK_MAX_UPLOAD``, but at most
:data:`BROWSER_UPLOAD_CAP` (100 MB). Larger files go through ``snakedeck files upload`` or
``POST /api/v1/files``, which stream any size up to ``SNAKEDECK_MAX_UPLOAD``.

The limit is kept in three places, so a file too large is refused with a message before its
bytes travel: ``dcc.Upload(max_size=…)`` drops it in the browser, ``assets/snakedeck.js`` says
why (the drop zone carries the limit and the message), and the server refuses a body that
claims more (:func:`allow_upload_bodies`, :func:`register_upload`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

import dash_mantine_components as dmc
from dash import dcc, html
from flask import Flask, g, request

from dashboard.context import Ctx
from dashboard.formatting import format_size
from snakedeck.auth import Principal, Role
from snakedeck.documents import FileDoc
from snakedeck.service import Invalid, TooLarge
from snakedeck.settings import Settings

BROWSER_UPLOAD_CAP: Final = 100 * 1000 * 1000
CALLBACK_OVERHEAD: Final = 1024 * 1024
"""Room in a callback request for everything beside the file (the form's other values)."""
DECODE_CHUNK: Final = 1024 * 1024
"""Base64 characters decoded at a time (a multiple of 4)."""
DASH_CALLBACK_PATH: Final = "_dash-update-component"


def upload_limit(settings: Settings) -> int:
    return min(settings.max_upload, BROWSER_UPLOAD_CAP)


def too_large_text(limit: int) -> str:
    return (
        f"larger than the dashboard's upload limit of {format_size(limit)}. Upload it with "
        "`snakedeck files upload` or POST /api/v1/files (streamed, up to SNAKEDECK_MAX_UPLOAD), "
        "then pick it here."
    )


def encoded_size(size: int) -> int:
    """Characters of the base64 form of ``size`` bytes."""
    return 4 * ((size + 2) // 3)


def allow_upload_bodies(server: Flask, prefix: str, settings: Settings) -> None:
    """Let a dashboard callback request carry one file up to :func:`upload_limit` (the app's
    request limit is smaller); every other request keeps the app's limit."""
    path = prefix + DASH_CALLBACK_PATH
    room = encoded_size(upload_limit(settings)) + CALLBACK_OVERHEAD

    @server.before_request
    def _room_for_dashboard_uploads() -> None:
        # Only for someone who may upload (the gateway's guard ran first and named them): an
        # anonymous reader's callback keeps the app's small limit.
        principal: Principal | None = g.get("snakedeck_principal")
        if principal is None or not principal.may(Role.SUBMIT):
            return
        if request.path == path and room > (server.config.get("MAX_CONTENT_LENGTH") or 0):
            request.max_content_length = room


def _body(contents: str) -> str:
    head, sep, body = contents.partition(",")
    if not sep or not head.startswith("data:") or not head.endswith(";base64"):
        raise Invalid(
            "file: the browser sent no readable file content",
            [{"field": "file", "message": "no readable content"}],
        )
    return body


def decoded_size(body: str) -> int:
    return len(body) // 4 * 3 - body[-2:].count("=")


def content_chunks(body: str) -> Iterator[bytes]:
    """The file's bytes, decoded a chunk at a time (no second copy of the whole file)."""
    for start in range(0, len(body), DECODE_CHUNK):
        try:
            yield base64.b64decode(body[start : start + DECODE_CHUNK], validate=True)
        except binascii.Error:
            raise Invalid(
                "file: the browser sent content that is not base64",
                [{"field": "file", "message": "not base64"}],
            ) from None


def register_upload(
    ctx: Ctx,
    contents: str,
    filename: str | None,
    *,
    by: Principal,
    kind: str | None = None,
    workflow: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> FileDoc:
    """Register a dropped file through the service (name, kind and content checked there);
    raises the service's errors."""
    name = ctx.service.check_file_name(filename or "")
    body = _body(contents or "")
    limit = upload_limit(ctx.settings)
    if decoded_size(body) > limit:
        raise TooLarge(
            f"file: {name!r} is {too_large_text(limit)}",
            [{"field": "file", "message": f"larger than {limit} bytes"}],
        )
    blob = ctx.service.put_content(content_chunks(body), by=by)
    return ctx.service.register_file(
        blob, by=by, name=name, kind=kind, tags=tags, workflow=workflow
    )


def drop_zone(
    upload_id: Any, note_id: Any, limit: int, children: Any, *, compact: bool = False
) -> Any:
    """A ``dcc.Upload`` (drop a file, or click to choose one) that refuses files over
    ``limit`` in the browser; ``note_id`` names the text that says so (assets/snakedeck.js)."""
    return html.Div(
        dcc.Upload(
            id=upload_id,
            children=children,
            max_size=limit,
            multiple=False,
            className="sd-drop sd-drop-compact" if compact else "sd-drop",
            className_active="sd-drop-active",
            className_reject="sd-drop-reject",
        ),
        className="sd-upload",
        **{
            "data-max-bytes": str(limit),
            "data-note": json.dumps(note_id),
            "data-too-large": too_large_text(limit),
        },
    )


def drop_hint(limit: int) -> Any:
    return dmc.Stack(
        [
            dmc.Text("Drop a file here, or click to choose one", fw=600, size="sm"),
            dmc.Text(
                f"FASTA, FASTQ, sample sheets (CSV, TSV, XLSX), config files (YAML, JSON)… "
                f"up to {format_size(limit)} from the browser",
                size="xs",
                c="dimmed",
            ),
        ],
        gap=2,
        align="center",
    )
