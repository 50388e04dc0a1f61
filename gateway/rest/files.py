"""Registered files: upload (streamed multipart) or fetch from a URL, list, read, download,
delete."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final
from urllib.parse import quote

from flask import Response, current_app, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from gateway import schemas as s
from gateway.openapi import UnsupportedMediaType, validated_body
from gateway.rest import answer, api, principal, service
from gateway.uploads import MalformedUpload, MultipartUpload
from snakedeck.service import Invalid, TooLarge
from snakedeck.settings import Settings

DOWNLOAD_CHUNK: Final = 256 * 1024
FORM_OVERHEAD: Final = 1024 * 1024
"""Room for the multipart framing and fields beyond the file itself."""


@api.operation(
    "POST",
    "/files",
    summary="Register a file: a multipart upload, or a URL the server fetches",
    tag="files",
    bodies={"multipart/form-data": s.FILE_UPLOAD, "application/json": s.FileFromUrl},
    responses={201: s.File},
    problems=(413,),
    rate="upload",
)
def create_file() -> Response:
    """Multipart: part `file` (streamed; at most `SNAKEDECK_MAX_UPLOAD` bytes, else 413), optional
    parts `kind`, `tags`, `workflow`. JSON: `{url, name?, kind?, tags?, workflow?}`; the server
    fetches http/https URLs (bounded in time, size and redirects; private addresses refused).
    Tables (CSV, TSV, XLSX) are parsed: the answer shows columns, row count and a preview."""
    service().authorize_upload(principal())
    if request.mimetype == "multipart/form-data":
        doc = _upload()
    elif request.is_json:
        body = validated_body(s.FileFromUrl)
        doc = service().register_url(
            body.url,
            name=body.name,
            kind=body.kind,
            tags=body.tags,
            workflow=body.workflow,
            by=principal(),
        )
    else:
        raise UnsupportedMediaType(
            'send the file as multipart/form-data (part `file`), or JSON {"url": ...} '
            f"(got {request.mimetype or 'nothing'})"
        )
    return answer(doc, 201, Location=url_for(".get_file", file_id=doc["file_id"]))


def _upload() -> dict[str, Any]:
    settings: Settings = current_app.extensions["snakedeck.settings"]
    svc = service()
    boundary = request.mimetype_params.get("boundary")
    if not boundary:
        raise MalformedUpload("the multipart/form-data Content-Type names no boundary")
    request.max_content_length = settings.max_upload + FORM_OVERHEAD
    try:
        upload = MultipartUpload(request.stream, boundary)
        filename = upload.next_file("file")
        if filename is None:
            raise Invalid(
                "the form has no file part: send the file as part `file`",
                [{"field": "file", "message": "missing"}],
            )
        name = svc.check_file_name(filename)
        blob = svc.put_content(upload.chunks(), by=principal())
    except RequestEntityTooLarge:
        raise TooLarge(
            f"file: the upload is larger than the limit of {settings.max_upload} bytes "
            "(SNAKEDECK_MAX_UPLOAD)",
            [{"field": "file", "message": f"larger than {settings.max_upload} bytes"}],
        ) from None
    try:
        upload.finish()
        fields = upload.fields
        kind = _one(fields, "kind")
        workflow = _one(fields, "workflow")
        tags = _tags(fields.get("tags", []))
    except BaseException:
        svc.discard_content(blob)
        raise
    return svc.register_file(  # type: ignore[return-value]
        blob, by=principal(), name=name, kind=kind, tags=tags, workflow=workflow
    )


def _one(fields: dict[str, list[str]], name: str) -> str | None:
    values = [v.strip() for v in fields.get(name, []) if v.strip()]
    if len(values) > 1:
        raise Invalid(f"{name}: give it once", [{"field": name, "message": "given twice"}])
    return values[0] if values else None


def _tags(values: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for value in values:
        text = value.strip()
        if not text:
            continue
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
                raise Invalid(
                    "tags: a JSON object of strings, or key=value",
                    [{"field": "tags", "message": "a JSON object of strings, or key=value"}],
                )
            tags.update(parsed)
            continue
        key, sep, val = text.partition("=")
        if not sep or not key.strip():
            raise Invalid(
                f"tags: {text[:60]!r} must look like key=value",
                [{"field": "tags", "message": "must look like key=value"}],
            )
        tags[key.strip()] = val.strip()
    return tags


@api.operation(
    "GET",
    "/files",
    summary="List registered files, newest first",
    tag="files",
    query=s.FileListQuery,
    responses={200: s.FileList},
)
def list_files(query: s.FileListQuery) -> Response:
    return answer(service().list_files(**query.model_dump()))


@api.operation(
    "GET",
    "/files/<file_id>",
    summary="One registered file",
    tag="files",
    responses={200: s.File},
)
def get_file(file_id: str) -> Response:
    return answer(service().get_file(file_id))


@api.operation(
    "GET",
    "/files/<file_id>/content",
    summary="A registered file's content",
    tag="files",
    responses={200: None},
)
def file_content(file_id: str) -> Response:
    """Streamed as application/octet-stream, with the display name as a download name."""
    doc, stream = service().open_file(file_id)

    def body() -> Iterator[bytes]:
        try:
            while chunk := stream.read(DOWNLOAD_CHUNK):
                yield chunk
        finally:
            stream.close()

    resp = Response(body(), mimetype="application/octet-stream", direct_passthrough=True)
    resp.headers["Content-Length"] = str(doc["size"])
    resp.headers["Content-Disposition"] = content_disposition(doc.get("name") or file_id)
    resp.headers["ETag"] = f'"{doc["sha256"]}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one RFC 5987-encoded, so no
    client name can break out of the header or name a path."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" .") or "download"
    encoded = quote(name, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


@api.operation(
    "DELETE",
    "/files/<file_id>",
    summary="Unregister a file",
    tag="files",
    responses={204: None},
    problems=(409,),
)
def delete_file(file_id: str) -> Response:
    """Needs an `admin` token. 409 while a queued or running run uses the file. Content
    another file shares stays."""
    service().delete_file(file_id, by=principal())
    return Response(status=204)
