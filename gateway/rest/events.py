"""A run's events in seq order."""

from __future__ import annotations

from flask import Response

from gateway import schemas as s
from gateway.rest import answer, api, service


@api.operation(
    "GET",
    "/runs/<run_id>/events",
    summary="A run's events in seq order",
    tag="events",
    query=s.EventsQuery,
    responses={200: s.EventList},
)
def list_events(run_id: str, query: s.EventsQuery) -> Response:
    return answer(service().list_events(run_id, **query.model_dump()))
