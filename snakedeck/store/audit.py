"""The audit trail: one entry per write anyone asked for (submit, cancel, rerun, resume,
upload, delete, dead-letter handling, token changes), whether it was done or refused.

Entries are only ever appended; listings are newest first, keyset-paginated like every other
listing (:mod:`snakedeck.paging`), and filter by actor, action and target.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from snakedeck.documents import AuditDoc
from snakedeck.envelope import now_iso
from snakedeck.paging import Key, KeyOrder, Page, paginate


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    """An exact action (``run.cancel``) or a prefix ending in a dot (``run.``)."""
    target: str | None = None


AUDIT_ORDER: Final = KeyOrder(
    "audit",
    (
        Key("at", True, lambda d: str(d.get("at") or ""), str),
        Key("audit_id", True, lambda d: str(d["audit_id"]), str),
    ),
)


class AuditStore(abc.ABC):
    def record_audit(self, entry: AuditDoc) -> AuditDoc:
        """Append an entry; ``audit_id`` and ``at`` are filled in when missing."""
        doc: AuditDoc = {"at": now_iso(), **entry}  # type: ignore[typeddict-item]
        # Time first (nanoseconds), so entries of one millisecond still list in order.
        doc.setdefault("audit_id", f"{time.time_ns():020d}{secrets.token_hex(4)}")
        self._insert_audit(doc)
        return doc

    def list_audit(
        self, filters: AuditFilter, *, page_size: int = 50, page_token: str | None = None
    ) -> Page[AuditDoc]:
        """Newest first (``at`` then ``audit_id``, descending)."""
        return paginate(
            AUDIT_ORDER,
            page_size=page_size,
            page_token=page_token,
            fetch=lambda after, limit: self._fetch_audit(filters, after, limit),
            count=lambda: self._count_audit(filters),
        )

    @abc.abstractmethod
    def _insert_audit(self, doc: AuditDoc) -> None: ...

    @abc.abstractmethod
    def _fetch_audit(
        self, filters: AuditFilter, after: Sequence[Any] | None, limit: int
    ) -> list[AuditDoc]: ...

    @abc.abstractmethod
    def _count_audit(self, filters: AuditFilter) -> int: ...
