"""GA4GH WES 1.1 at ``/ga4gh/wes/v1``: a thin blueprint over :mod:`snakedeck.service.wes`.

It reads the request (the multipart form of ``POST /runs``, with its ``workflow_attachment``
files only when ``SNAKEDECK_ALLOW_ATTACHMENTS`` is on and within its limits; the query of the
lists), calls
:class:`~snakedeck.service.wes.Wes` with the caller's :class:`~snakedeck.auth.Principal` (the
same tokens, roles and checks as REST v1), and writes the spec's documents. Every error on these
paths, whichever part of the gateway refused the request (token, origin, rate limit, an unknown
path, a crash), leaves as the spec's ``ErrorResponse`` ``{msg, status_code}`` with one of the
spec's statuses: a refusal of the request's content is 400, a server failure 500.
"""

from __future__ import annotations

from typing import Any, Final

from flask import Blueprint, Flask, Response, current_app, g, json, jsonify, request

from gateway.problems import MEDIA_TYPE
from gateway.wes.document import PREFIX
from snakedeck.bundles import Attachment
from snakedeck.service.wes import (
    FORM_FIELDS,
    BadRequest,
    ErrorResponse,
    Links,
    RunRequestForm,
    Wes,
    page_size,
)
from snakedeck.settings import Settings

blueprint = Blueprint("ga4gh_wes_v1", __name__, url_prefix=PREFIX)
MAX_FIELD_BYTES: Final = 1024 * 1024
"""A text field sent as a file part (some WES clients do) is read up to this size."""
KEPT: Final = frozenset({400, 401, 403, 404, 405, 429})
DOCUMENT_ROUTE: Final = "/apidocs/ga4gh-wes-1.1.0.json"
"""Where the WES document is served (beside REST v1's, open like it), for /apidocs."""


def wes() -> Wes:
    root = request.host_url.rstrip("/")
    return Wes(current_app.extensions["snakedeck.service"], Links(root=root))


def answer(doc: Any) -> Response:
    return jsonify(doc.out())


@blueprint.get("/service-info")
def service_info() -> Response:
    return answer(wes().service_info())


@blueprint.get("/runs")
def list_runs() -> Response:
    args = request.args
    return answer(
        wes().list_runs(
            page_size=page_size(args.get("page_size")),
            page_token=args.get("page_token"),
            state=args.get("state"),
            tag=args.get("tag"),
        )
    )


@blueprint.post("/runs")
def run_workflow() -> Response:
    current_app.extensions["snakedeck.rates"].hit("submit", g.snakedeck_principal)
    settings: Settings = current_app.extensions["snakedeck.settings"]
    if settings.allow_attachments:  # room for the bundle beside the text fields
        body_cap = int(current_app.config["MAX_CONTENT_LENGTH"])  # the app's, for any body
        request.max_content_length = body_cap + settings.attachment_max_bytes
    return answer(wes().submit(read_form(settings), by=g.snakedeck_principal))


@blueprint.get("/runs/<run_id>")
def get_run_log(run_id: str) -> Response:
    return answer(wes().run_log(run_id))


@blueprint.get("/runs/<run_id>/status")
def get_run_status(run_id: str) -> Response:
    return answer(wes().status(run_id))


@blueprint.get("/runs/<run_id>/tasks")
def list_tasks(run_id: str) -> Response:
    args = request.args
    return answer(
        wes().tasks(
            run_id, page_size=page_size(args.get("page_size")), page_token=args.get("page_token")
        )
    )


@blueprint.get("/runs/<run_id>/tasks/<task_id>")
def get_task(run_id: str, task_id: str) -> Response:
    return answer(wes().task(run_id, task_id))


@blueprint.post("/runs/<run_id>/cancel")
def cancel_run(run_id: str) -> Response:
    return answer(wes().cancel(run_id, by=g.snakedeck_principal))


def read_form(settings: Settings | None = None) -> RunRequestForm:
    """The multipart form's fields. Attachments are counted; only when the server allows
    them are their files read, each by its part's filename, and never more than the
    configured total size (one byte more tells that the bundle is too large)."""
    form = RunRequestForm()
    if request.content_length and request.mimetype != "multipart/form-data":
        raise BadRequest(
            f"RunWorkflow takes multipart/form-data (got {request.mimetype or 'no type'})"
        )
    parts: list[tuple[str, list[str | None]]] = [
        (name, list(values)) for name, values in request.form.lists()
    ]
    allowed = settings is not None and settings.allow_attachments
    for name, files in request.files.lists():
        if name == "workflow_attachment":
            form.attachments += len(files)
            if allowed:
                assert settings is not None
                form.files += _read_attachments(files, settings)
            continue
        parts.append((name, [_file_text(name, f) if name in FORM_FIELDS else None for f in files]))
    for name, values in parts:
        if name == "workflow_attachment":
            form.attachments += len(values)
        elif name not in FORM_FIELDS:
            form.unknown.append(name)
        elif name in form.fields or len(values) > 1:
            form.repeated.append(name)
        else:
            form.fields[name] = values[0] or ""
    return form


def _read_attachments(files: list[Any], settings: Settings) -> list[Attachment]:
    """The attachment parts with a filename, within the total size and file count."""
    if len(files) > settings.attachment_max_files:
        raise BadRequest(
            f"workflow_attachment: {len(files)} files given; this server takes at most "
            f"{settings.attachment_max_files} (SNAKEDECK_ATTACHMENT_MAX_FILES)"
        )
    left = settings.attachment_max_bytes
    read: list[Attachment] = []
    for part in files:
        if part.filename is None or part.filename == "":
            continue  # counted, not read: refused for want of a filename
        data = part.stream.read(left + 1)
        left -= len(data)
        if left < 0:
            raise BadRequest(
                "workflow_attachment: the files hold more than "
                f"{settings.attachment_max_bytes} bytes, the most this server takes "
                "(SNAKEDECK_ATTACHMENT_MAX_BYTES)"
            )
        read.append(Attachment(name=part.filename, data=data))
    return read


def _file_text(name: str, part: Any) -> str:
    data = part.stream.read(MAX_FIELD_BYTES + 1)
    if len(data) > MAX_FIELD_BYTES:
        raise BadRequest(f"{name} is larger than {MAX_FIELD_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"{name} is not UTF-8 text") from None


def wes_status(status: int) -> int:
    """One of the spec's statuses: content refusals (409, 413, 415, 422…) are 400."""
    if status >= 500:
        return 500
    return status if status in KEPT else 400


def as_error_response(resp: Response) -> Response:
    """After every request on the WES paths: a problem document becomes an ErrorResponse."""
    if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
        return resp
    if resp.status_code < 400 or resp.mimetype not in (MEDIA_TYPE, "application/json"):
        return resp
    try:
        body = json.loads(resp.get_data())
    except ValueError:
        body = {}
    if isinstance(body, dict) and {"msg", "status_code"} <= body.keys():
        return resp
    status = wes_status(resp.status_code)
    msg = body.get("detail") if isinstance(body, dict) else None
    doc = ErrorResponse(msg=str(msg or resp.status), status_code=status).out()
    resp.set_data(json.dumps(doc))
    resp.status_code = status
    resp.mimetype = "application/json"
    return resp


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
    app.after_request(as_error_response)
