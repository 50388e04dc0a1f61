"""The audit trail: every write anyone asked for, done or refused (admins only)."""

from __future__ import annotations

from flask import Response

from gateway import schemas as s
from gateway.rest import answer, api, principal, service


@api.operation(
    "GET",
    "/audit",
    summary="The audit trail, newest first",
    tag="audit",
    query=s.AuditQuery,
    responses={200: s.AuditList},
    problems=(403,),
)
def list_audit(query: s.AuditQuery) -> Response:
    """Needs an `admin` token. Filter by `actor` (a token's name), `action` (exact, or a
    prefix ending in a dot such as `run.`) and `target` (a run id, file id or token name)."""
    return answer(service().list_audit(by=principal(), **query.model_dump()))
