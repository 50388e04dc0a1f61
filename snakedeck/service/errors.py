"""The service's errors: each maps onto one HTTP status (and a Dash message), naming the
problem, and a store or broker failure anywhere is :class:`Unavailable`."""

from __future__ import annotations

import functools
from collections.abc import Callable

from snakedeck.bus.base import BusError
from snakedeck.paging import BadPageSize, BadPageToken
from snakedeck.store import (
    StoreError,
)


class ServiceError(Exception):
    """A request the service refuses; ``status``/``title`` map it onto a problem document."""

    status = 500
    title = "Internal error"
    slug = "internal"

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(ServiceError):
    status, title, slug = 404, "Not found", "not-found"


class Invalid(ServiceError):
    """The request names something wrong; ``errors`` lists ``{field, message}``."""

    status, title, slug = 422, "Invalid request", "validation-error"


class Conflict(ServiceError):
    status, title, slug = 409, "Conflict", "conflict"


class Unavailable(ServiceError):
    status, title, slug = 503, "Service unavailable", "unavailable"


class TooLarge(ServiceError):
    status, title, slug = 413, "Content too large", "too-large"


class Forbidden(ServiceError):
    """The caller's role (or ownership) does not allow this."""

    status, title, slug = 403, "Forbidden", "forbidden"


def invalid(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", [{"field": field, "message": message}])


def unavailable_on_backend_errors[**P, R](method: Callable[P, R]) -> Callable[P, R]:
    """A store or broker failure anywhere in a service call is a 503 naming what is down."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except StoreError as exc:
            raise Unavailable(f"the run store is unavailable: {exc}") from None
        except BusError as exc:
            raise Unavailable(f"the message broker is unavailable: {exc}") from None
        except BadPageToken as exc:
            raise invalid("page_token", str(exc)) from None
        except BadPageSize as exc:
            raise invalid("page_size", str(exc)) from None

    return wrapper
