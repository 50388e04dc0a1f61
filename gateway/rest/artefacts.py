"""What a run leaves to see, served from the store only: its log (and follow it with
``?offset=``), its jobs' logs, its results, Snakemake's report; and resume.

A result's path is a key looked up among the run's stored outputs, never joined to a
filesystem path. Downloads are attachments; a browser preview (``?disposition=inline``) and
the report are served sandboxed (``Content-Security-Policy: sandbox``), so a run's HTML or SVG
can never act as part of this site.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from typing import BinaryIO, Final

from flask import Response

from gateway import schemas as s
from gateway.rest import answer, api, principal, service
from gateway.rest.files import DOWNLOAD_CHUNK, content_disposition

TEXT_KINDS: Final = frozenset({"table", "text", "vcf"})
SANDBOX: Final = "sandbox allow-scripts allow-popups; frame-ancestors 'self'"
"""Scripts of a run's HTML (the report needs them) run in an opaque origin: no cookies, no
storage, no requests as this site."""


@api.operation(
    "GET",
    "/runs/<run_id>/log",
    summary="The run's log (Snakemake's output), or one of its job logs",
    tag="logs",
    query=s.RunLogQuery,
    responses={200: s.RunLog},
)
def run_log(run_id: str, query: s.RunLogQuery) -> Response:
    """What the runner shipped of the stream so far. To follow it, ask again from
    `next_offset`; live subscribers (Socket.IO, `/ws/runs/{id}`) are sent the same chunks as
    `log` messages `{run_id, stream, offset, next_offset, text}`, and a subscriber that joins
    late catches up here from offset 0 (or from the last offset it saw)."""
    return answer(service().run_log(run_id, **query.model_dump()))


@api.operation(
    "GET",
    "/runs/<run_id>/jobs/<jobid>/log",
    summary="The tail of each of a job's log files",
    tag="jobs",
    query=s.JobLogQuery,
    responses={200: s.JobLog},
)
def job_log(run_id: str, jobid: str, query: s.JobLogQuery) -> Response:
    """Of its latest attempt unless `attempt` is given; each log's `stream` can be followed
    with `GET /runs/{id}/log?stream=`."""
    return answer(service().job_log(run_id, jobid, attempt=query.attempt))


@api.operation(
    "GET",
    "/runs/<run_id>/outputs",
    summary="The run's stored results",
    tag="outputs",
    responses={200: s.OutputList},
)
def list_outputs(run_id: str) -> Response:
    """Files of the run's work directory that its workflow declares as results, each stored
    once complete (as the job that wrote it finished, or after the run), with size and sha256;
    and Snakemake's report of a COMPLETE run, when the workflow asks for one."""
    return answer(service().list_outputs(run_id))


@api.operation(
    "GET",
    "/runs/<run_id>/outputs/<path:path>",
    summary="One result's content",
    tag="outputs",
    query=s.OutputQuery,
    responses={200: None},
)
def output_content(run_id: str, path: str, query: s.OutputQuery) -> Response:
    """Streamed; byte for byte the file the run wrote (its `sha256` is the ETag)."""
    doc, stream = service().open_output(run_id, path)
    return _content(doc, stream, inline=query.disposition == "inline")


@api.operation(
    "GET",
    "/runs/<run_id>/report",
    summary="Snakemake's HTML report of the run",
    tag="outputs",
    responses={200: None},
)
def report(run_id: str) -> Response:
    """Made after the run ended COMPLETE, for workflows with `report: true`; served
    sandboxed."""
    doc, stream = service().open_report(run_id)
    return _content(doc, stream, inline=True)


@api.operation(
    "POST",
    "/runs/<run_id>/resume",
    summary="Resume a failed or cancelled run",
    tag="runs",
    responses={202: s.ResumeAccepted},
    problems=(409,),
)
def resume_run(run_id: str) -> Response:
    """Runs it again in its own work directory as its next attempt (Snakemake
    `--rerun-incomplete`: finished jobs are not redone), on the runner that holds that
    directory. 409 if the run cannot be resumed (it is not failed or cancelled, it never
    reached a runner, it was declared lost) or its runner is not running; rerun it then."""
    return answer(service().resume_run(run_id, by=principal()), 202)


def _content(doc: dict, stream: BinaryIO, *, inline: bool) -> Response:
    def body() -> Iterator[bytes]:
        try:
            while chunk := stream.read(DOWNLOAD_CHUNK):
                yield chunk
        finally:
            stream.close()

    name = str(doc.get("path") or "result").rsplit("/", 1)[-1]
    mimetype = "application/octet-stream"
    if inline:
        guessed = mimetypes.guess_type(name)[0] or ""
        if doc.get("kind") in TEXT_KINDS:
            mimetype = "text/plain"
        elif doc.get("kind") == "image" and guessed.startswith("image/"):
            mimetype = guessed
        elif doc.get("kind") == "html" or guessed == "text/html":
            mimetype = "text/html"
    resp = Response(body(), mimetype=mimetype, direct_passthrough=True)
    if mimetype.startswith("text/"):
        resp.headers["Content-Type"] = f"{mimetype}; charset=utf-8"
    resp.headers["Content-Length"] = str(doc["size"])
    disposition = content_disposition(name)
    resp.headers["Content-Disposition"] = (
        disposition.replace("attachment", "inline", 1) if inline else disposition
    )
    resp.headers["ETag"] = f'"{doc["sha256"]}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = SANDBOX
    return resp
