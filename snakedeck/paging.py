"""Keyset pagination, written once for every listing of every store.

A listing is ordered by a :class:`KeyOrder`: named keys, each ascending or descending, ending in
a unique key so the order is total. A page token is the key values of the last item handed out
(opaque: URL-safe base64 of JSON, tagged with the listing it belongs to), and the next page is
"the rows strictly after those values". Backends only translate :class:`KeyOrder` and the
``after`` values into their own query language (SQL, MongoDB filters); :func:`paginate` does the
rest. Offsets are never used, so a page costs the same at row 10 and at row 100,000.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

MAX_PAGE_SIZE: Final = 1000
"""The one page-size limit of every listing (REST, WES, dashboard, CLI)."""
DEFAULT_PAGE_SIZE: Final = 50


class BadPageToken(ValueError):
    """A ``page_token`` that this server did not hand out for this listing."""


class BadPageSize(ValueError):
    pass


@dataclass(frozen=True)
class Key:
    name: str
    """The logical field; each backend maps it to a column or document path."""
    descending: bool
    value: Callable[[Mapping[str, Any]], Any]
    """The key's value of a document, as the backend stores it for sorting."""
    kind: type | tuple[type, ...]
    """What a decoded token value must be (a forged token is refused, never queried)."""


@dataclass(frozen=True)
class KeyOrder:
    """A total order over a listing: ``keys`` in priority order, the last one unique."""

    listing: str
    keys: tuple[Key, ...]

    @property
    def pairs(self) -> tuple[tuple[str, bool], ...]:
        return tuple((k.name, k.descending) for k in self.keys)

    def token(self, doc: Mapping[str, Any]) -> str:
        return _encode([self.listing, *(k.value(doc) for k in self.keys)])

    def decode(self, token: str) -> list[Any]:
        value = _decode(token)
        ok = (
            len(value) == 1 + len(self.keys)
            and value[0] == self.listing
            and all(
                isinstance(v, k.kind) and not isinstance(v, bool)
                for v, k in zip(value[1:], self.keys, strict=True)
            )
        )
        if not ok:
            raise BadPageToken(f"page_token {_shown(token)} was not issued for this listing")
        return value[1:]


@dataclass
class Page[T: Mapping[str, Any]]:
    items: list[T]
    next_page_token: str | None
    total: int


def check_page_size(page_size: int) -> None:
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadPageSize(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size!r}")


def paginate[T: Mapping[str, Any]](
    order: KeyOrder,
    *,
    page_size: int,
    page_token: str | None,
    fetch: Callable[[Sequence[Any] | None, int], list[T]],
    count: Callable[[], int],
) -> Page[T]:
    """One page: ``fetch(after, limit)`` returns up to ``limit`` rows in ``order`` strictly after
    the key values ``after`` (``None``: from the start); ``count()`` the listing's total."""
    check_page_size(page_size)
    after = order.decode(page_token) if page_token else None
    rows = fetch(after, page_size + 1)
    items = rows[:page_size]
    token = order.token(items[-1]) if len(rows) > page_size else None
    return Page(items, token, count())


def _encode(value: Sequence[Any]) -> str:
    raw = json.dumps(list(value), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> list[Any]:
    if not isinstance(token, str) or len(token) > 2048:
        raise BadPageToken("page_token is not a token this server issued")
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, RecursionError):
        raise BadPageToken(
            f"page_token {_shown(token)} is not a token this server issued"
        ) from None
    if not isinstance(value, list):
        raise BadPageToken(f"page_token {_shown(token)} is not a token this server issued")
    return value


def _shown(token: str) -> str:
    return repr(token if len(token) <= 40 else token[:40] + "…")
