"""Notifications: the targets each run notifies, and the delivery log (one entry per attempt to
deliver one notification to one target, kept so an operator and the run's owner see what was
sent, what failed and why, and so a redelivered message is not sent again).

Targets are kept here, apart from the run document, because they hold secrets: the run
document travels to every live subscriber, targets never leave the store but through the
notifier. The log is append-only and lists oldest first, keyset-paginated like every listing.
"""

from __future__ import annotations

import abc
import secrets
import time
from collections.abc import Sequence
from typing import Any, Final, Literal, TypedDict

from snakedeck.envelope import now_iso
from snakedeck.paging import Key, KeyOrder, Page, paginate

Outcome = Literal["delivered", "failed", "gave_up"]
"""``failed``: this attempt failed and another follows; ``gave_up``: the last attempt failed
(or the target refused for good, e.g. a 4xx), so no more follow."""


class DeliveryDoc(TypedDict, total=False):
    delivery_id: str
    run_id: str
    key: str
    """The notification's idempotency key (``run_id:seq``), sent as ``Idempotency-Key``."""
    event: str
    """``state`` or ``job_failed``."""
    state: str | None
    target: dict[str, Any]
    """The target as answers show it (``NotifyTarget.public``: no secret)."""
    target_id: str
    attempt: int
    at: str
    outcome: Outcome
    status: int | None
    """The receiver's HTTP status, when it answered."""
    error: str
    redelivered: bool


DELIVERY_ORDER: Final = KeyOrder(
    "deliveries",
    (
        Key("at", False, lambda d: str(d.get("at") or ""), str),
        Key("delivery_id", False, lambda d: str(d["delivery_id"]), str),
    ),
)


class DeliveryStore(abc.ABC):
    # -- targets --------------------------------------------------------------------------------
    @abc.abstractmethod
    def save_notify_targets(self, run_id: str, targets: list[dict[str, Any]]) -> None:
        """Keep a run's targets (secrets included), replacing any it had."""

    @abc.abstractmethod
    def notify_targets(self, run_id: str) -> list[dict[str, Any]]:
        """A run's targets as saved (``[]``: none)."""

    # -- the log --------------------------------------------------------------------------------
    def record_delivery(self, entry: DeliveryDoc) -> DeliveryDoc:
        """Append one attempt; ``delivery_id`` and ``at`` are filled in when missing."""
        doc: DeliveryDoc = {"at": now_iso(), **entry}  # type: ignore[typeddict-item]
        doc.setdefault("delivery_id", f"{time.time_ns():020d}{secrets.token_hex(4)}")
        self._insert_delivery(doc)
        return doc

    def list_deliveries(
        self, run_id: str, *, page_size: int = 50, page_token: str | None = None
    ) -> Page[DeliveryDoc]:
        """Oldest first (``at`` then ``delivery_id``)."""
        return paginate(
            DELIVERY_ORDER,
            page_size=page_size,
            page_token=page_token,
            fetch=lambda after, limit: self._fetch_deliveries(run_id, after, limit),
            count=lambda: self._count_deliveries(run_id),
        )

    @abc.abstractmethod
    def delivery_attempts(self, run_id: str, key: str, target_id: str) -> list[DeliveryDoc]:
        """Every attempt so far of one notification to one target, oldest first."""

    @abc.abstractmethod
    def _insert_delivery(self, doc: DeliveryDoc) -> None: ...

    @abc.abstractmethod
    def _fetch_deliveries(
        self, run_id: str, after: Sequence[Any] | None, limit: int
    ) -> list[DeliveryDoc]: ...

    @abc.abstractmethod
    def _count_deliveries(self, run_id: str) -> int: ...
