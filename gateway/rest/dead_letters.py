"""Dead letters: the messages no part could use, for an operator to read, replay or drop."""

from __future__ import annotations

from flask import Response

from gateway import schemas as s
from gateway.rest import answer, api, principal, service


@api.operation(
    "GET",
    "/dead-letters",
    summary="List dead letters with the reason each was filed",
    tag="dead-letters",
    query=s.DeadLettersQuery,
    responses={200: s.DeadLetterList},
    problems=(403,),
)
def list_dead_letters(query: s.DeadLettersQuery) -> Response:
    """The oldest first; reading removes none. `total` counts every one waiting."""
    return answer(service().dead_letters(query.limit, by=principal()))


@api.operation(
    "POST",
    "/dead-letters/replay",
    summary="Send dead letters back where they came from",
    tag="dead-letters",
    body=s.ReplayDeadLetters,
    responses={200: s.DeadLettersReplayed},
)
def replay_dead_letters(body: s.ReplayDeadLetters) -> Response:
    """Body `{}` replays all, `{"limit": n}` the oldest n. A message that fails again is
    dead-lettered again, with its new reason."""
    return answer(service().replay_dead_letters(body.limit, by=principal()))


@api.operation(
    "DELETE",
    "/dead-letters",
    summary="Delete every dead letter",
    tag="dead-letters",
    responses={200: s.DeadLettersPurged},
)
def purge_dead_letters() -> Response:
    """For good: what is purged cannot be replayed."""
    return answer(service().purge_dead_letters(by=principal()))
